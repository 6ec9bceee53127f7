-- evolution_runs, take two: the current row of a run no longer depends on insert order.
--
-- 0005 kept run events in a CoalescingMergeTree, which keeps the last *inserted* non-null value
-- per column. Inserts are not always in event order: a batch that went through the dead-letter
-- retry queue, or a replayed dead letter, lands after newer events of the same run, and a late
-- start event would turn a completed run back to "running".
--
-- Now every start/update event is kept (plain MergeTree), and the view picks, per column, the
-- latest non-null value by (event_time, Kafka offset): events of one run share a partition
-- (key run_id), so the offset orders events emitted in the same millisecond.
CREATE TABLE IF NOT EXISTS evolution_run_updates
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
ENGINE = MergeTree
ORDER BY (run_id, event_time)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

-- Carry over what 0005's table holds; the token makes a re-run of this statement a no-op.
INSERT INTO evolution_run_updates
SETTINGS insert_deduplication_token = '0008_evolution_runs_copy'
SELECT run_id, event_time, start_time, end_time, task_name, config, status, total_generations,
       population_size, cluster_type, database_path, _kafka_topic, _kafka_partition, _kafka_offset
FROM evolution_run_events;

DROP VIEW IF EXISTS evolution_runs;

CREATE VIEW IF NOT EXISTS evolution_runs AS
SELECT
    run_id,
    ifNull(argMaxIf(start_time, (event_time, _kafka_offset), start_time IS NOT NULL), toDateTime64(0, 3, 'UTC')) AS start_time,
    ifNull(argMaxIf(end_time, (event_time, _kafka_offset), end_time IS NOT NULL), toDateTime64(0, 3, 'UTC')) AS end_time,
    toString(ifNull(argMaxIf(task_name, (event_time, _kafka_offset), task_name IS NOT NULL), '')) AS task_name,
    ifNull(argMaxIf(config, (event_time, _kafka_offset), config IS NOT NULL), '{}') AS config,
    toString(ifNull(argMaxIf(status, (event_time, _kafka_offset), status IS NOT NULL), '')) AS status,
    ifNull(argMaxIf(total_generations, (event_time, _kafka_offset), total_generations IS NOT NULL), 0) AS total_generations,
    ifNull(argMaxIf(population_size, (event_time, _kafka_offset), population_size IS NOT NULL), 0) AS population_size,
    toString(ifNull(argMaxIf(cluster_type, (event_time, _kafka_offset), cluster_type IS NOT NULL), '')) AS cluster_type,
    ifNull(argMaxIf(database_path, (event_time, _kafka_offset), database_path IS NOT NULL), '') AS database_path,
    max(event_time) AS updated_at
FROM evolution_run_updates
GROUP BY run_id;

DROP TABLE IF EXISTS evolution_run_events;
