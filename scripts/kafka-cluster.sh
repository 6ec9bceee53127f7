#!/usr/bin/env bash
# A local three-broker Apache Kafka cluster (KRaft, every node broker and controller) from the
# same jars as scripts/kafka.sh, on loopback, for the fault suite's multi-broker scenario.
#   scripts/kafka-cluster.sh start         fetch if needed, format on first start, start all nodes, wait until each answers
#   scripts/kafka-cluster.sh stop          stop every node cleanly (SIGTERM, then wait)
#   scripts/kafka-cluster.sh kill9 N       kill -9 node N (1..3), as a crashed machine
#   scripts/kafka-cluster.sh start-node N  start node N again on its data (after kill9)
#   scripts/kafka-cluster.sh status        one line per node; exit 0 when every node answers
#   scripts/kafka-cluster.sh brokers       the bootstrap list, host:port,host:port,...
#   scripts/kafka-cluster.sh reset         stop, then remove the data
# Ports: node N listens for clients on KAFKA_CLUSTER_PORT+N-1 and for the controller quorum on
# KAFKA_CLUSTER_PORT+3+N-1 (default 29092-29094 and 29095-29097).
# Internal topics are replicated 3 times with min.insync.replicas 2, so the cluster keeps
# accepting acks=all writes and offset commits with one node down. A killed node is fenced
# after broker.session.timeout.ms (6 s here, Kafka's default is 9 s), then its partitions'
# leadership moves to a replica in sync.
# Environment: KAFKA_CLUSTER_PORT (29092), KAFKA_CLUSTER_HEAP (320m per node),
#              KAFKA_CLUSTER_DIR (.cache/kafka/cluster-PORT), KAFKA_CACHE_DIR (.cache/kafka)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/stop-process.sh"
cache="${KAFKA_CACHE_DIR:-$root/.cache/kafka}"
libs="$cache/libs"
base="${KAFKA_CLUSTER_PORT:-29092}"
heap="${KAFKA_CLUSTER_HEAP:-320m}"
dir="${KAFKA_CLUSTER_DIR:-$cache/cluster-$base}"
nodes=(1 2 3)

for p in $base $((base + 5)); do
  case $p in 9092 | 9093 | 6379 | 6380) echo "kafka-cluster.sh: port $p is the product's; set KAFKA_CLUSTER_PORT elsewhere" >&2; exit 2 ;; esac
done

port_of() { echo $((base + $1 - 1)); }
cport_of() { echo $((base + 3 + $1 - 1)); }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$(port_of "$1")") 2>/dev/null; }
pid_of() { cat "$dir/node-$1.pid" 2>/dev/null || true; }
running() { local pid; pid="$(pid_of "$1")"; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

voters() {
  local v="" n
  for n in "${nodes[@]}"; do v="${v:+$v,}$n@127.0.0.1:$(cport_of "$n")"; done
  echo "$v"
}

brokers() {
  local b="" n
  for n in "${nodes[@]}"; do b="${b:+$b,}127.0.0.1:$(port_of "$n")"; done
  echo "$b"
}

write_config() {
  local n=$1 port cport
  port="$(port_of "$n")" cport="$(cport_of "$n")"
  mkdir -p "$dir/data-$n"
  cat >"$dir/node-$n.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data-$n
num.partitions=4
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
unclean.leader.election.enable=false
PROPS
}

start_node() {
  local n=$1
  if running "$n"; then echo "kafka-cluster.sh: node $n already runs (pid $(pid_of "$n"))"; return 0; fi
  if answers "$n"; then echo "kafka-cluster.sh: something not started here answers on 127.0.0.1:$(port_of "$n")" >&2; exit 1; fi
  write_config "$n"
  nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/deploy/kafka/log4j2.yaml" \
    -cp "$libs/*" kafka.Kafka "$dir/node-$n.properties" >>"$dir/node-$n.log" 2>&1 &
  echo $! >"$dir/node-$n.pid"
}

wait_node() {
  local n=$1
  for _ in $(seq 1 240); do
    if answers "$n"; then echo "kafka-cluster.sh: node $n up on 127.0.0.1:$(port_of "$n") (pid $(pid_of "$n"), log $dir/node-$n.log)"; return 0; fi
    if ! running "$n"; then tail -30 "$dir/node-$n.log" >&2; echo "kafka-cluster.sh: node $n exited" >&2; exit 1; fi
    sleep 0.5
  done
  tail -30 "$dir/node-$n.log" >&2; echo "kafka-cluster.sh: node $n did not answer within 120 s" >&2; exit 1
}

start() {
  bash "$root/scripts/kafka.sh" fetch
  mkdir -p "$dir"
  local n id
  if [ ! -f "$dir/data-1/meta.properties" ]; then
    id="$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid)"
    for n in "${nodes[@]}"; do
      write_config "$n"
      java -Xmx256m -cp "$libs/*" -Dlog4j2.configurationFile="$root/deploy/kafka/log4j2.yaml" kafka.tools.StorageTool format -t "$id" \
        -c "$dir/node-$n.properties" >"$dir/format-$n.log" 2>&1 || { cat "$dir/format-$n.log" >&2; exit 1; }
    done
  fi
  # All at once: a node waits for a quorum of controllers before it serves clients.
  for n in "${nodes[@]}"; do start_node "$n"; done
  for n in "${nodes[@]}"; do wait_node "$n"; done
}

stop_node() {
  local n=$1 pid
  pid="$(pid_of "$n")"
  [ -n "$pid" ] || return 0
  stop_process "$pid" "kafka-cluster.sh: node $n"
  rm -f "$dir/node-$n.pid"
}

stop() {
  local n
  # Signalled together: a node stopping alone would wait for the others to move its leaderships.
  for n in "${nodes[@]}"; do running "$n" && kill "$(pid_of "$n")" 2>/dev/null || true; done
  for n in "${nodes[@]}"; do stop_node "$n"; done
  echo "kafka-cluster.sh: cluster stopped"
}

kill9() {
  local n=$1 pid
  running "$n" || { echo "kafka-cluster.sh: node $n is not running" >&2; exit 1; }
  pid="$(pid_of "$n")"
  kill -9 "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/node-$n.pid"
  echo "kafka-cluster.sh: node $n killed (kill -9, pid $pid)"
}

status() {
  local n ok=0
  for n in "${nodes[@]}"; do
    if answers "$n"; then echo "node $n: up on 127.0.0.1:$(port_of "$n")"; else echo "node $n: down"; ok=1; fi
  done
  return $ok
}

node_arg() {
  case "${1:-}" in 1 | 2 | 3) ;; *) echo "kafka-cluster.sh: a node number 1..3 is required" >&2; exit 2 ;; esac
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill9) node_arg "${2:-}"; kill9 "$2" ;;
  start-node) node_arg "${2:-}"; start_node "$2"; wait_node "$2" ;;
  status) status ;;
  brokers) brokers ;;
  reset) stop; rm -rf "$dir"; echo "kafka-cluster.sh: cluster data removed" ;;
  -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "usage: scripts/kafka-cluster.sh start|stop|kill9 N|start-node N|status|brokers|reset" >&2; exit 2 ;;
esac
