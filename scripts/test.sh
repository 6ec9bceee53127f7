#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, starts the real services
# (Apache Kafka broker from Maven Central jars, Redis), checks the deploy files, and runs
# every suite: unit, then integration on the real broker, Redis and embedded ClickHouse,
# then the README's main job once (demo --once) and the benchmark smoke test.
#   TEST_MODE=unit|integration|all (default all)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/usage.sh"
usage_or_refuse test.sh "$@" <<'USAGE'
usage: bash scripts/test.sh        (TEST_MODE=unit|integration|all; default all)
Installs what is missing, starts the real services on loopback (Kafka, Redis, the schema
registry) and runs every suite, then the demo, the fault suite and the benchmark smoke test
(CONTRIBUTING.md). Prints the time each part took and a closing summary.
exit codes:
  0  every suite passed
  1  a suite failed (the closing summary names it)
  2  bad arguments or TEST_MODE
USAGE
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
mode="${TEST_MODE:-all}"
case "$mode" in unit|integration|all) ;; *) echo "TEST_MODE must be unit, integration or all; got '$mode'" >&2; exit 2 ;; esac
export LOG_LEVEL="${LOG_LEVEL:-error}"

# How long each part took, printed at the end: where a slow run spent its time.
timings=()
phase_start=$SECONDS
phase() { timings+=("$(printf '%5ds  %s' $((SECONDS - phase_start)) "$1")"); phase_start=$SECONDS; }

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: npm 11 rejects its own lock file when optional platform
  # packages (chdb, msgpackr) for other OSes are left out of it (npm/cli#4828).
  echo "test.sh: installing npm dependencies"; npm install --no-audit --no-fund --no-save
fi
# The producer package (producers/typescript) compiled to its dist/: the worker, the tests, the
# fault suite and the benchmark import it by name, which resolves there. (npm install's prepare
# builds it too; this catches a source change made since.)
npm run -s build:sdk
npx tsc -p tsconfig.json
phase "npm install, build, type check"

status=0
# Every part that failed, named again in the closing summary: CI shows only the output's tail,
# and a failure printed mid-run (the fault suite, the demo, an install) is far above it.
failed_parts=()
failed() { failed_parts+=("$1"); status=1; }
# Set-up that a later part needs runs in the background meanwhile, its output in .cache/<name>.log:
# `started NAME CMD...`, then `finished NAME` before the part that needs it (prints the log and
# fails the run when it failed). Only what uses neither apt nor Maven at the same time as the
# foreground does.
mkdir -p .cache
declare -A background=()
started() { local name="$1"; shift; "$@" >".cache/$name.log" 2>&1 & background[$name]=$!; }
finished() {
  local name="$1"
  if wait "${background[$name]}"; then return 0; fi
  echo "test.sh: $name failed:" >&2; tail -n 40 ".cache/$name.log" >&2; return 1
}

if [ "$mode" != unit ]; then
  # The broker's jars come from Maven Central the first time; the registry's build uses Maven too,
  # so it starts after them.
  bash scripts/services.sh start
  # The schema registry of test/integration/schema-registry.test.ts (Apicurio, Confluent's API):
  # built from Maven Central into .cache/registry the first time (about 2.5 minutes), then 6-10 s.
  started registry bash scripts/registry.sh start
  # The secured broker (TLS, SASL, ACLs) of the security tests, which start it themselves when it
  # is not up: its first start (certificates, SCRAM users, ACLs: several JVM tools) took about a
  # minute inside the busy integration files, and costs little beside the installs here.
  started secure-broker bash scripts/kafka.sh start-secure
  bash scripts/check-deploy.sh
  # The Python SDK's packages (Debian's, for /usr/bin/python3), before any test spawns Python.
  bash producers/python/run-tests.sh --deps
  # After the apt installs above (one apt at a time): the fastavro venv of the Python SDK's second
  # unit run (pip, once), and one after the other (each may apt-get) the Kafka clients the
  # benchmark compares (a niced build, once, about 2.5 minutes) and the librdkafka of the Python
  # SDK's SCRAM tests (niced, once, about a minute; run-tests.sh waits on its lock if it is not
  # done by then, and builds it itself if this failed), all while the suites run.
  started python-env npx tsx bench/python-env.ts
  started builds bash -c '{ [ "$1" != all ] || [ ! -f bench/run.ts ] || bash bench/install-clients.sh; } && nice -n 10 bash producers/python/scripts/librdkafka.sh build' _ "$mode"
  finished registry || failed "the schema registry did not start (.cache/registry.log)"
  finished secure-broker || failed "the secured broker did not start (.cache/secure-broker.log)"
