# Sourced by the scripts that start services in the background (kafka.sh, kafka-cluster.sh,
# registry.sh): one way to stop what they started.
# stop_process PID WHAT: SIGTERM, up to 30 s for a clean exit (a broker flushes its logs), then SIGKILL.
stop_process() {
  local pid="$1" what="$2"
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  echo "$what did not stop in 30 s, killing" >&2
  kill -9 "$pid"
}
