import type { BodyFormat } from './insert-body.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { tokenOf, type LedgerRange, type PartitionLedger } from './partition-ledger.js';

/** One Kafka message as the pipeline sees it. Offsets are numbers: safe below 2^53. */
export interface KafkaRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly value: Buffer | null;
  /** Broker/producer timestamp, epoch ms. */
  readonly timestamp: number;
}

/** A decoded row bound for a table, still carrying the offset it came from. */
export interface DecodedRow {
  readonly offset: number;
  readonly record: Record<string, unknown>;
  readonly bytes: number;
}

/** Decoded rows of one table from one topic-partition (dead-letter jobs, the benchmark's sink). */
export interface InsertBatch {
  readonly topic: string;
  readonly partition: number;
  readonly rows: readonly DecodedRow[];
}

/**
 * Rows bound for one table from one topic-partition, already encoded as the insert body:
 * what the inserter receives (see insert-body.ts).
 */
export interface EncodedRows {
  readonly topic: string;
  readonly partition: number;
  readonly format: BodyFormat;
  /** One row after another (TabSeparated lines or RowBinary rows), in the table's column order plus the `_kafka_*` columns. */
  readonly body: Buffer;
  readonly count: number;
  /** End (exclusive) of each row in `body`. */
  readonly ends: readonly number[];
  readonly offsets: readonly number[];
  /** Event time of each row, epoch ms (NaN when the row has none), for the end-to-end histogram. */
  readonly timestamps: readonly number[];
}

/**
 * A sealed batch: the rows of one topic-partition between two offsets, with the
 * offsets it may commit once its rows are durable. `firstOffset..lastOffset` covers
 * every message consumed for it, poison ones included, so the range and the timestamps of its
 * ends identify the batch (see partition-ledger.ts and the deduplication token).
 */
export interface Batch extends LedgerRange {
  readonly topic: string;
  readonly partition: number;
  readonly eventType: EventType;
  readonly firstOffset: number;
  readonly lastOffset: number;
  /**
   * The partition's offset protocol for the assignment the batch was sealed under: the insert
   * and commit stages report to it. The batch is stale (no insert, no commit) once it is revoked,
   * and its retry loops give up when `ledger.signal` aborts (a stop or a revocation).
   */
  readonly ledger: PartitionLedger;
  readonly rows: EncodedRows;
  /** Encoded (Avro) bytes of the messages in the range. */
  readonly bytes: number;
  /** Messages consumed for the range, poison ones included. */
  readonly messages: number;
  readonly reason: import('../lib/metrics.js').FlushReason;
  /** Dead-letter writes of poison messages in this range; the batch commits only after them. */
  readonly poisonWrites: readonly Promise<unknown>[];
}

export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** Thrown by `submit` when the pipeline cannot take a message now; the caller pauses and retries later. */
export class MessageRejected extends Error {
  override readonly name = 'MessageRejected';
}

/** Deduplication token of a batch: deterministic in what the batch contains (see tokenOf). */
export function batchToken(b: Pick<Batch, 'topic' | 'partition' | 'firstOffset' | 'lastOffset' | 'firstTimestamp' | 'lastTimestamp'>): string {
  return tokenOf(b.topic, b.partition, b);
}

/**
 * Thrown through the stages when a batch was given up without being inserted or committed: a
 * rebalance or a stop interrupted its retries. Not a failure: Kafka still holds its messages
 * (nothing committed past them) and the metadata of the committed offset names its range.
 */
export class BatchAbandoned extends Error {
  override readonly name = 'BatchAbandoned';
}
