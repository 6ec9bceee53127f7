import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';

/**
 * deploy/k8s as an operator applies it: `kubectl kustomize deploy/k8s` (offline) must render,
 * and the rendered objects, with the Jobs and the example Secrets applied beside them, must fit
 * together: the kinds expected, probes on the metrics port, non-root pods, every Secret key and
 * file the pods use present in the example, the ConfigMap plus the example Secret a valid
 * configuration (lib/config.ts), the PodMonitor and Service selecting the worker pods, and the
 * NetworkPolicy's ports those of the settings. (`kubectl apply --dry-run=client` is not used: it
 * downloads the OpenAPI schema from a cluster.)
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

// Loose shapes: the checks below say what they expect.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;

/** YAML documents as JSON, by Debian's python3-yaml (the project has no Node YAML parser). */
function yamlDocs(text: string): Obj[] {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)'], { input: text, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`YAML: ${r.stderr}`);
  return JSON.parse(r.stdout) as Obj[];
}
const file = (name: string) => yamlDocs(readFileSync(join(root, 'deploy/k8s', name), 'utf8'));

let rendered: Obj[] = [];
let jobs: Obj[] = [];
let secrets: Obj[] = [];
const byKind = (kind: string) => rendered.filter((o) => o.kind === kind);
const one = (kind: string) => {
  const found = byKind(kind);
  expect(found, kind).toHaveLength(1);
  return found[0];
};

