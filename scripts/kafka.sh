#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) broker for development, tests and benchmarks.
#   scripts/kafka.sh fetch   download the broker jars with Maven into .cache/kafka (once)
#   scripts/kafka.sh start   fetch if needed, format storage on first start, start, wait until ready
#   scripts/kafka.sh stop    stop the broker cleanly (SIGTERM, then wait)
#   scripts/kafka.sh status  exit 0 when a broker answers on $KAFKA_PORT
#   scripts/kafka.sh run CLASS ARGS...   run a Kafka tool class (e.g. org.apache.kafka.tools.ProducerPerformance)
#   scripts/kafka.sh start-secure | stop-secure | reset-secure
#     a second, secured broker (docs/security.md), beside the plaintext one, on KAFKA_SECURE_PORT
#     (KAFKA_PORT+2) and the three ports after it:
#       +0 SASL_SSL        PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (unsecured JWS, tests only)
#       +1 SSL             client certificate required (mTLS); also the inter-broker listener
#       +2 SASL_PLAINTEXT  PLAIN
#       +3 CONTROLLER      SSL, client certificate required
#     Certificates and passwords (scripts/kafka-secure.sh) in .cache/kafka/secure-PORT/certs;
#     StandardAuthorizer with super users admin and broker, and these ACLs:
#       producer: Write (and Describe) on topics prefixed "ingest."
#       worker:   Read (and Describe) on topics prefixed "ingest.", Read on groups prefixed "ingest-"
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_HEAP (512m),
#              KAFKA_DATA_DIR (.cache/kafka/data), KAFKA_CACHE_DIR (.cache/kafka), KAFKA_SECURE_PORT
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/stop-process.sh"
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

