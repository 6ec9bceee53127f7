-- Per-run evolution data (evolution-tables.md), kept forever (no TTL). run_id leads every
-- ORDER BY: the seed's queries all filter on one run.
-- _kafka_* and non_replicated_deduplication_window: see 0001_cost_metrics.sql.
CREATE TABLE IF NOT EXISTS generations
(
    run_id           String,
    generation       Int32,
    timestamp        DateTime64(3, 'UTC'),
    task_name        LowCardinality(String),
    num_individuals  Int32,
    best_score       Float64,
    avg_score        Float64,
    pareto_size      Int32,
    total_cost       Float64,
    metadata         String,
    _kafka_topic     LowCardinality(String) DEFAULT '',
    _kafka_partition UInt32 DEFAULT 0,
    _kafka_offset    UInt64 DEFAULT 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (run_id, generation)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS individuals
(
    run_id           String,
    individual_id    String,
    generation       Int32,
    timestamp        DateTime64(3, 'UTC'),
    parent_id        String,
    mutation_type    LowCardinality(String),
    fitness_score    Float64,
    combined_score   Float64,
    metrics          String CODEC(ZSTD(3)),
    is_pareto        Bool,
    api_cost         Float64,
    embed_cost       Float64,
    novelty_cost     Float64,
    code_hash        String,
    code_size        Int32,
    _kafka_topic     LowCardinality(String) DEFAULT '',
    _kafka_partition UInt32 DEFAULT 0,
    _kafka_offset    UInt64 DEFAULT 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (run_id, generation, individual_id)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS pareto_fronts
(
    run_id           String,
    generation       Int32,
    timestamp        DateTime64(3, 'UTC'),
    individual_id    String,
    fitness_score    Float64,
    combined_score   Float64,
    metrics          String CODEC(ZSTD(3)),
    _kafka_topic     LowCardinality(String) DEFAULT '',
    _kafka_partition UInt32 DEFAULT 0,
    _kafka_offset    UInt64 DEFAULT 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (run_id, generation, individual_id)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

CREATE TABLE IF NOT EXISTS code_lineages
(
    run_id           String,
    child_id         String,
    parent_id        String,
    generation       Int32,
    mutation_type    LowCardinality(String),
    timestamp        DateTime64(3, 'UTC'),
    fitness_delta    Float64,
    edit_summary     String CODEC(ZSTD(3)),
    _kafka_topic     LowCardinality(String) DEFAULT '',
    _kafka_partition UInt32 DEFAULT 0,
    _kafka_offset    UInt64 DEFAULT 0
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (run_id, generation, child_id)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;