beforeAll(() => {
  expect(existsSync(KUBECTL), `${KUBECTL} (kubectl, for kubectl kustomize; set KUBECTL)`).toBe(true);
  const r = spawnSync(KUBECTL, ['kustomize', join(root, 'deploy/k8s')], { encoding: 'utf8', timeout: 60_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  rendered = yamlDocs(r.stdout);
  jobs = [...file('topics-job.yaml'), ...file('migrate-job.yaml')];
  secrets = file('secret.example.yaml');
});

const configMap = () => one('ConfigMap').data as Record<string, string>;
const workerSecret = () => secrets.find((s) => s.metadata.name === 'ingest-worker-secrets');
const podSpecs = () => [{ name: 'Deployment ingest-worker', spec: one('Deployment').spec.template.spec }, ...jobs.map((j) => ({ name: `Job ${j.metadata.name}`, spec: j.spec.template.spec }))];

describe('kubectl kustomize deploy/k8s', () => {
  it('renders the expected objects, all in namespace ingest', () => {
    expect(rendered.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'PodMonitor', 'ScaledObject', 'Service']);
    for (const o of rendered.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('ingest');
    expect(jobs.map((j) => j.metadata.name).sort()).toEqual(['ingest-migrate', 'ingest-topics']);
    // Secrets stay out of the kustomization: credentials never live in git.
    expect(byKind('Secret')).toEqual([]);
  });

  it('pods run as non-root without privilege escalation, and take their settings from the ConfigMap and the Secret', () => {
    const cmName = one('ConfigMap').metadata.name;
    for (const { name, spec } of podSpecs()) {
      expect(spec.securityContext.runAsNonRoot, name).toBe(true);
      expect(spec.securityContext.runAsUser, name).toBeGreaterThan(0);
      expect(spec.automountServiceAccountToken, name).toBe(false);
      for (const c of spec.containers) {
        expect(c.securityContext.allowPrivilegeEscalation, `${name} ${c.name}`).toBe(false);
        expect(c.securityContext.capabilities.drop, `${name} ${c.name}`).toEqual(['ALL']);
        expect(c.envFrom, `${name} ${c.name}`).toEqual([{ configMapRef: { name: cmName } }, { secretRef: { name: workerSecret().metadata.name } }]);
        expect(c.resources.limits.memory, `${name} ${c.name}`).toBeDefined();
      }
    }
  });

  it('the worker has readiness /readyz and liveness /healthz on the metrics port = METRICS_PORT, and a grace period above SHUTDOWN_TIMEOUT_MS', () => {
    const d = one('Deployment');
    const [c] = d.spec.template.spec.containers;
    const port = Number(configMap().METRICS_PORT);
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: port, protocol: 'TCP' }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(d.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port));
    expect(d.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(configMap().SHUTDOWN_TIMEOUT_MS));
  });

  it("the worker's instance id is its pod's name, which a container restart keeps and the setting accepts", () => {
    const [c] = one('Deployment').spec.template.spec.containers;
    expect(c.env).toEqual([{ name: 'INGEST_INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
    // A Deployment's pod name: <deployment>-<replica set hash>-<5 characters>.
    expect(loadConfig({ INGEST_INSTANCE_ID: `${one('Deployment').metadata.name}-7d9f8c6b5-x2x7k` }).consumer.instanceId).toBe('ingest-worker-7d9f8c6b5-x2x7k');
  });

  it('the ConfigMap and the example Secret make a valid configuration, with the query endpoint off and the topics left to the Job', () => {
    const cm = configMap();
    expect(cm.QUERY_ENDPOINT).toBe('false');
    expect(cm.KAFKA_CREATE_TOPICS).toBe('false');
    const secret = workerSecret().stringData as Record<string, string>;
    for (const key of ['CLICKHOUSE_URL', 'REDIS_URL', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']) expect(Object.keys(secret), key).toContain(key);
    // The files the settings name, from the example's mounted Secret, at a local path.
    const dir = mkdtempSync(join(tmpdir(), 'k8s-files-'));
    try {
      const env: Record<string, string> = { ...cm, ...secret };
      for (const [name, value] of Object.entries(cm)) {
        if (!name.endsWith('_LOCATION')) continue;
        writeFileSync(join(dir, basename(value)), 'PEM');
        env[name] = join(dir, basename(value));
      }
      const config = loadConfig(env);
      expect(config.kafka.securityProtocol).toBe('SASL_SSL');
      expect(config.metrics.queryEndpoint).toBe(false);
      // Turning the endpoint on without a token on 0.0.0.0 is refused.
      expect(() => loadConfig({ ...env, QUERY_ENDPOINT: 'true' })).toThrow(/set QUERY_TOKEN/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every file a setting names is mounted, from a Secret of the example that holds it', () => {
    const cm = configMap();
    for (const { name, spec } of podSpecs()) {
      for (const [setting, path] of Object.entries(cm).filter(([k]) => k.endsWith('_LOCATION'))) {
        const mount = spec.containers[0].volumeMounts?.find((m: Obj) => path.startsWith(`${m.mountPath}/`));
        expect(mount, `${name}: ${setting}=${path} is under a volume mount`).toBeDefined();
        const volume = spec.volumes.find((v: Obj) => v.name === mount.name);
        const secret = secrets.find((s) => s.metadata.name === volume.secret.secretName);
        expect(secret, `${name}: Secret ${volume.secret.secretName} in secret.example.yaml`).toBeDefined();
        expect(Object.keys(secret.stringData ?? secret.data), `${name}: ${setting}`).toContain(path.slice(mount.mountPath.length + 1));
      }
    }
  });

  it('the Service, the PodMonitor and the PDB select the worker pods; the PodMonitor scrapes the metrics port as job ingest-workers', () => {
    const labels = one('Deployment').spec.template.metadata.labels as Record<string, string>;
    const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(selects(one('Service').spec.selector)).toBe(true);
    expect(one('Service').spec.ports[0].targetPort).toBe('metrics');
    expect(selects(one('PodDisruptionBudget').spec.selector.matchLabels)).toBe(true);
    const pm = one('PodMonitor');
    expect(selects(pm.spec.selector.matchLabels)).toBe(true);
    expect(pm.spec.podMetricsEndpoints.map((e: Obj) => [e.port, e.path])).toEqual([['metrics', '/metrics']]);
    expect(pm.spec.podMetricsEndpoints[0].relabelings).toContainEqual({ targetLabel: 'job', replacement: 'ingest-workers' });
    expect(one('ScaledObject').spec.triggers[0].metadata.query).toContain('group="ingest-workers"');
    expect(one('ScaledObject').spec.triggers[0].metadata.query).toContain(`group="${configMap().INGEST_GROUP_ID}"`);
  });

  it('the NetworkPolicy lets in only the monitoring namespace on METRICS_PORT, and out only to Kafka, ClickHouse, Redis and DNS on their ports', () => {
    const np = one('NetworkPolicy');
    const labels = one('Deployment').spec.template.metadata.labels;
    expect(Object.entries(np.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v)).toBe(true);
    expect(np.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    expect(np.spec.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ port: Number(configMap().METRICS_PORT), protocol: 'TCP' }] }]);

    /** Namespace and port of `host:port` or a URL whose host is <service>.<namespace>.svc. */
    const target = (hostPort: string) => {
      const u = new URL(hostPort.includes('://') ? hostPort : `tcp://${hostPort}`);
      return { namespace: u.hostname.split('.')[1], port: Number(u.port) };
    };
    const secret = workerSecret().stringData;
    const allowed = (np.spec.egress as Obj[]).flatMap((rule) =>
      rule.to.flatMap((to: Obj) => rule.ports.map((p: Obj) => `${to.namespaceSelector.matchLabels['kubernetes.io/metadata.name']}:${p.port}/${p.protocol}`)),
    );
    for (const address of [...(configMap().KAFKA_BROKERS ?? '').split(','), secret.CLICKHOUSE_URL, secret.REDIS_URL]) {
      const t = target(address);
      expect(allowed, address).toContain(`${t.namespace}:${t.port}/TCP`);
    }
    expect(allowed).toContain('kube-system:53/UDP');
    // Kafka, ClickHouse (http and https), Redis, DNS over UDP and TCP, and nothing else.
    expect(allowed).toHaveLength(6);
  });

  it('the Jobs run the compiled commands the image ships (node dist/cli/…), which the build emits', () => {
    const job = jobs.find((j) => j.metadata.name === 'ingest-topics');
    const command = job.spec.template.spec.containers[0].command as string[];
    expect(command.slice(0, 3)).toEqual(['node', 'dist/cli/topics.js', 'create']);
    const migrate = jobs.find((j) => j.metadata.name === 'ingest-migrate');
    expect(migrate.spec.template.spec.containers[0].command).toEqual(['node', 'dist/cli/migrate.js']);
    // The sources the build compiles to those paths (tsconfig.build.json: cli/ → dist/cli/).
    for (const source of ['cli/topics.ts', 'cli/migrate.ts']) expect(existsSync(join(root, source))).toBe(true);
  });
});

