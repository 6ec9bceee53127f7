#!/usr/bin/env bash
# Validates the deployment and operations files without running any of them:
#   - Prometheus config, alert rules and their unit tests (promtool)
#   - docker-compose.yml (docker-compose config; no Docker daemon needed)
#   - Grafana dashboards parse as JSON and use the provisioned data-source variables
#   - every metric named in dashboards, alerts, alert tests and the KEDA trigger is declared
#     in lib/metrics.ts (process_*, nodejs_* and up come from prom-client / Prometheus)
#   - every alert has summary, description and a runbook anchor that exists in docs/operations.md,
#     and docs/operations.md describes every metric of lib/metrics.ts
#   - Kubernetes manifests are valid YAML with apiVersion/kind/metadata.name, and the
#     environment of the ConfigMap and compose services names only settings of lib/config.ts
# Installs the Debian packages `prometheus` (promtool) and `docker-compose` when missing
# (root only, as in CI). Exits non-zero on the first failing step.
#   scripts/check-deploy.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/usage.sh"
usage_or_refuse check-deploy.sh "$@" <<'USAGE'
usage: bash scripts/check-deploy.sh
Validates the deployment and operations files without running them: Prometheus rules and their
tests (promtool), docker-compose.yml, the Grafana dashboards, the Kubernetes manifests, and that
every metric and setting they name exists. Installs Debian's prometheus and docker-compose when
missing (as root).
exit codes:
  0  every check passed
  1  a check failed (the line before says which)
  2  bad arguments
USAGE
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fail() { echo "check-deploy: FAIL: $*" >&2; exit 1; }
step() { echo "check-deploy: $*"; }

# --- tools ---------------------------------------------------------------------------------
# python3-yaml comes with the docker-compose package, so Debian's own python3 can read YAML
# even when another python3 (pyenv, venv) is first on PATH.
need_pkgs=()
command -v promtool >/dev/null || need_pkgs+=(prometheus)
command -v docker-compose >/dev/null || need_pkgs+=(docker-compose)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need_pkgs+=(python3-yaml)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "missing ${need_pkgs[*]}; install them (apt-get install ${need_pkgs[*]}) or run as root"
  step "installing ${need_pkgs[*]}"
  apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null \
    || fail "apt-get install ${need_pkgs[*]} failed"
fi
command -v node >/dev/null || fail "node is required"

# --- Prometheus ----------------------------------------------------------------------------
step "promtool check config"
for f in deploy/prometheus/prometheus.yml deploy/prometheus/prometheus-compose.yml; do
  promtool check config "$f" >/dev/null || fail "promtool check config $f"
done
step "promtool check rules"
promtool check rules deploy/prometheus/alerts.yml >/dev/null || fail "promtool check rules deploy/prometheus/alerts.yml"
step "promtool test rules"
promtool test rules deploy/prometheus/test-alerts.yml || fail "promtool test rules deploy/prometheus/test-alerts.yml"

# --- docker-compose ------------------------------------------------------------------------
step "docker-compose config"
docker-compose -f docker-compose.yml config -q || fail "docker-compose -f docker-compose.yml config -q"

