-- A deduplication window on every hourly rollup, so that a rollup deduplicates with its source.
--
-- Why: the worker re-inserts a batch with the same insert_deduplication_token after a failure or
-- a crash. When the raw table's part committed but the write of a materialized view failed (a
-- full disk, a memory limit in the view's GROUP BY, Keeper), the raw table drops the retry as a
-- repeat. With deduplicate_blocks_in_dependent_materialized_views = 0 (the server default before
-- ClickHouse 26.2) the view then never receives the rows: the rollup loses them. The worker
-- therefore sends deduplicate_blocks_in_dependent_materialized_views = 1: every view runs on the
-- retry and its target table decides for itself, with a token derived from the insert's token,
-- the view and the block number. That needs a window on the target table too: without one (a
-- MergeTree's non_replicated_deduplication_window is 0 by default) every repeat of a batch would
-- be counted again in the rollup, which is what ClickHouse 26.2 and later do by default.
-- Same windows as the raw tables (0009): 10000 blocks and 7 days; MODIFY SETTING is idempotent,
-- and a MergeTree accepts the replicated settings (unused there), so one statement serves every
-- layout (sql/ddl.ts renders it for the table that stores the rows: t_local when sharded).
ALTER TABLE cost_metrics_hourly MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE performance_metrics_hourly MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE resource_metrics_hourly MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE quality_metrics_hourly MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
