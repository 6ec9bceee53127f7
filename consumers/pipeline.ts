import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import type { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { BatchStage } from './batch-stage.js';
import { CommitStage, type OffsetCommitter } from './commit-offsets.js';
import type { DeadLetterSink } from './dead-letter-queue.js';
import { DecodeStage } from './decode-stage.js';
import type { RowInserter } from './clickhouse-inserter.js';
import type { BodyFormat } from './insert-body.js';
import { InsertStage } from './insert-stage.js';
import type { RegistrySchemas } from './schema-registry.js';
import type { MemoryBudget, Semaphore } from './memory-budget.js';

/**
 * The whole data path of one consumer-group member, in order:
 *
 *   Kafka message
 *     → DecodeStage   Avro single-object decode + validation, straight into the batch's
 *                     insert body (RowBinary, or TabSeparated for a server); poison → dead-letter queue
 *     → BatchStage    per topic-partition batch, sealed by rows / bytes / age, or where the
 *                     partition's ledger says (a range to re-form after a crash or rebalance)
 *     → InsertStage   name the range in Kafka's commit metadata, insert with its deduplication
 *                     token, retry retriable failures with backoff for as long as it takes
 *                     (Kafka is the buffer); rows ClickHouse refuses go to RefusedRows
 *                     (refused-rows.ts), which lands the good ones and dead-letters the rest
 *     → CommitStage   commit past the range once rows and poison letters are durable
 *
 * The partition's offset protocol lives in one place, PartitionLedger (partition-ledger.ts): one
 * ledger per assignment of a partition, built when the partition is assigned (ConsumerMember
 * reads what Kafka holds, BatchStage.prepare builds it), carried by every batch sealed under it,
 * and revoked when the partition is no longer ours. A batch is stale if and only if its ledger
 * is revoked; the stages do the ledger's I/O and consult it.
 *
 * Each stage takes the next one in its constructor; only the last one commits.
 * Shared by all members of a process: the ClickHouse inserter, the memory budget, the insert
 * limiter and the dead-letter queue.
 */
export interface PipelineDeps {
  config: Pick<Config, 'batch' | 'insert' | 'deadLetter'>;
  lookup: SchemaLookup;
  /** Schema ids of Confluent-framed messages, resolved before their batch is decoded; unset without a registry. */
  registry?: RegistrySchemas;
  typeOfTopic: ReadonlyMap<string, EventType>;
  insert: RowInserter;
  /** The format `insert` takes (bodyFormatOf its client). */
  bodyFormat: BodyFormat;
  commit: OffsetCommitter;
  deadLetters: DeadLetterSink;
  budget: MemoryBudget;
  limiter: Semaphore;
  metrics: WorkerMetrics;
  log: Logger;
  clock?: () => number;
}

export interface Pipeline {
  readonly decode: DecodeStage;
  readonly batch: BatchStage;
}

export function createPipeline(d: PipelineDeps): Pipeline {
  const commit = new CommitStage(d.commit, d.config.insert, d.metrics, d.log);
  const insert = new InsertStage(commit, d.insert, d.commit, d.deadLetters, d.limiter, d.config.insert, d.metrics, d.log, d.clock);
  const batch = new BatchStage(insert, d.config.batch, d.budget, d.metrics, d.clock, d.bodyFormat);
  // The per-topic poison limit is the dead-letter sink's (one per process): see poison-limit.ts.
  const decode = new DecodeStage(batch, d.lookup, d.typeOfTopic, d.deadLetters, d.metrics, d.log);
  return { decode, batch };
}
