# Sourced by the project's scripts: the loopback ports of the local services and the URLs the
# worker, the tests and the benchmark use to reach them. Override any of them in the environment.
#   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093): the local KRaft broker (scripts/kafka.sh)
#   REDIS_PORT (6380): the project's own redis-server, with AOF persistence (scripts/services.sh).
#     Not the machine's Redis on 6379: dead letters must survive a Redis restart.
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
export REDIS_PORT="${REDIS_PORT:-6380}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
