import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { rawInsertOf } from '../lib/clickhouse.js';
import type { Config } from '../lib/config.js';
import { classifyClickHouseError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import type { BatchJournal } from './batch-journal.js';
import type { BatchConsumer } from './batch-stage.js';
import type { DeadLetterSink } from './dead-letter-queue.js';
import type { Semaphore } from './memory-budget.js';
import { rowEncoderFor, type RowEncoder } from './row-encoder.js';
import { encodeRecords, sliceRows } from './tsv-body.js';
import type { EventType } from '../schemas/event-type.js';
import { batchToken, type Batch, type EncodedRows, type InsertBatch } from './types.js';

/** Inserts encoded rows into one table with a deduplication token; throws what ClickHouse threw. */
export type RowInserter = (table: string, rows: EncodedRows, token: string) => Promise<void>;

/** Inserts decoded rows (dead-letter jobs): encodes them, then inserts through `insert`. */
export type RecordInserter = (table: string, rows: InsertBatch, token: string) => Promise<void>;

/**
 * Inserts TabSeparated bodies (see tsv-body.ts) into the tables of the given event types, with
 * the batch's deduplication token. Works the same against a ClickHouse server and embedded chDB.
 */
export function clickHouseInserter(client: ClickHouseClient, eventTypes: readonly EventType[]): RowInserter {
  const columnsOf = new Map(eventTypes.map((t) => [t.table, rowEncoderFor(t).columns] as const));
  const raw = rawInsertOf(client);
  return async (table, rows, token) => {
    const columns = columnsOf.get(table);
    if (!columns) throw new Error(`no event type inserts into table ${table}`);
    const body = rows.body;
    const settings = {
      // Same token, same batch: ClickHouse ignores the repeat (needs the table's
      // non_replicated_deduplication_window, or replicated tables' default window).
      insert_deduplicate: 1,
      insert_deduplication_token: token,
      // Make the insert synchronous and durable before we commit the offsets.
      async_insert: 0,
      // The worker validated every value; never let ClickHouse skip or default rows silently.
      input_format_allow_errors_num: 0,
      input_format_allow_errors_ratio: 0,
    } as const;
    if (raw) {
      await raw({ table, columns, format: 'TabSeparated', body, settings });
      return;
    }
    await client.insert({
      table,
      columns: columns as [string, ...string[]],
      format: 'TabSeparated',
      values: new Readable({
        read() {
          this.push(body);
          this.push(null);
        },
      }),
      clickhouse_settings: { ...settings, input_format_allow_errors_num: '0' },
    });
  };
}

/** Encodes decoded rows with the row encoder of their table before inserting them through `insert`. */
export function recordInserter(insert: RowInserter, eventTypes: readonly EventType[]): RecordInserter {
  const byTable = new Map(eventTypes.map((t) => [t.table, t] as const));
  return (table, rows, token) => {
    const type = byTable.get(table);
    if (!type) return Promise.reject(new Error(`no event type inserts into table ${table}`));
    return insert(table, encodeRecords(rowEncoderFor(type), type.timestampField, rows), token);
  };
}

/** Flat rows with their `_kafka_*` columns: how a failed batch is stored in the dead-letter queue. */
export function toLetterRows(batch: InsertBatch): Record<string, unknown>[] {
  return batch.rows.map((r) => ({ ...r.record, _kafka_topic: batch.topic, _kafka_partition: batch.partition, _kafka_offset: r.offset }));
}

/** Reads encoded rows back into records (from their lines) for the dead-letter queue. */
export function decodedRows(rows: EncodedRows, encoder: Pick<RowEncoder, 'decode'>): InsertBatch {
  return {
    topic: rows.topic,
    partition: rows.partition,
    rows: rows.offsets.map((offset, i) => ({
      offset,
      // Each line without its newline.
      record: encoder.decode(rows.body.toString('utf8', i === 0 ? 0 : rows.ends[i - 1], rows.ends[i]! - 1)),
      bytes: 0,
    })),
  };
}

/** The inverse of toLetterRows, for the retry worker. */
export function fromLetterRows(topic: string, partition: number, rows: readonly Record<string, unknown>[]): InsertBatch {
  return { topic, partition, rows: rows.map((record) => ({ offset: Number(record._kafka_offset ?? 0), record, bytes: 0 })) };
}

/**
 * Inserts a sealed batch, then hands it to the commit stage.
 *
 * - The range is journaled before the insert, and the insert carries a token derived from
 *   topic, partition and offsets, so a repeat after a crash or rebalance is a no-op.
 * - Retriable failures (ClickHouse down, timeouts, too many parts) are retried in process
 *   with exponential backoff, `attempts` times; then the batch goes to the dead-letter retry
 *   queue with the same token and the partition moves on: its offsets commit, the queue
 *   owns the rows now.
 * - A data error (ClickHouse refuses the rows themselves) bisects the batch so every good
 *   row lands and only the rows ClickHouse refuses are dead-lettered as poison.
 * - Anything else is fatal: the returned promise rejects and the worker stops without
 *   committing.
 */
export class InsertStage implements BatchConsumer {
  constructor(
    private readonly next: BatchConsumer,
    private readonly insert: RowInserter,
    private readonly journal: BatchJournal,
    private readonly deadLetters: DeadLetterSink,
    private readonly limiter: Semaphore,
    private readonly config: Config['insert'],
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  async submit(batch: Batch): Promise<void> {
    const table = batch.eventType.table;
    if (batch.rows.count > 0) {
      await this.journal.record(batch.topic, batch.partition, batch);
      const inserted = await this.limiter.run(async () => {
        const started = this.clock();
        const rows = await this.insertOrDeadLetter(batch, batch.rows, batchToken(batch));
        this.metrics.flushDuration.observe({ table }, (this.clock() - started) / 1000);
        return rows;
      });
      this.metrics.batchRows.observe({ table }, batch.rows.count);
      this.metrics.batchBytes.observe({ table }, batch.bytes);
      // End-to-end latency of the rows ClickHouse acknowledged (not of those handed to the queues).
      const now = this.clock();
      const latency = this.metrics.endToEndLatency.labels({ table });
      for (const part of inserted) {
        for (const ts of part.timestamps) if (!Number.isNaN(ts)) latency.observe(Math.max(0, now - ts) / 1000);
      }
    }
    await this.next.submit(batch);
  }

  /** Returns the parts of `rows` ClickHouse acknowledged; the other rows are in the dead-letter queue. */
  private async insertOrDeadLetter(batch: Batch, rows: EncodedRows, token: string): Promise<readonly EncodedRows[]> {
    const table = batch.eventType.table;
    let delay = this.config.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.insert(table, rows, token);
        this.metrics.rowsInserted.inc({ table }, rows.count);
        this.metrics.bytesInserted.inc({ table }, Math.round((batch.bytes * rows.count) / Math.max(1, batch.rows.count)));
        return [rows];
      } catch (err) {
        const kind = classifyClickHouseError(err);
        this.metrics.insertErrors.inc({ table, kind });
        if (kind === 'fatal') throw err;
        if (kind === 'poison') return this.bisect(batch, rows, token, err);
        if (attempt >= this.config.attempts) {
          this.log.warn('insert failed after retries; handing the batch to the dead-letter retry queue', { table, token, rows: rows.count, err: err as Error });
          await this.deadLetters.failedBatch({ table, token, rows: toLetterRows(this.decoded(batch, rows)), topic: batch.topic, partition: batch.partition, firstOffset: batch.firstOffset, lastOffset: batch.lastOffset, error: String((err as Error).message ?? err) });
          return [];
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(this.config.maxBackoffMs, Math.max(1, delay * 2));
      }
    }
  }

  /** Splits a batch ClickHouse refused as data until the refused rows are isolated. */
  private async bisect(batch: Batch, rows: EncodedRows, token: string, err: unknown): Promise<readonly EncodedRows[]> {
    if (rows.count === 1) {
      const [row] = toLetterRows(this.decoded(batch, rows));
      await this.deadLetters.poison({
        topic: batch.topic,
        partition: batch.partition,
        offset: rows.offsets[0]!,
        reason: 'rejected_by_clickhouse',
        detail: String((err as Error).message ?? err),
        value: null,
        row,
        table: batch.eventType.table,
      });
      this.metrics.poisonMessages.inc({ topic: batch.topic, reason: 'rejected_by_clickhouse' });
      return [];
    }
    const mid = Math.ceil(rows.count / 2);
    // Sub-batch tokens are derived from the parent's, so re-running the bisection dedups too.
    const left = await this.insertOrDeadLetter(batch, sliceRows(rows, 0, mid), `${token}/a`);
    const right = await this.insertOrDeadLetter(batch, sliceRows(rows, mid, rows.count), `${token}/b`);
    return [...left, ...right];
  }

  private decoded(batch: Batch, rows: EncodedRows): InsertBatch {
    return decodedRows(rows, rowEncoderFor(batch.eventType));
  }
}
