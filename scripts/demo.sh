#!/usr/bin/env bash
# The main job: installs what is missing, starts Kafka (KRaft, from Maven Central jars) and
# Redis on loopback, then runs a worker with demo events of every type flowing through it and
# a Prometheus (Debian's package) scraping it on 127.0.0.1:${PROMETHEUS_PORT:-9090}.
#   bash scripts/demo.sh             keeps streaming, with a live view, until Ctrl-C
#   bash scripts/demo.sh --per-type  the live view shows each event type too
#   bash scripts/demo.sh --once      prints the report, checks Prometheus, and exits
#   bash scripts/demo.sh --registry  the events in the Confluent wire format, through a local schema
#                                    registry (scripts/registry.sh; docs/schema-registry.md)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Arguments first: --help and a bad argument answer before anything is installed or started.
usage='usage: bash scripts/demo.sh [--once] [--per-type] [--registry]
  (no option)  start Kafka, Redis, a worker, demo events and Prometheus; a live view until Ctrl-C
  --per-type   the live view shows each event type too
  --once       print the report, check Prometheus, and exit
  --registry   publish in the Confluent wire format through a local schema registry (Apicurio,
               built from Maven Central into .cache/registry the first time, ~2.5 min)
  -h, --help   this text
exit codes:
  0  stopped by Ctrl-C or SIGTERM; with --once, every event landed and Prometheus saw the lag
  1  a service, the worker or a check failed (the reason on stderr)
  2  bad arguments'
for arg in "$@"; do
  case "$arg" in
    -h|--help) echo "$usage"; exit 0 ;;
  esac
done
for arg in "$@"; do
  case "$arg" in
    --once|--per-type|--registry) ;;
    *) echo "demo: unknown argument $arg; see --help" >&2; exit 2 ;;
  esac
done
. scripts/env.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: see scripts/test.sh.
  echo "demo: installing npm dependencies"; npm install --no-audit --no-fund --no-save
fi
# Prometheus, and python3-yaml to read the project's prometheus.yml (as scripts/check-deploy.sh).
need_pkgs=()
command -v prometheus >/dev/null || [ -x "${PROMETHEUS_BIN:-/usr/bin/prometheus}" ] || need_pkgs+=(prometheus)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need_pkgs+=(python3-yaml)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "demo: missing ${need_pkgs[*]}; install them (sudo apt-get install ${need_pkgs[*]})" >&2; exit 1; fi
  echo "demo: installing ${need_pkgs[*]} (Debian packages)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null; } \
    || { echo "demo: apt-get install ${need_pkgs[*]} failed" >&2; exit 1; }
fi
bash scripts/services.sh start
for arg in "$@"; do
  if [ "$arg" = --registry ]; then
    bash scripts/registry.sh start
    # The worker reads through the registry; the demo's SDK producers publish Confluent framing.
    SCHEMA_REGISTRY_URL="$(bash scripts/registry.sh url)"
    export SCHEMA_REGISTRY_URL INGEST_PRODUCER_WIRE_FORMAT=confluent
  fi
done
export LOG_LEVEL="${LOG_LEVEL:-warn}"
exec node --max-semi-space-size=64 --import tsx scripts/demo.ts "$@"
