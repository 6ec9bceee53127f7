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
-- Replaces-checksum: a9a07d273752dbad
-- (the first version of this file copied the old table and dropped it: not re-runnable after a
-- crash past the DROP, and it discarded rows old workers inserted between the copy and the drop.
-- A database that applied that version completely is not migrated again.)
--
-- Rolling upgrade: workers of the previous release keep inserting into evolution_run_events
-- while this runs and until they are replaced. So the old table is never dropped here:
--   1. the new table;
--   2. the old table, recreated empty if an interrupted run of the first version dropped it;
--   3. a materialized view forwarding every insert into the old table to the new one, from now on;
--   4. a copy of the old table's rows the new one lacks (NOT IN over whole rows, so re-running it
--      after a crash copies only what is missing, and rows the view already forwarded are skipped);
--   5. the view, switched to the new table once it holds everything.
-- Every statement is idempotent, so the runner can resume after any of them.
-- The old table and the forwarding view are removed by hand once no old worker is left
-- (docs/operations.md, "Migrations and upgrades").
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

-- Same definition as 0005_evolution_runs.sql.
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

CREATE MATERIALIZED VIEW IF NOT EXISTS evolution_run_events_forward_mv TO evolution_run_updates AS
SELECT run_id, event_time, start_time, end_time, task_name, config, status, total_generations,
       population_size, cluster_type, database_path, _kafka_topic, _kafka_partition, _kafka_offset
FROM evolution_run_events;

-- transform_null_in: a NULL column compares equal to NULL here, so a copied row with NULLs
-- (every update event has some) is recognised as present on a re-run.
INSERT INTO evolution_run_updates
SELECT run_id, event_time, start_time, end_time, task_name, config, status, total_generations,
       population_size, cluster_type, database_path, _kafka_topic, _kafka_partition, _kafka_offset
FROM evolution_run_events
WHERE (run_id, event_time, start_time, end_time, task_name, config, status, total_generations, population_size, cluster_type, database_path, _kafka_topic, _kafka_partition, _kafka_offset) NOT IN (
    SELECT run_id, event_time, start_time, end_time, task_name, config, status, total_generations, population_size, cluster_type, database_path, _kafka_topic, _kafka_partition, _kafka_offset
    FROM evolution_run_updates)
SETTINGS transform_null_in = 1;

CREATE OR REPLACE VIEW evolution_runs AS
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
