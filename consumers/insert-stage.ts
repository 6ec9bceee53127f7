import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { rawInsertOf } from '../lib/clickhouse.js';
import type { Config } from '../lib/config.js';
import { classifyClickHouseError, clickHouseCodeOf, isKnownRetriable } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { RetryAborted, retryRetriable } from '../lib/retry.js';
import type { BatchConsumer } from './batch-stage.js';
import { sendCommit, type OffsetCommitter } from './commit-offsets.js';
import type { DeadLetterSink } from './dead-letter-queue.js';
import type { Semaphore } from './memory-budget.js';
import { rowEncoderFor, type RowEncoder } from './row-encoder.js';
import { encodeRecords, sliceRows } from './tsv-body.js';
import type { EventType } from '../schemas/event-type.js';
import { BatchAbandoned, batchToken, type Batch, type EncodedRows, type InsertBatch } from './types.js';

/**
 * Inserts encoded rows into one table with a deduplication token; resolves with the rows
 * ClickHouse wrote (0 when it dropped the insert as a repeat of the same token), throws what
 * ClickHouse threw.
 */
export type RowInserter = (table: string, rows: EncodedRows, token: string) => Promise<number>;

/** Inserts decoded rows (dead-letter jobs): encodes them, then inserts through `insert`. */
export type RecordInserter = (table: string, rows: InsertBatch, token: string) => Promise<void>;

/**
 * Encoded rows whose insert may repeat an earlier one with the same token (a re-formed range,
 * a retry after a failure that may have landed, a bisection's halves), marked by InsertStage for
 * the inserter: on the embedded engine, finding out whether ClickHouse dropped a repeat costs
 * two queries and one-at-a-time inserts (see rawInsertOf), so only these pay it. A side table
 * rather than a parameter, so the rows carry the mark through any RowInserter wrapper.
 */
export const mayRepeat = new WeakSet<EncodedRows>();

/**
 * Rows of this insert that ClickHouse wrote, from the engine's written-rows count. That count
 * includes rows the tables' materialized views wrote (X-ClickHouse-Summary and chDB's
 * rowsWritten both do), hence the cap at the rows sent: a repeated token writes 0 rows to the
 * table and to its views, a new one writes at least `sent`. Unknown (no summary): `sent`.
 */
export function writtenRows(sent: number, reported: number | string | undefined): number {
  const n = Number(reported);
  return reported === undefined || !Number.isFinite(n) ? sent : Math.max(0, Math.min(sent, n));
}

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
      const summary = await raw({ table, columns, format: 'TabSeparated', body, settings, mayRepeat: mayRepeat.has(rows) });
      return summary.deduplicated ? 0 : writtenRows(rows.count, summary.rowsWritten);
    }
    const result = await client.insert({
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
    return writtenRows(rows.count, result.summary?.written_rows);
  };
}

