-- Evolution runs (evolution-tables.md). Each run is written as a start event and later update
-- events that carry only what changed (status, total_generations, end_time); null = unchanged.
-- CoalescingMergeTree keeps, per run_id, the last non-null value of every column, in insert
-- order (the worker inserts a Kafka partition's events in order, and all events of a run share
-- one partition because run_id is the message key).
-- No PARTITION BY: FINAL only collapses rows within one partition, and an update event does not
-- know the run's start_time, so partitioning by month of start_time would split a run. The table
-- holds one row per run after merges; it stays small.
-- _kafka_* and non_replicated_deduplication_window: see 0001_cost_metrics.sql.
CREATE TABLE IF NOT EXISTS evolution_run_events
(
    run_id            String,
    event_time        DateTime64(3, 'UTC'),
    start_time        Nullable(DateTime64(3, 'UTC')),
    end_time          Nullable(DateTime64(3, 'UTC')),
    task_name         LowCardinality(Nullable(String)),
    config            Nullable(String) CODEC(ZSTD(3)),
    status            LowCardinality(Nullable(String)),
    total_generations Nullable(Int32),
    population_size   Nullable(Int32),
    cluster_type      LowCardinality(Nullable(String)),
    database_path     Nullable(String),
    _kafka_topic      LowCardinality(String) DEFAULT '',
    _kafka_partition  UInt32 DEFAULT 0,
    _kafka_offset     UInt64 DEFAULT 0
)
ENGINE = CoalescingMergeTree
ORDER BY run_id
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

-- The table the seed's queries name: one current row per run. FINAL collapses unmerged start and
-- update rows at read time, so an update is visible at once (no OPTIMIZE needed). Columns read
-- with the seed's defaults: end_time epoch 0 until completion, total_generations 0.
CREATE VIEW IF NOT EXISTS evolution_runs AS
SELECT
    e.run_id AS run_id,
    ifNull(e.start_time, toDateTime64(0, 3, 'UTC')) AS start_time,
    ifNull(e.end_time, toDateTime64(0, 3, 'UTC')) AS end_time,
    toString(ifNull(e.task_name, '')) AS task_name,
    ifNull(e.config, '{}') AS config,
    toString(ifNull(e.status, '')) AS status,
    ifNull(e.total_generations, 0) AS total_generations,
    ifNull(e.population_size, 0) AS population_size,
    toString(ifNull(e.cluster_type, '')) AS cluster_type,
    ifNull(e.database_path, '') AS database_path,
    e.event_time AS updated_at
FROM evolution_run_events AS e FINAL;
