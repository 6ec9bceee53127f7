#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, starts the real services
# (Apache Kafka broker from Maven Central jars, Redis), checks the deploy files, and runs
# every suite: unit, then integration on the real broker, Redis and embedded ClickHouse.
#   TEST_MODE=unit|integration|all (default all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode="${TEST_MODE:-all}"
case "$mode" in unit|integration|all) ;; *) echo "TEST_MODE must be unit, integration or all; got '$mode'" >&2; exit 2 ;; esac

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "test.sh: installing npm dependencies"; npm ci --no-audit --no-fund
fi
npx tsc -p tsconfig.json
if [ "$mode" != unit ]; then
  bash scripts/services.sh start
  bash scripts/check-deploy.sh
fi
TEST_MODE="$mode" npx vitest run
