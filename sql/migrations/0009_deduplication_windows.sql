-- The deduplication window on every table the worker inserts into, for every engine.
--
-- Why: the worker's exactly-once relies on ClickHouse dropping a repeated insert. After a crash
-- between an insert and its offset commit (or a rebalance), the batch is re-formed from the
-- journal and re-inserted with the same insert_deduplication_token; ClickHouse drops it only if
-- the token is still among the hashes it remembers, so the window must reach back further than
-- the longest such gap (a restart, the retry queue's backoff).
--   non_replicated_deduplication_window: MergeTree on one server (0001-0008 already set it);
--   replicated_deduplication_window(_seconds): Replicated*MergeTree on a cluster and
--   SharedMergeTree on ClickHouse Cloud, where the hashes live in Keeper. Their server default
--   (1000 blocks, in recent releases fewer seconds too) is about 80 s of history at 12 partitions
--   per table. Both limits apply; 10000 blocks and 7 days match the single-server window.
-- evolution_run_events is left out: only workers of the release before 0008 insert there, it may be
-- gone (the first version of 0008 dropped it), and 0005 gave it its window.
-- MODIFY SETTING is idempotent, and a MergeTree accepts the replicated settings (unused there),
-- so the same statements serve every layout.
ALTER TABLE cost_metrics_ts MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE performance_metrics_ts MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE resource_metrics_ts MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE quality_metrics_ts MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE evolution_run_updates MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE generations MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE individuals MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE pareto_fronts MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE code_lineages MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE llm_logs MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;

ALTER TABLE agent_actions MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800;