# What both brokers (plaintext and secured) share: one node, so replication factors of 1; the
# first rebalance without delay (tests start groups often); topics only as the migrations create them.
shared_props() {
  cat <<PROPS
log.dirs=$1
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
PROPS
  shared_props "$data" >>"$cache/server-$port.properties"
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

sport="${KAFKA_SECURE_PORT:-$((port + 2))}"
sdir="$cache/secure-$sport"
scerts="$sdir/certs"

write_secure_config() {
  # shellcheck disable=SC1091
  . "$scerts/users.env"
  local plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"$ADMIN_PASSWORD\" user_producer=\"$PRODUCER_PASSWORD\" user_worker=\"$WORKER_PASSWORD\";"
  mkdir -p "$sdir/data"
  cat >"$sdir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$((sport + 3))
listeners=SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$((sport + 1)),SASL_PLAINTEXT://127.0.0.1:$((sport + 2)),CONTROLLER://127.0.0.1:$((sport + 3))
advertised.listeners=SASL_SSL://127.0.0.1:$sport,SSL://127.0.0.1:$((sport + 1)),SASL_PLAINTEXT://127.0.0.1:$((sport + 2)),CONTROLLER://127.0.0.1:$((sport + 3))
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT
inter.broker.listener.name=SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$scerts/broker.p12
ssl.keystore.password=$STORE_PASSWORD
ssl.key.password=$STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$scerts/truststore.p12
ssl.truststore.password=$STORE_PASSWORD
# A certificate is the identity on the SSL and controller listeners; on SASL_SSL the SASL login is.
ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
# CN=producer -> User:producer, the same principal as the SASL user "producer".
ssl.principal.mapping.rules=RULE:^CN=([A-Za-z0-9._-]+)\$/\$1/,DEFAULT
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# Unsecured JWS (alg none): any well-formed token is accepted, its "sub" is the principal. For tests only.
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";
listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$plain
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:broker
allow.everyone.if.no.acl.found=false
PROPS
  shared_props "$sdir/data" >>"$sdir/server.properties"
  chmod 600 "$sdir/server.properties"
  # The admin tools' client config: SCRAM-SHA-512 as the super user admin.
  cat >"$sdir/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$scerts/ca.pem
PROPS
  chmod 600 "$sdir/admin.properties"
}

secure_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$sport") 2>/dev/null; }

acl() { java_cmd org.apache.kafka.tools.AclCommand --bootstrap-server "127.0.0.1:$sport" --command-config "$sdir/admin.properties" "$@" >>"$sdir/acls.log" 2>&1 || { cat "$sdir/acls.log" >&2; exit 1; }; }

start_secure() {
  fetch
  local spid="$sdir/broker.pid" slog="$sdir/broker.log"
  if secure_answers; then
    # Reusable only if it is ours: its clients need the certificates and passwords made with it.
    [ -f "$scerts/.complete" ] || { echo "kafka.sh: something already listens on 127.0.0.1:$sport but $scerts holds no certificates of a broker started here; stop it or set KAFKA_SECURE_PORT" >&2; exit 1; }
    echo "kafka.sh: a secured broker already answers on 127.0.0.1:$sport"; return 0
  fi
  "$root/scripts/kafka-secure.sh" certs "$scerts"
  write_secure_config
  if [ ! -f "$sdir/data/meta.properties" ]; then
    # SCRAM credentials are written into the cluster metadata at format time (KRaft has no
    # ZooKeeper to add them to before the broker can authenticate anyone).
    local scram=()
    for u in admin producer worker; do
      local var; var="$(echo "$u" | tr a-z A-Z)_PASSWORD"
      scram+=(--add-scram "SCRAM-SHA-256=[name=$u,password=${!var}]" --add-scram "SCRAM-SHA-512=[name=$u,password=${!var}]")
    done
    java_cmd kafka.tools.StorageTool format --standalone -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
      -c "$sdir/server.properties" "${scram[@]}" >"$sdir/format.log" 2>&1 \
      || { cat "$sdir/format.log" >&2; exit 1; }
    rm -f "$sdir/.acls"
  fi
  nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$root/deploy/kafka/log4j2.yaml" \
    -cp "$libs/*" kafka.Kafka "$sdir/server.properties" >"$slog" 2>&1 &
  echo $! >"$spid"
  local up=""
  for _ in $(seq 1 180); do
    if secure_answers; then up=1; break; fi
    if ! kill -0 "$(cat "$spid")" 2>/dev/null; then tail -50 "$slog" >&2; echo "kafka.sh: secured broker exited" >&2; exit 1; fi
    sleep 0.5
  done
  [ -n "$up" ] || { tail -50 "$slog" >&2; echo "kafka.sh: secured broker did not answer within 90 s" >&2; exit 1; }
  if [ ! -f "$sdir/.acls" ]; then
    # Least privilege (docs/security.md): prefixed ACLs, so new ingest.* topics need no new ACL.
    acl --add --allow-principal User:producer --operation Write --operation Describe --topic ingest. --resource-pattern-type prefixed
    acl --add --allow-principal User:worker --operation Read --operation Describe --topic ingest. --resource-pattern-type prefixed
    acl --add --allow-principal User:worker --operation Read --group ingest- --resource-pattern-type prefixed
    touch "$sdir/.acls"
  fi
  echo "kafka.sh: secured broker up: SASL_SSL 127.0.0.1:$sport, SSL (mTLS) :$((sport + 1)), SASL_PLAINTEXT :$((sport + 2)) (pid $(cat "$spid"), log $slog, certificates and passwords in $scerts)"
}

stop_secure() {
  pidfile="$sdir/broker.pid" port="$sport" stop
}

stop() {
  [ -f "$pidfile" ] || { echo "kafka.sh: no broker started by this script on port $port"; return 0; }
  stop_process "$(cat "$pidfile")" "kafka.sh: broker"
  rm -f "$pidfile"; echo "kafka.sh: broker stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) answers ;;
  run) shift; fetch; java_cmd "$@" ;;
  reset) stop; rm -rf "$data"; echo "kafka.sh: data removed" ;;
  start-secure) start_secure ;;
  stop-secure) stop_secure ;;
  status-secure) secure_answers ;;
  reset-secure) stop_secure; rm -rf "$sdir"; echo "kafka.sh: secured broker data and certificates removed" ;;
  *) echo "usage: scripts/kafka.sh fetch|start|stop|status|reset|start-secure|stop-secure|status-secure|reset-secure|run CLASS [ARGS...]" >&2; exit 2 ;;
esac
