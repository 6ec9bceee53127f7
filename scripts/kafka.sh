#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) broker for development, tests and benchmarks.
#   scripts/kafka.sh fetch   download the broker jars with Maven into .cache/kafka (once)
#   scripts/kafka.sh start   fetch if needed, format storage on first start, start, wait until ready
#   scripts/kafka.sh stop    stop the broker cleanly (SIGTERM, then wait)
#   scripts/kafka.sh status  exit 0 when a broker answers on $KAFKA_PORT
#   scripts/kafka.sh run CLASS ARGS...   run a Kafka tool class (e.g. org.apache.kafka.tools.ProducerPerformance)
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_HEAP (512m),
#              KAFKA_DATA_DIR (.cache/kafka/data), KAFKA_CACHE_DIR (.cache/kafka)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${KAFKA_CACHE_DIR:-$root/.cache/kafka}"
libs="$cache/libs"
data="${KAFKA_DATA_DIR:-$cache/data}"
port="${KAFKA_PORT:-9092}"
cport="${KAFKA_CONTROLLER_PORT:-9093}"
heap="${KAFKA_HEAP:-512m}"
pidfile="$cache/broker-$port.pid"
logfile="$cache/broker-$port.log"

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: Maven (mvn) is required to fetch Kafka jars" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: Java 17+ is required to run Kafka" >&2; exit 1; }
  mkdir -p "$cache"
  echo "kafka.sh: fetching Apache Kafka jars from Maven Central into $libs ..."
  rm -rf "$libs"
  mvn -q -B -f "$root/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime >"$cache/mvn.log" 2>&1 \
    || { cat "$cache/mvn.log" >&2; echo "kafka.sh: Maven fetch failed" >&2; exit 1; }
  touch "$libs/.complete"
}

java_cmd() {
  java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/deploy/kafka/log4j2.yaml" \
    -cp "$libs/*" "$@"
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

write_config() {
  mkdir -p "$data"
  cat >"$cache/server-$port.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
PROPS
}

start() {
  fetch
  if answers; then echo "kafka.sh: a broker already answers on 127.0.0.1:$port"; return 0; fi
  write_config
  if [ ! -f "$data/meta.properties" ]; then
    java_cmd kafka.tools.StorageTool format --standalone -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
      -c "$cache/server-$port.properties" >"$cache/format.log" 2>&1 \
      || { cat "$cache/format.log" >&2; exit 1; }
  fi
  nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/deploy/kafka/log4j2.yaml" \
    -cp "$libs/*" kafka.Kafka "$cache/server-$port.properties" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if answers; then echo "kafka.sh: broker up on 127.0.0.1:$port (pid $(cat "$pidfile"), log $logfile)"; return 0; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then tail -50 "$logfile" >&2; echo "kafka.sh: broker exited" >&2; exit 1; fi
    sleep 0.5
  done
  tail -50 "$logfile" >&2; echo "kafka.sh: broker did not answer within 60 s" >&2; exit 1
}

stop() {
  [ -f "$pidfile" ] || { echo "kafka.sh: no broker started by this script on port $port"; return 0; }
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "kafka.sh: broker did not stop in 30 s, killing" >&2; kill -9 "$pid"; }
  fi
  rm -f "$pidfile"; echo "kafka.sh: broker stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) answers ;;
  run) shift; fetch; java_cmd "$@" ;;
  reset) stop; rm -rf "$data"; echo "kafka.sh: data removed" ;;
  *) echo "usage: scripts/kafka.sh fetch|start|stop|status|reset|run CLASS [ARGS...]" >&2; exit 2 ;;
esac