# --- Grafana dashboards: JSON syntax (node, as the app would read them) --------------------
step "dashboards parse as JSON"
for f in deploy/grafana/dashboards/*.json; do
  node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$f" 2>/dev/null \
    || fail "$f is not valid JSON"
done

# --- cross-checks --------------------------------------------------------------------------
step "metric names, runbooks, settings, manifests"
exprs_rules="$(mktemp --suffix=.yml)"
trap 'rm -f "$exprs_rules"' EXIT
# The settings, from lib/config.ts itself: its ENV table spreads the Kafka settings of the
# producer package (KAFKA_BROKERS, KAFKA_SASL_*, …), which no regex over the file can see.
known_env="$(npx tsx -e "import('./lib/config.ts').then((m) => console.log(JSON.stringify(Object.keys(m.ENV))))")" \
  || fail "could not read the settings of lib/config.ts"
KNOWN_ENV="$known_env" EXPRS_RULES="$exprs_rules" /usr/bin/python3 - <<'PY' || fail "cross-checks (see above)"
import glob, json, os, re, sys, yaml

errors = []
def err(msg): errors.append(msg)

# Metric names and types declared in lib/metrics.ts.
src = open('lib/metrics.ts').read()
declared = {}
for kind, name in re.findall(r"new (Counter|Gauge|Histogram|Summary)\(\{\s*name:\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)'", src):
    declared[name] = kind
if not declared:
    err('lib/metrics.ts: no metric declarations found (pattern new Counter({ name: ... }))')
# The producer SDK's metrics (the dashboards graph them) are declared in its package.
psrc = open('producers/typescript/src/producer-metrics.ts').read()
for kind, name in re.findall(r"new (Counter|Gauge|Histogram|Summary)\(\{\s*name:\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)'", psrc):
    declared[name] = kind
series = set()
for name, kind in declared.items():
    if kind == 'Histogram':
        series.update({name + '_bucket', name + '_sum', name + '_count'})
    elif kind == 'Summary':
        series.update({name, name + '_sum', name + '_count'})
    else:
        series.add(name)

def allowed(name):
    return name in series or name == 'up' or name.startswith(('process_', 'nodejs_'))

KEYWORDS = {'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
            'bool', 'offset', 'inf', 'nan', 'atan2'}
def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (inside {...} or by/on(...)), durations ([...]), strings or variables."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '', expr)
    e = re.sub(r'\$\{[^}]*\}|\$\w+', '', e)
    e = re.sub(r'\{[^}]*\}', '', e)
    e = re.sub(r'\[[^\]]*\]', '', e)
    e = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', e)
    e = re.sub(r'\boffset\s+\w+', ' ', e)
    names = []
    for m in re.finditer(r'(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)', e):
        rest = e[m.end():].lstrip()
        if rest.startswith('(') or m.group(1) in KEYWORDS:
            continue
        names.append(m.group(1))
    return names

# Every dashboard / KEDA expression also goes into a throw-away rule file that promtool
# parses (Grafana variables replaced by plain values), so PromQL syntax errors surface here.
syntax_rules = []
def grafana_free(expr):
    e = expr.replace('$__rate_interval', '1m').replace('$__interval', '1m').replace('$__range', '1h')
    return re.sub(r'\$\{?(\w+)\}?', 'x', e)

def check_expr(where, expr, syntax=False):
    if syntax:
        syntax_rules.append({'record': f'check:expr_{len(syntax_rules)}', 'expr': grafana_free(expr)})
    for n in metric_names(expr):
        if not allowed(n):
            err(f'{where}: metric {n!r} is not declared in lib/metrics.ts')

# Alerts: every rule has summary, description and a runbook anchor present in docs/operations.md.
def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')
ops = open('docs/operations.md').read() if glob.glob('docs/operations.md') else ''
if not ops:
    err('docs/operations.md is missing')
anchors = {slug(h) for h in re.findall(r'^#{1,6}\s+(.+?)\s*$', ops, re.M)}
anchors |= set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', ops))
alerts = yaml.safe_load(open('deploy/prometheus/alerts.yml'))
alert_names = []
for group in alerts.get('groups', []):
    for rule in group.get('rules', []):
        name = rule.get('alert') or rule.get('record')
        check_expr(f'alerts.yml {name}', rule['expr'])
        if 'alert' not in rule:
            continue
        alert_names.append(name)
        ann = rule.get('annotations', {})
        for key in ('summary', 'description', 'runbook'):
            if not ann.get(key):
                err(f'alerts.yml {name}: annotation {key!r} missing')
        rb = ann.get('runbook', '')
        m = re.fullmatch(r'docs/operations\.md#([\w-]+)', rb)
        if not m:
            err(f'alerts.yml {name}: runbook {rb!r} is not docs/operations.md#anchor')
        elif m.group(1) not in anchors:
            err(f'alerts.yml {name}: runbook anchor #{m.group(1)} has no heading in docs/operations.md')

# Alert unit tests: input series use declared metrics, and every alert is tested.
tests = yaml.safe_load(open('deploy/prometheus/test-alerts.yml'))
tested = set()
for t in tests.get('tests', []):
    for s in t.get('input_series', []):
        n = re.match(r'\s*([a-zA-Z_:][a-zA-Z0-9_:]*)', s['series']).group(1)
        if not allowed(n):
            err(f'test-alerts.yml: input series metric {n!r} is not declared in lib/metrics.ts')
    for a in t.get('alert_rule_test', []):
        if a.get('exp_alerts'):
            tested.add(a['alertname'])
for name in alert_names:
    if name not in tested:
        err(f'test-alerts.yml: alert {name} has no test in which it fires')

# Dashboards: Prometheus targets use declared metrics; data sources come from variables.
for path in sorted(glob.glob('deploy/grafana/dashboards/*.json')):
    d = json.load(open(path))
    var_names = {v['name'] for v in d.get('templating', {}).get('list', [])}
    if not d.get('uid'):
        err(f'{path}: dashboard uid missing')
    def walk(panels):
        for p in panels:
            yield p
            yield from walk(p.get('panels', []))
    for p in walk(d.get('panels', [])):
        if p.get('type') == 'row':
            continue
        for t in p.get('targets', []):
            ds = t.get('datasource') or p.get('datasource') or {}
            uid = ds.get('uid', '')
            m = re.fullmatch(r'\$\{?(\w+)\}?', uid)
            if not m or m.group(1) not in var_names:
                err(f'{path}: panel {p.get("title")!r} does not use a data-source variable (uid {uid!r})')
            if ds.get('type') == 'prometheus':
                check_expr(f'{path} panel {p.get("title")!r}', t.get('expr', ''), syntax=True)
            elif ds.get('type') == 'grafana-clickhouse-datasource':
                if not t.get('rawSql', '').strip():
                    err(f'{path}: panel {p.get("title")!r} has an empty ClickHouse query')
    for v in d.get('templating', {}).get('list', []):
        q = v.get('query')
        q = q.get('query', '') if isinstance(q, dict) else (q or '')
        m = re.match(r'label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)', q)
        if m and not allowed(m.group(1)):
            err(f'{path}: variable {v["name"]}: metric {m.group(1)!r} is not declared in lib/metrics.ts')

# docs/operations.md describes every metric.
for name in declared:
    if f'`{name}`' not in ops:
        err(f'docs/operations.md: metric `{name}` is not described')

# Settings: environment variables known to lib/config.ts.
known_env = set(json.loads(os.environ.get('KNOWN_ENV') or '[]'))
if not known_env:
    err('lib/config.ts: could not read the ENV table')
def check_env(where, keys):
    for k in keys:
        if k not in known_env:
            err(f'{where}: {k} is not a setting of lib/config.ts')

# Kubernetes manifests: YAML, apiVersion/kind/metadata.name; ConfigMap/Secret keys are settings;
# the KEDA query uses declared metrics.
for path in sorted(glob.glob('deploy/k8s/*.yaml') + glob.glob('deploy/k8s/*.yml')):
    try:
        docs = [doc for doc in yaml.safe_load_all(open(path)) if doc is not None]
    except yaml.YAMLError as e:
        err(f'{path}: invalid YAML: {e}')
        continue
    if not docs:
        err(f'{path}: empty')
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get('apiVersion') or not doc.get('kind'):
            err(f'{path}: document without apiVersion/kind')
            continue
        if doc['kind'] != 'Kustomization' and not doc.get('metadata', {}).get('name'):
            err(f'{path}: {doc["kind"]} without metadata.name')
        if doc['kind'] == 'ConfigMap':
            check_env(path, doc.get('data', {}))
        # A container's own `env` entries (INGEST_INSTANCE_ID from the pod's name) are settings too.
        if doc['kind'] in ('Deployment', 'StatefulSet', 'Job'):
            for c in doc['spec']['template']['spec'].get('containers', []):
                check_env(f'{path} container {c.get("name")}', [e['name'] for e in c.get('env', [])])
        # The Secret the pods take as environment (envFrom); others (ingest-kafka-tls) hold files.
        if doc['kind'] == 'Secret' and doc['metadata']['name'] == 'ingest-worker-secrets':
            check_env(path, list(doc.get('stringData', {})) + list(doc.get('data', {})))
        if doc['kind'] == 'ScaledObject':
            for trig in doc['spec'].get('triggers', []):
                if trig.get('type') == 'prometheus':
                    check_expr(f'{path} trigger', trig['metadata']['query'], syntax=True)
        if doc['kind'] == 'Kustomization':
            import os
            for r in doc.get('resources', []):
                if not os.path.exists(os.path.join('deploy/k8s', r)):
                    err(f'{path}: resource {r} does not exist')

# docker-compose services built from this repository get only known settings.
compose = yaml.safe_load(open('docker-compose.yml'))
for name, svc in compose.get('services', {}).items():
    if 'build' in svc:
        env = svc.get('environment', {})
        keys = list(env) if isinstance(env, dict) else [e.split('=', 1)[0] for e in env]
        check_env(f'docker-compose.yml service {name}', [k for k in keys if k != '<<'])

with open(os.environ['EXPRS_RULES'], 'w') as f:
    yaml.safe_dump({'groups': [{'name': 'dashboard-and-keda-expressions', 'rules': syntax_rules}]}, f)

if errors:
    for e in errors:
        print('  - ' + e, file=sys.stderr)
    sys.exit(1)
print(f'check-deploy: {len(declared)} metrics, {len(alert_names)} alerts, '
      f'{len(glob.glob("deploy/grafana/dashboards/*.json"))} dashboards, '
      f'{len(glob.glob("deploy/k8s/*.yaml"))} manifests checked')
PY
step "PromQL syntax of dashboard and KEDA queries"
promtool check rules "$exprs_rules" >/dev/null || { promtool check rules "$exprs_rules" >&2 || true; fail "a dashboard or KEDA query is not valid PromQL"; }

step "OK"