fi
phase "services, registry, deploy check, Python dependencies"
rm -f .cache/vitest-report.json .cache/vitest-report-kafkajs.json
TEST_MODE="$mode" npx vitest run --reporter=default --reporter=json --outputFile=.cache/vitest-report.json || failed "vitest (its failures are listed below)"
phase "vitest"
if [ "$mode" != unit ]; then
  # The producer SDK offers two Kafka clients (ProducerOptions.client); the files that drive the
  # SDK end to end run once more with the alternative, so both pass the same tests.
  echo "test.sh: the SDK's end-to-end files again with INGEST_PRODUCER_CLIENT=kafkajs"
  INGEST_PRODUCER_CLIENT=kafkajs TEST_MODE=integration npx vitest run \
    test/integration/walking-skeleton.test.ts test/integration/all-event-types.test.ts test/integration/never-lose-a-row.test.ts \
    test/integration/sdk-package.test.ts \
    --reporter=default --reporter=json --outputFile=.cache/vitest-report-kafkajs.json || failed "vitest with INGEST_PRODUCER_CLIENT=kafkajs (its failures are listed below)"
fi
phase "vitest, kafkajs producer"
rm -f .cache/pytest-summary.txt
rm -f .cache/pytest-summary-fastavro.txt
if [ "$mode" != unit ]; then
  # A pip install of the SDK writes with fastavro; Debian's python3 has Apache avro only. The unit
  # tests (validation, bytes identical to the TS SDK's) run on both, where fastavro installs.
  # (python-env exits 1, saying why, when fastavro cannot be installed: not a failure of the run.)
  if wait "${background[python-env]}" && fastavro_python="$(tail -n 1 .cache/python-env.log)" && [ -x "$fastavro_python" ]; then
    echo "test.sh: the Python SDK's unit tests with fastavro ($fastavro_python)"
    TEST_MODE=unit INGEST_PYTHON="$fastavro_python" bash producers/python/run-tests.sh || failed "pytest, unit tests with fastavro"
    sed 's/^pytest:/pytest (fastavro, unit):/' .cache/pytest-summary.txt > .cache/pytest-summary-fastavro.txt
  else
    echo "test.sh: fastavro cannot be installed here ($(tail -n 1 .cache/python-env.log)): the Python SDK's tests run with Apache avro only"
  fi
  echo "test.sh: the Python SDK's tests (producers/python/run-tests.sh: pytest, on the real broker)"
  TEST_MODE="$mode" bash producers/python/run-tests.sh || failed "pytest"
fi
phase "pytest"
if [ "$mode" = all ]; then
  echo "test.sh: smoke test of the main job (scripts/demo.sh --once)"
  bash scripts/demo.sh --once >.cache/demo.log 2>&1 || { cat .cache/demo.log; echo "test.sh: demo failed" >&2; failed "the demo (scripts/demo.sh --once; its output is above)"; }
phase "demo"
  # The fault suite at CI size, two scenarios at a time, each lane with a broker and Redis of its
  # own (CHAOS_KAFKA_PORT 19092 and up, CHAOS_REDIS_PORT 16390 and up), which it kills; the
  # leader kill -9 runs with each of the SDK's clients. Results in .cache/chaos-results.json.
  # Alone: run beside pytest and the benchmark smoke test, its kill -9 recoveries took 10-13 s
  # against its 10 s bound (5-8 s alone), so it does not share the machine with them.
  echo "test.sh: fault suite, CI size (npm run chaos:quick)"
  rm -f .cache/chaos-results.json
  npm run -s chaos:quick || { echo "test.sh: chaos:quick failed (see .cache/chaos-results.json)" >&2; failed "the fault suite (npm run chaos:quick; its failed scenarios are listed below)"; }
phase "fault suite"
  if [ -f bench/run.ts ]; then
    # Set-up, not part of the smoke test's time: the Kafka clients the benchmark compares with
    # kafkajs, installed once into .cache/bench-clients (~2.5 min the first time: librdkafka).
    echo "test.sh: Kafka clients for the benchmark (bench/install-clients.sh, started before the suites)"
    finished builds || { echo "test.sh: installing the benchmark's Kafka clients or building the Python SDK's librdkafka failed (.cache/builds.log)" >&2; failed "installing the benchmark's Kafka clients or the Python SDK's librdkafka (.cache/builds.log)"; }
    echo "test.sh: benchmark smoke test (npm run bench:quick)"
    npm run -s bench:quick || { echo "test.sh: bench:quick failed" >&2; failed "the benchmark smoke test (npm run bench:quick)"; }
