#!/usr/bin/env bash
# The main job: installs what is missing, starts Kafka (KRaft, from Maven Central jars) and
# Redis on loopback, then runs a worker with demo events of every type flowing through it.
#   bash scripts/demo.sh          keeps streaming until Ctrl-C
#   bash scripts/demo.sh --once   prints the report and exits
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: see scripts/test.sh.
  echo "demo: installing npm dependencies"; npm install --no-audit --no-fund --no-save
fi
bash scripts/services.sh start
export LOG_LEVEL="${LOG_LEVEL:-warn}"
exec node --max-semi-space-size=64 --import tsx scripts/demo.ts "$@"
