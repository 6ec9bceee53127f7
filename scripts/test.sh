#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, starts the real services
# (Apache Kafka broker from Maven Central jars, Redis), checks the deploy files, and runs
# every suite: unit, then integration on the real broker, Redis and embedded ClickHouse,
# then the README's main job once (demo --once) and the benchmark smoke test.
#   TEST_MODE=unit|integration|all (default all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
mode="${TEST_MODE:-all}"
case "$mode" in unit|integration|all) ;; *) echo "TEST_MODE must be unit, integration or all; got '$mode'" >&2; exit 2 ;; esac
export LOG_LEVEL="${LOG_LEVEL:-error}"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: npm 11 rejects its own lock file when optional platform
  # packages (chdb, msgpackr) for other OSes are left out of it (npm/cli#4828).
  echo "test.sh: installing npm dependencies"; npm install --no-audit --no-fund --no-save
fi
npx tsc -p tsconfig.json
if [ "$mode" != unit ]; then
  bash scripts/services.sh start
  bash scripts/check-deploy.sh
fi
mkdir -p .cache
status=0
TEST_MODE="$mode" npx vitest run --reporter=default --reporter=json --outputFile=.cache/vitest-report.json || status=$?
if [ "$mode" != unit ]; then
  # The producer SDK offers two Kafka clients (ProducerOptions.client); the files that drive the
  # SDK end to end run once more with the alternative, so both pass the same tests.
  echo "test.sh: the SDK's end-to-end files again with INGEST_PRODUCER_CLIENT=platformatic"
  INGEST_PRODUCER_CLIENT=platformatic TEST_MODE=integration npx vitest run \
    test/integration/walking-skeleton.test.ts test/integration/all-event-types.test.ts test/integration/never-lose-a-row.test.ts \
    --reporter=default --reporter=json --outputFile=.cache/vitest-report-platformatic.json || status=$?
fi
if [ "$mode" = all ]; then
  echo "test.sh: smoke test of the main job (scripts/demo.sh --once)"
  bash scripts/demo.sh --once >.cache/demo.log 2>&1 || { cat .cache/demo.log; echo "test.sh: demo failed" >&2; status=1; }
  # The fault suite at CI size: its own broker and Redis (CHAOS_KAFKA_PORT, default 19092, and
  # CHAOS_REDIS_PORT, default 16390), which it kills; results in .cache/chaos-results.json.
  echo "test.sh: fault suite, CI size (npm run chaos:quick)"
  npm run -s chaos:quick || { echo "test.sh: chaos:quick failed (see .cache/chaos-results.json)" >&2; status=1; }
  if [ -f bench/run.ts ]; then
    # Set-up, not part of the smoke test's time: the Kafka clients the benchmark compares with
    # kafkajs, installed once into .cache/bench-clients (~2.5 min the first time: librdkafka).
    echo "test.sh: Kafka clients for the benchmark (bench/install-clients.sh)"
    bash bench/install-clients.sh || { echo "test.sh: installing the benchmark's Kafka clients failed" >&2; status=1; }
    echo "test.sh: benchmark smoke test (npm run bench:quick)"
    npm run -s bench:quick || { echo "test.sh: bench:quick failed" >&2; status=1; }
  fi
fi
node -e '
  const fs = require("fs");
  for (const [name, file] of [["vitest", "./.cache/vitest-report.json"], ["vitest (platformatic producer)", "./.cache/vitest-report-platformatic.json"]]) {
    if (!fs.existsSync(file)) continue;
    const r = require(file);
    console.log(`${name}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
    // CI shows only the tail of the output: name each failure here, with its first message line.
    const firstLine = (text) => String(text ?? "").split("\n")[0].slice(0, 300);
    for (const file of r.testResults ?? []) {
      const path = file.name.replace(process.cwd() + "/", "");
      const failed = (file.assertionResults ?? []).filter((t) => t.status === "failed");
      for (const t of failed) console.log(`  FAILED ${path} > ${t.fullName}: ${firstLine((t.failureMessages ?? [])[0])}`);
      // A file that failed outside its tests (import error, hook) has no failed test to name.
      if (file.status === "failed" && failed.length === 0) console.log(`  FAILED ${path}: ${firstLine(file.message)}`);
    }
  }
' || true
exit "$status"
