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
import { createRowEncoder } from './row-encoder.js';
import type { EventType } from '../schemas/event-type.js';
import { batchToken, type Batch, type DecodedRow, type InsertBatch } from './types.js';

/** Inserts rows into one table with a deduplication token; throws what ClickHouse threw. */
export type RowInserter = (table: string, rows: InsertBatch, token: string) => Promise<void>;

/**
 * Inserts rows of the given event types as TabSeparated text (see row-encoder.ts), with the
 * batch's deduplication token. Works the same against a ClickHouse server and embedded chDB.
 */
export function clickHouseInserter(client: ClickHouseClient, eventTypes: readonly EventType[]): RowInserter {
  const encoders = new Map(eventTypes.map((t) => [t.table, createRowEncoder(t)] as const));
  const raw = rawInsertOf(client);
  return async (table, rows, token) => {
    const encoder = encoders.get(table);
    if (!encoder) throw new Error(`no event type inserts into table ${table}`);
    const body = Buffer.from(encoder.encode(rows), 'utf8');
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
      await raw({ table, columns: encoder.columns, format: 'TabSeparated', body, settings });
      return;
    }
    await client.insert({
      table,
      columns: encoder.columns as [string, ...string[]],
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

/** Flat rows with their `_kafka_*` columns: how a failed batch is stored in the dead-letter queue. */
export function toLetterRows(batch: InsertBatch): Record<string, unknown>[] {
  return batch.rows.map((r) => ({ ...r.record, _kafka_topic: batch.topic, _kafka_partition: batch.partition, _kafka_offset: r.offset }));
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
    if (batch.rows.length > 0) {
      await this.journal.record(batch.topic, batch.partition, batch);
      const inserted = await this.limiter.run(async () => {
        const started = this.clock();
        const rows = await this.insertOrDeadLetter(batch, batch.rows, batchToken(batch));
        this.metrics.flushDuration.observe({ table }, (this.clock() - started) / 1000);
        return rows;
      });
      this.metrics.batchRows.observe({ table }, batch.rows.length);
      this.metrics.batchBytes.observe({ table }, batch.bytes);
      // End-to-end latency of the rows ClickHouse acknowledged (not of those handed to the queues).
      const now = this.clock();
      const tsField = batch.eventType.timestampField;
      const latency = this.metrics.endToEndLatency.labels({ table });
      for (const row of inserted) {
        const ts = row.record[tsField];
        if (typeof ts === 'number') latency.observe(Math.max(0, now - ts) / 1000);
      }
    }
    await this.next.submit(batch);
  }

  /** Returns the rows ClickHouse acknowledged; the others are in the dead-letter queue. */
  private async insertOrDeadLetter(batch: Batch, rows: readonly DecodedRow[], token: string): Promise<readonly DecodedRow[]> {
    const table = batch.eventType.table;
    let delay = this.config.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.insert(table, { topic: batch.topic, partition: batch.partition, rows }, token);
        this.metrics.rowsInserted.inc({ table }, rows.length);
        this.metrics.bytesInserted.inc({ table }, Math.round((batch.bytes * rows.length) / Math.max(1, batch.rows.length)));
        return rows;
      } catch (err) {
        const kind = classifyClickHouseError(err);
        this.metrics.insertErrors.inc({ table, kind });
        if (kind === 'fatal') throw err;
        if (kind === 'poison') return this.bisect(batch, rows, token, err);
        if (attempt >= this.config.attempts) {
          this.log.warn('insert failed after retries; handing the batch to the dead-letter retry queue', { table, token, rows: rows.length, err: err as Error });
          await this.deadLetters.failedBatch({ table, token, rows: toLetterRows({ topic: batch.topic, partition: batch.partition, rows }), topic: batch.topic, partition: batch.partition, firstOffset: batch.firstOffset, lastOffset: batch.lastOffset, error: String((err as Error).message ?? err) });
          return [];
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(this.config.maxBackoffMs, Math.max(1, delay * 2));
      }
    }
  }

  /** Splits a batch ClickHouse refused as data until the refused rows are isolated. */
  private async bisect(batch: Batch, rows: readonly DecodedRow[], token: string, err: unknown): Promise<readonly DecodedRow[]> {
    if (rows.length === 1) {
      const [row] = toLetterRows({ topic: batch.topic, partition: batch.partition, rows });
      await this.deadLetters.poison({
        topic: batch.topic,
        partition: batch.partition,
        offset: rows[0]!.offset,
        reason: 'rejected_by_clickhouse',
        detail: String((err as Error).message ?? err),
        value: null,
        row,
        table: batch.eventType.table,
      });
      this.metrics.poisonMessages.inc({ topic: batch.topic, reason: 'rejected_by_clickhouse' });
      return [];
    }
    const mid = Math.ceil(rows.length / 2);
    // Sub-batch tokens are derived from the parent's, so re-running the bisection dedups too.
    const left = await this.insertOrDeadLetter(batch, rows.slice(0, mid), `${token}/a`);
    const right = await this.insertOrDeadLetter(batch, rows.slice(mid), `${token}/b`);
    return [...left, ...right];
  }
}
