import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric of the worker: name, help and labels, in one place (the producer SDK's own are in
 * producers/typescript/src/producer-metrics.ts, on prom-client too).
 * Conventions: base units in names (`_seconds`, `_bytes`), `_total` for counters, and
 * bounded label values (table, topic, partition, event type, fixed reason enums; never
 * offsets, ids or error messages). docs/operations.md explains each metric.
 */

export const FLUSH_REASONS = ['rows', 'bytes', 'age', 'replay', 'shutdown'] as const;
export type FlushReason = (typeof FLUSH_REASONS)[number];

const SIZE_BUCKETS = [1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000];
const BYTE_BUCKETS = [1_024, 16_384, 131_072, 1_048_576, 4_194_304, 16_777_216, 67_108_864];
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/**
 * Finer around the flush window (BATCH_MAX_WAIT_MS, 1 s by default), where an end-to-end SLO
 * sits: "p99 within the window + 500 ms" needs buckets at 1.25, 1.5 and 2 s to be told apart;
 * long tails up to an hour for catch-up after an outage.
 */
const END_TO_END_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

export function createWorkerMetrics(registry: Registry = new Registry(), opts: { defaults?: boolean } = {}) {
  if (opts.defaults) collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    messagesConsumed: new Counter({ name: 'ingest_messages_consumed_total', help: 'Kafka messages received by the worker.', labelNames: ['topic'], registers: r }),
    messageBytesConsumed: new Counter({ name: 'ingest_message_bytes_consumed_total', help: 'Kafka message value bytes received by the worker.', labelNames: ['topic'], registers: r }),
    rowsInserted: new Counter({ name: 'ingest_rows_inserted_total', help: 'Rows ClickHouse wrote (its written-rows summary): a deduplicated repeat of an insert writes 0.', labelNames: ['table'], registers: r }),
    rowsDeduplicated: new Counter({ name: 'ingest_rows_deduplicated_total', help: 'Rows of acknowledged inserts that ClickHouse dropped as repeats of an earlier insert with the same deduplication token (re-formed ranges after a crash or rebalance).', labelNames: ['table'], registers: r }),
    retryingPartitions: new Gauge({ name: 'ingest_insert_retrying_partitions', help: 'Partitions whose current insert is failing and being retried with backoff (their rows wait in Kafka).', registers: r }),
    bytesInserted: new Counter({ name: 'ingest_bytes_inserted_total', help: 'Encoded message bytes of the rows acknowledged by ClickHouse.', labelNames: ['table'], registers: r }),
    batchRows: new Histogram({ name: 'ingest_batch_rows', help: 'Rows per flushed batch.', labelNames: ['table'], buckets: SIZE_BUCKETS, registers: r }),
    batchBytes: new Histogram({ name: 'ingest_batch_bytes', help: 'Encoded bytes per flushed batch.', labelNames: ['table'], buckets: BYTE_BUCKETS, registers: r }),
    flushDuration: new Histogram({ name: 'ingest_flush_duration_seconds', help: 'Time to insert one batch into ClickHouse, retries included.', labelNames: ['table'], buckets: LATENCY_BUCKETS, registers: r }),
    flushes: new Counter({ name: 'ingest_flushes_total', help: 'Batches flushed, by what triggered the flush.', labelNames: ['table', 'reason'], registers: r }),
    insertErrors: new Counter({ name: 'ingest_insert_errors_total', help: 'Failed insert attempts, by failure kind (retriable, poison, fatal).', labelNames: ['table', 'kind'], registers: r }),
    offsetsCommitted: new Counter({ name: 'ingest_offset_commits_total', help: 'Offset commits after durable inserts.', labelNames: ['topic'], registers: r }),
    registryLookups: new Counter({ name: 'ingest_schema_registry_lookups_total', help: 'Schema ids of Confluent-framed messages looked up in the schema registry, by outcome (learned; refused: an unknown_schema_id letter; failed: the registry did not answer, the partition waits).', labelNames: ['outcome'], registers: r }),
    poisonMessages: new Counter({ name: 'ingest_poison_messages_total', help: 'Messages dead-lettered as poison, by reason.', labelNames: ['topic', 'reason'], registers: r }),
    deadLetterEnqueued: new Counter({ name: 'ingest_dead_letter_enqueued_total', help: 'Jobs put on the dead-letter queues: failed batches to retry, poison messages to rest.', labelNames: ['kind'], registers: r }),
    deadLetterRetried: new Counter({ name: 'ingest_dead_letter_retried_total', help: 'Retry attempts of dead letters, by outcome (ok; failed; unsettled: the letter\'s offset is not committed yet, so it waits).', labelNames: ['outcome'], registers: r }),
    deadLetterDead: new Counter({ name: 'ingest_dead_letter_dead_total', help: 'Jobs that exhausted their retries and rest as dead letters.', labelNames: ['kind'], registers: r }),
    deadLetterReplayed: new Counter({ name: 'ingest_dead_letter_replayed_total', help: 'Dead letters replayed and inserted.', labelNames: ['kind'], registers: r }),
    deadLetterDepth: new Gauge({ name: 'ingest_dead_letter_depth', help: 'Jobs currently in the dead-letter queues, by queue state (retrying, dead).', labelNames: ['state'], registers: r }),
    deadLetterBytes: new Gauge({ name: 'ingest_dead_letter_bytes', help: 'Bytes of the dead letters not yet landed or dropped (counted against deadLetter.maxBytes).', registers: r }),
    deadLetterUsage: new Gauge({ name: 'ingest_dead_letter_usage_ratio', help: 'Share of the dead-letter queue bound in use: the larger of letters / deadLetter.maxLetters and bytes / deadLetter.maxBytes.', registers: r }),
    deadLetterRefused: new Counter({ name: 'ingest_dead_letter_refused_total', help: 'Dead-letter writes refused because the queue is full, by the bound reached (letters, bytes); the partition waits and retries.', labelNames: ['bound'], registers: r }),
    stoppedByPoisonLimit: new Gauge({ name: 'ingest_topic_stopped', help: '1 while a topic is stopped by the poison limit (its messages wait in Kafka), by cause: poison_share (too many poison messages), table_refusing (its table refuses every row).', labelNames: ['topic', 'cause'], registers: r }),
    endToEndLatency: new Histogram({ name: 'ingest_end_to_end_latency_seconds', help: 'Event timestamp to insert acknowledged, per row.', labelNames: ['table'], buckets: END_TO_END_BUCKETS, registers: r }),
    bufferedBytes: new Gauge({ name: 'ingest_buffered_bytes', help: 'Estimated heap bytes of messages buffered in batches and in-flight inserts (bounded by memory.maxBufferedBytes).', registers: r }),
    offsetResets: new Counter({ name: 'ingest_offset_resets_total', help: "Fetches whose offset was outside the partition's log (records deleted by retention before they were consumed, or a truncated log), reset by the Kafka client to the default offset; and partitions read afresh from the start of a topic deleted and created again.", labelNames: ['topic'], registers: r }),
    pausedPartitions: new Gauge({ name: 'ingest_paused_partitions', help: 'Partitions whose fetching is paused by backpressure.', registers: r }),
    consumerLag: new Gauge({ name: 'ingest_consumer_lag_messages', help: 'Log-end offset minus committed offset.', labelNames: ['group', 'topic', 'partition'], registers: r }),
    partitionStuck: new Gauge({ name: 'ingest_partition_stuck', help: '1 when a partition has lag and no committed progress for metrics.stuckAfterMs.', labelNames: ['group', 'topic', 'partition'], registers: r }),
    freshness: new Gauge({ name: 'ingest_freshness_seconds', help: 'Now minus the event time of the newest queryable row, per table.', labelNames: ['table'], registers: r }),
    assignedPartitions: new Gauge({ name: 'ingest_assigned_partitions', help: 'Partitions assigned to this process.', registers: r }),
    rebalances: new Counter({ name: 'ingest_rebalances_total', help: 'Consumer-group joins (rebalances) seen by this process.', registers: r }),
    dependencyUp: new Gauge({ name: 'ingest_dependency_up', help: "1 when the last readiness probe of a dependency (kafka, clickhouse, redis) answered, 0 when not (/readyz fails meanwhile).", labelNames: ['dependency'], registers: r }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
