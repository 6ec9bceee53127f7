#!/usr/bin/env bash
# Local schema registry for development, tests and the demo's registry mode: Apicurio Registry
# (in-memory storage), which serves Confluent's schema registry API under /apis/ccompat/v6.
#   scripts/registry.sh build    package it with Maven from Maven Central into .cache/registry (once;
#                                about 2.5 minutes and 180 MB the first time)
#   scripts/registry.sh start    build if needed, start on 127.0.0.1:$REGISTRY_PORT, wait until ready,
#                                set the global compatibility level to BACKWARD (Confluent's default)
#   scripts/registry.sh stop     stop the registry started by this script (SIGTERM, then wait)
#   scripts/registry.sh status   exit 0 when a registry answers on $REGISTRY_PORT
#   scripts/registry.sh url      print the Confluent-API URL (for SCHEMA_REGISTRY_URL)
# Its schemas live in memory: a restart forgets them (fine for tests and the demo; production
# runs its own registry, see docs/schema-registry.md).
# Environment: REGISTRY_PORT (18081), REGISTRY_HEAP (256m), REGISTRY_CACHE_DIR (.cache/registry)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/stop-process.sh"
cache="${REGISTRY_CACHE_DIR:-$root/.cache/registry}"
port="${REGISTRY_PORT:-18081}"
heap="${REGISTRY_HEAP:-256m}"
app="$cache/build/target/schema-registry-1-runner.jar"
pidfile="$cache/registry-$port.pid"
logfile="$cache/registry-$port.log"
url="http://127.0.0.1:$port/apis/ccompat/v6"

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# Maven Central's address, as Maven itself knows it (its super POM), for the mirror below.
central_url() {
  local home jar
  home="$(dirname "$(dirname "$(readlink -f "$(command -v mvn)")")")"
  jar="$(ls "$home"/lib/maven-model-builder*.jar 2>/dev/null | head -n 1)"
  [ -n "$jar" ] || { echo "registry.sh: cannot find Maven's model builder under $home/lib" >&2; exit 1; }
  python3 -c 'import re, sys, zipfile
pom = zipfile.ZipFile(sys.argv[1]).read("org/apache/maven/model/pom-4.0.0.xml").decode()
print(re.search(r"<url>([^<]+)</url>", pom).group(1))' "$jar"
}

build() {
  if [ -f "$cache/.complete" ] && [ -f "$app" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "registry.sh: Maven (mvn) is required to build the registry" >&2; exit 1; }
  command -v java >/dev/null || { echo "registry.sh: Java 17+ is required to run the registry" >&2; exit 1; }
  mkdir -p "$cache/build"
  # The registry's poms name other repositories than Central (some of which no longer serve
  # what they name): a mirror of Central for all of them, so everything comes from Central.
  cat >"$cache/settings.xml" <<XML
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror><id>central-for-all</id><mirrorOf>*</mirrorOf><url>$(central_url)</url></mirror>
  </mirrors>
</settings>
XML
  cp "$root/deploy/registry/pom.xml" "$cache/build/pom.xml"
  echo "registry.sh: building Apicurio Registry from Maven Central into $cache (about 2.5 minutes the first time) ..."
  local started=$SECONDS
  (cd "$cache/build" && mvn -B -s "$cache/settings.xml" package -DskipTests >"$cache/mvn.log" 2>&1) \
    || { tail -40 "$cache/mvn.log" >&2; echo "registry.sh: Maven build failed (log: $cache/mvn.log)" >&2; exit 1; }
  [ -f "$app" ] || { echo "registry.sh: the build made no $app" >&2; exit 1; }
  touch "$cache/.complete"
  echo "registry.sh: built in $((SECONDS - started)) s"
}

answers() { curl -fsS -o /dev/null --max-time 2 "$url/subjects" 2>/dev/null; }

start() {
  build
  if answers; then echo "registry.sh: a registry already answers on $url"; return 0; fi
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "registry.sh: something that is not a schema registry listens on 127.0.0.1:$port; set REGISTRY_PORT" >&2; exit 1; }
  nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.log.level=WARN -Dquarkus.log.category.\"io.apicurio\".level=INFO \
    -Dregistry.auth.enabled=false \
    -jar "$app" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 240); do
    if answers; then
      # Confluent's default level, so the registry refuses an incompatible schema as Confluent's would.
      curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
        --data '{"compatibility":"BACKWARD"}' "$url/config" \
        || { echo "registry.sh: could not set the global compatibility level" >&2; exit 1; }
      echo "registry.sh: registry up on $url (pid $(cat "$pidfile"), log $logfile)"
      return 0
    fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then tail -50 "$logfile" >&2; echo "registry.sh: registry exited" >&2; exit 1; fi
    sleep 0.5
  done
  tail -50 "$logfile" >&2; echo "registry.sh: registry did not answer within 120 s" >&2; exit 1
}

stop() {
  [ -f "$pidfile" ] || { echo "registry.sh: no registry started by this script on port $port"; return 0; }
  stop_process "$(cat "$pidfile")" "registry.sh: registry"
  rm -f "$pidfile"; echo "registry.sh: registry stopped"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) answers ;;
  url) echo "$url" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
