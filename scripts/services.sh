#!/usr/bin/env bash
# Starts (or stops) the local services: Apache Kafka (KRaft, from Maven Central jars) and Redis.
#   scripts/services.sh start | stop | status
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
. "$root/scripts/env.sh"
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; }

start_redis() {
  if redis_up; then
    echo "services: redis answers on 127.0.0.1:$REDIS_PORT"
    # One started before appendfsync always was required: the worker refuses it (lib/redis.ts).
    local fsync
    fsync="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config get appendfsync 2>/dev/null | sed -n 2p)"
    if [ -n "$fsync" ] && [ "$fsync" != always ]; then
      echo "services: warning: that redis runs appendfsync $fsync and the worker refuses it; restart it (scripts/services.sh stop, then start) or run: redis-cli -p $REDIS_PORT config set appendfsync always" >&2
    fi
    return 0
  fi
  if ! command -v redis-server >/dev/null; then
    echo "services: installing redis-server (Debian package)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
      || { echo "services: could not install redis-server; install it or set REDIS_URL" >&2; exit 1; }
  fi
  # Our own Redis, persisted with AOF fsynced before each reply and never evicting: it holds
  # the dead letters, and the worker commits past a poison message once Redis acknowledged its
  # letter, so an acknowledged write must survive a crash. Debian 12's redis-server is 7.0,
  # without WAITAOF (7.2), so appendfsync always is what makes that promise here.
  local dir="$root/.cache/redis-$REDIS_PORT"
  mkdir -p "$dir"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do redis_up && { echo "services: redis started on 127.0.0.1:$REDIS_PORT (AOF in $dir)"; return 0; }; sleep 0.1; done
  echo "services: redis did not start" >&2; exit 1
}

case "${1:-start}" in
  start) start_redis; "$root/scripts/kafka.sh" start ;;
  stop) "$root/scripts/kafka.sh" stop; "$root/scripts/kafka.sh" stop-secure; redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true ;;
  status) redis_up && "$root/scripts/kafka.sh" status && echo "services: up" ;;
  *) echo "usage: scripts/services.sh start|stop|status" >&2; exit 2 ;;
esac
