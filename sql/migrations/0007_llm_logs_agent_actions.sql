-- LLM calls and system events (evolution-tables.md). No TTL here: retention is an operator's
-- choice, applied with sql/retention.ts (ALTER TABLE ... MODIFY TTL / REMOVE TTL).
-- run_id is our addition (nullable; see schemas/llm-logs.ts).
-- _kafka_* and non_replicated_deduplication_window: see 0001_cost_metrics.sql.
CREATE TABLE IF NOT EXISTS llm_logs
(
    id               UUID,
    timestamp        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    model            LowCardinality(String),
    messages         String CODEC(ZSTD(3)),
    response         String CODEC(ZSTD(3)),
    cost             Float64,
    execution_time   Float64,
    metadata         String CODEC(ZSTD(3)),
    run_id           Nullable(String),
    _kafka_topic     LowCardinality(String) DEFAULT '',
    _kafka_partition UInt32 DEFAULT 0,
    _kafka_offset    UInt64 DEFAULT 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (model, timestamp)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS agent_actions
(
    id               UUID,
    timestamp        DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    action_type      LowCardinality(String),
    details          String CODEC(ZSTD(3)),
    metadata         String CODEC(ZSTD(3)),
    run_id           Nullable(String),
    _kafka_topic     LowCardinality(String) DEFAULT '',
    _kafka_partition UInt32 DEFAULT 0,
    _kafka_offset    UInt64 DEFAULT 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (action_type, timestamp)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;