/** Encodes decoded rows with the row encoder of their table before inserting them through `insert`. */
export function recordInserter(insert: RowInserter, eventTypes: readonly EventType[]): RecordInserter {
  const byTable = new Map(eventTypes.map((t) => [t.table, t] as const));
  return (table, rows, token) => {
    const type = byTable.get(table);
    if (!type) return Promise.reject(new Error(`no event type inserts into table ${table}`));
    return insert(table, encodeRecords(rowEncoderFor(type), type.timestampField, rows), token).then(() => undefined);
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
 * - Before the insert, the partition's ledger has Kafka name the range in the committed
 *   offset's metadata (partition-ledger.ts), and the insert carries a token derived from the
 *   range and its timestamps, so a repeat after a crash or rebalance is a no-op.
 * - Kafka is the buffer: a retriable failure (ClickHouse down, slow, overloaded, disk full,
 *   too many parts, a timeout, an unknown code, a proxy's error page) is retried in place with
 *   capped exponential backoff and full jitter, for as long as it takes. Nothing is committed
 *   meanwhile, so the partition's next batches wait, backpressure pauses its fetching, lag
 *   grows (and alerts), and the insert resumes by itself on recovery. A rebalance or a stop
 *   aborts the retries (BatchAbandoned): Kafka still holds the rows.
 * - A data error (ClickHouse refuses the rows themselves) bisects the batch so every good
 *   row lands and only the rows ClickHouse refuses are dead-lettered as poison.
 * - A bug in our code (classified fatal) rejects, and the worker stops without committing.
 */
export class InsertStage implements BatchConsumer {
  /** Partitions whose insert is failing now, for the one loud log line per streak. */
  private readonly streaks = new Map<string, { since: number; attempts: number }>();

  constructor(
    private readonly next: BatchConsumer,
    private readonly insert: RowInserter,
    private readonly commit: OffsetCommitter,
    private readonly deadLetters: DeadLetterSink,
    private readonly limiter: Semaphore,
    private readonly config: Config['insert'],
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    /** True when a rebalance happened since the batch was sealed: it must not insert or commit. */
    private readonly isStale: (batch: Batch) => boolean = () => false,
    private readonly clock: () => number = Date.now,
  ) {}

  async submit(batch: Batch): Promise<void> {
    const table = batch.eventType.table;
    if (batch.rows.count > 0) {
      // Durable in Kafka before the insert is sent: what a crash right after the insert needs.
      const journal = batch.ledger.beforeInsert(batch);
      if (journal) await sendCommit(batch, journal, 'journal', this.commit, this.config, this.isStale, this.log);
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

  /**
   * Returns the parts of `rows` ClickHouse acknowledged; the other rows are in the dead-letter
   * queue (poison). Retriable failures are retried until they succeed or the batch's signal
   * aborts (then BatchAbandoned).
   */
  private async insertOrDeadLetter(batch: Batch, rows: EncodedRows, token: string): Promise<readonly EncodedRows[]> {
    const table = batch.eventType.table;
    let written: number;
    let attempts = 0;
    try {
      ({ value: written } = await retryRetriable(
        async () => {
          if (this.isStale(batch)) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: rebalance since the batch was sealed`);
          if (attempts++ > 0 || batch.reason === 'replay' || rows !== batch.rows) mayRepeat.add(rows);
          try {
            return await this.insert(table, rows, token);
          } catch (err) {
            this.metrics.insertErrors.inc({ table, kind: classifyClickHouseError(err) });
            throw err;
          }
        },
        {
          backoff: this.config,
          signal: batch.signal,
          isRetriable: (err) => !(err instanceof BatchAbandoned) && classifyClickHouseError(err) === 'retriable',
          onFailure: (err, attempt, delayMs) => this.failing(batch, token, err, attempt, delayMs),
        },
      ));
    } catch (err) {
      this.recovered(batch, false);
      if (err instanceof RetryAborted) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: insert retries interrupted by a stop or rebalance`);
      if (err instanceof BatchAbandoned) throw err;
      if (classifyClickHouseError(err) === 'poison') return this.bisect(batch, rows, token, err);
      throw err;
    }
    this.recovered(batch, true);
    this.metrics.rowsInserted.inc({ table }, written);
    // A repeat of a token ClickHouse already has (a re-formed range after a crash): 0 written.
    if (written < rows.count) this.metrics.rowsDeduplicated.inc({ table }, rows.count - written);
    this.metrics.bytesInserted.inc({ table }, Math.round((batch.bytes * written) / Math.max(1, batch.rows.count)));
    return [rows];
  }

  /**
   * A retriable failure: loud (warn) once per streak, with the code and whether it is one we
   * know to be transient; an unknown one is retried all the same (lib/errors.ts).
   */
  private failing(batch: Batch, token: string, err: unknown, attempt: number, delayMs: number): void {
    const key = `${batch.topic}/${batch.partition}`;
    const streak = this.streaks.get(key);
    if (streak) {
      streak.attempts++;
      return;
    }
    this.streaks.set(key, { since: this.clock(), attempts: 1 });
    this.metrics.retryingPartitions.inc();
    const e = err as { message?: unknown; name?: unknown; code?: unknown };
    this.log.warn(isKnownRetriable(err) ? 'insert failing; retrying with backoff until it succeeds (rows wait in Kafka)' : 'insert failing with an error we do not recognise; treating it as retriable and retrying with backoff (rows wait in Kafka)', {
      table: batch.eventType.table,
      topic: batch.topic,
      partition: batch.partition,
      token,
      attempt,
      delayMs,
      code: clickHouseCodeOf(err) ?? (typeof e?.code === 'string' ? e.code : undefined),
      error: String(e?.message ?? err).slice(0, 500),
      errorName: typeof e?.name === 'string' ? e.name : undefined,
    });
  }

  private recovered(batch: Batch, ok: boolean): void {
    const key = `${batch.topic}/${batch.partition}`;
    const streak = this.streaks.get(key);
    if (!streak) return;
    this.streaks.delete(key);
    this.metrics.retryingPartitions.dec();
    const fields = { table: batch.eventType.table, topic: batch.topic, partition: batch.partition, failedAttempts: streak.attempts, seconds: (this.clock() - streak.since) / 1000 };
    if (ok) this.log.info('insert succeeded again after failures', fields);
    else this.log.info('insert retries ended without success (stop, rebalance or data error)', fields);
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
