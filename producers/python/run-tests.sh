#!/usr/bin/env bash
# The Python SDK's tests (pytest), run by scripts/test.sh in modes integration and all.
#   TEST_MODE=unit         only the tests that need no broker (-m "not integration")
#   TEST_MODE=integration|all (default all)  every test; the broker must be up (KAFKA_BROKERS)
# On Debian the packages come from apt for /usr/bin/python3 (installed here when missing);
# elsewhere: pip install './producers/python[test]' and set INGEST_PYTHON to that interpreter.
# Integration: tests/test_kafka_security.py runs on the secured broker (scripts/kafka.sh
# start-secure, reused when it answers, on KAFKA_SECURE_PORT) and needs librdkafka >= 2.6.1 for
# SCRAM; when the interpreter's confluent-kafka links an older one (Debian 12: 2.0.2),
# scripts/librdkafka.sh builds one once into .cache/librdkafka (4-5 min on 2 busy cores) and
# pytest runs on it (LD_LIBRARY_PATH). INGEST_LIBRDKAFKA=system: no build, the system's library.
# The last line printed is pytest's own summary ("N passed in …s"), also kept in
# .cache/pytest-summary.txt for scripts/test.sh's closing lines. --deps: install, run nothing.
set -euo pipefail
case "${1:-}" in
  ''|--deps) ;;
  -h|--help)
    cat <<'EOF'
usage: bash producers/python/run-tests.sh [--deps]   (TEST_MODE=unit|integration|all; default all)
The Python SDK's tests (pytest) on INGEST_PYTHON (default /usr/bin/python3), installing Debian's
packages when missing; the integration tests need the broker (KAFKA_BROKERS).
  --deps   install the dependencies, run nothing
exit codes:
  0  the tests passed (with --deps: the dependencies are there)
  1  a test failed, or an install did
  2  bad arguments or TEST_MODE
EOF
    exit 0 ;;
  *) echo "run-tests.sh: unexpected argument $1; see --help" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "run-tests.sh: unexpected argument $2; see --help" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON="${INGEST_PYTHON:-/usr/bin/python3}"
mode="${TEST_MODE:-all}"
case "$mode" in unit|integration|all) ;; *) echo "TEST_MODE must be unit, integration or all; got '$mode'" >&2; exit 2 ;; esac

# ensurepip (Debian's python3-venv): test/integration/python-sdk-wheel.test.ts installs the wheel into a fresh venv.
# requests: confluent_kafka.schema_registry's client (the SDK's wire_format "confluent").
if ! "$PYTHON" -c 'import confluent_kafka, avro, pytest, ensurepip, requests' 2>/dev/null; then
  if [ "$PYTHON" = /usr/bin/python3 ] && command -v apt-get >/dev/null; then
    echo "python-sdk: installing python3-confluent-kafka python3-avro python3-pytest python3-venv python3-requests (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-confluent-kafka python3-avro python3-pytest python3-venv python3-requests >/dev/null
  else
    echo "python-sdk: $PYTHON lacks confluent_kafka, avro, pytest, requests or venv's ensurepip: pip install './producers/python[test]'" >&2
    exit 1
  fi
fi

# --deps: only install them (scripts/test.sh, before test/integration/python-sdk.test.ts spawns Python).
[ "${1:-}" = --deps ] && exit 0

marker=()
[ "$mode" = unit ] && marker=(-m "not integration")
if [ "$mode" != unit ] && [ "${INGEST_LIBRDKAFKA:-}" != system ] \
  && ! "$PYTHON" -c 'import confluent_kafka, sys; sys.exit(confluent_kafka.libversion()[1] < 0x020601ff)'; then
  lib="$(bash scripts/librdkafka.sh build)"
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "python-sdk: confluent-kafka $("$PYTHON" -c 'import confluent_kafka as c; print(c.version()[0], "on librdkafka", c.libversion()[0])') (from $lib)"
fi
mkdir -p ../../.cache
set +e
"$PYTHON" -m pytest -q -p no:cacheprovider "${marker[@]}" tests 2>&1 | tee ../../.cache/pytest.log
status=${PIPESTATUS[0]}
set -e
# pytest exits 5 when it collected no test: that is a failure here, never a pass.
[ "$status" = 5 ] && echo "python-sdk: pytest collected no tests" >&2
grep -E '^=* *[0-9]+ (passed|failed|errors?)' ../../.cache/pytest.log | tail -n 1 | sed 's/^=* *//; s/ *=*$//; s/^/pytest: /' > ../../.cache/pytest-summary.txt
exit "$status"