phase "benchmark clients and smoke test"
  fi
fi
# The closing summary. A test file that failed outside its tests (an import error, a hook) has
# no failed test, yet it is a failure: it counts in "failed" and makes the script exit non-zero,
# as does a report that is missing because vitest stopped before writing it.
reports=(".cache/vitest-report.json")
[ "$mode" != unit ] && reports+=(".cache/vitest-report-kafkajs.json")
node -e '
  const fs = require("fs");
  const names = { ".cache/vitest-report.json": "vitest", ".cache/vitest-report-kafkajs.json": "vitest (kafkajs producer)" };
  let bad = false;
  for (const file of process.argv.slice(1)) {
    const name = names[file] ?? file;
    if (!fs.existsSync(file)) {
      console.log(`${name}: FAILED, no report (${file}): vitest stopped before it wrote one`);
      bad = true;
      continue;
    }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    // CI shows only the tail of the output: name each failure here, with its first message line.
    const firstLine = (text) => String(text ?? "").split("\n")[0].slice(0, 300);
    const lines = [];
    let brokenFiles = 0;
    for (const f of r.testResults ?? []) {
      const path = f.name.replace(process.cwd() + "/", "");
      const failed = (f.assertionResults ?? []).filter((t) => t.status === "failed");
      for (const t of failed) lines.push(`  FAILED ${path} > ${t.fullName}: ${firstLine((t.failureMessages ?? [])[0])}`);
      if (f.status === "failed" && failed.length === 0) {
        brokenFiles++;
        lines.push(`  FAILED ${path} (the file failed outside its tests): ${firstLine(f.message)}`);
      }
    }
    const failedFiles = (r.testResults ?? []).filter((f) => f.status === "failed").length;
    const failed = r.numFailedTests + brokenFiles;
    console.log(`${name}: ${(r.testResults ?? []).length} files, ${failedFiles} failed${brokenFiles ? `, ${brokenFiles} of them outside their tests` : ""}`);
    for (const l of lines) console.log(l);
    // The plain closing line CI reads: "N passed, N failed, N skipped" alone after one word and a colon.
    console.log(`${name === "vitest" ? "vitest" : "kafkajs"}: ${r.numPassedTests} passed, ${failed} failed, ${r.numPendingTests} skipped`);
    if (failed > 0 || r.success === false) bad = true;
  }
  process.exit(bad ? 1 : 0);
' "${reports[@]}" || status=1
# pytest's own summary line, after vitest's (producers/python/run-tests.sh wrote it).
echo "test.sh: time per part (total $((SECONDS / 60)) min $((SECONDS % 60)) s)"
printf '%s\n' "${timings[@]}"
if [ -f .cache/pytest-summary-fastavro.txt ]; then cat .cache/pytest-summary-fastavro.txt; fi
if [ -f .cache/pytest-summary.txt ]; then cat .cache/pytest-summary.txt; fi
if [ "${#failed_parts[@]}" -gt 0 ]; then
  printf 'test.sh: FAILED: %s\n' "${failed_parts[@]}"
  # The fault suite's failed scenarios with their failed checks (its own log line is long and far up).
  if [ -f .cache/chaos-results.json ] && printf '%s\n' "${failed_parts[@]}" | grep -q '^the fault suite'; then
    node -e '
      const r = JSON.parse(require("fs").readFileSync(".cache/chaos-results.json", "utf8"));
      for (const s of r.results ?? []) {
        if (s.ok) continue;
        const checks = (s.checks ?? []).filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`);
        const error = s.error ? [`error: ${String(s.error).split("\n")[0]}`] : [];
        // The notes that say why it did not catch up (an audit query the engine refused, say).
        const why = (s.notes ?? []).filter((n) => /fail|not caught up|error/i.test(n)).map((n) => String(n).split("\n")[0]);
        console.log(`  FAILED scenario ${s.scenario}: ${[...checks, ...error, ...why].join("; ").slice(0, 900)}`);
      }
    ' || true
  fi
fi
exit "$status"
