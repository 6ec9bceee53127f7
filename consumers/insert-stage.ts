import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { rawInsertOf } from '../lib/clickhouse.js';
import type { Config } from '../lib/config.js';
import { classifyClickHouseError, clickHouseCodeOf, isKnownRetriable } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { abortableSleep, RetryAborted, retryRetriable, retryUntilDone } from '../lib/retry.js';
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
export function clickHouseInserter(client: ClickHouseClient, eventTypes: readonly EventType[], extraSettings: Readonly<Record<string, number>> = {}): RowInserter {
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
      deduplicate_blocks_in_dependent_materialized_views: 1, // and in the hourly rollups, with their own window (sql/migrations/0010)
      // Make the insert synchronous and durable before we commit the offsets.
      async_insert: 0,
      // The worker validated every value; never let ClickHouse skip or default rows silently.
      input_format_allow_errors_num: 0,
      input_format_allow_errors_ratio: 0,
      // Sharded layout: DISTRIBUTED_INSERT_SETTINGS (sql/ddl.ts), so the insert returns only once
      // every shard has its rows and the offset commit after it covers nothing still queued.
      ...extraSettings,
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
   * Inserts `rows` under `token`, retrying retriable failures in place with capped backoff until
   * they succeed, the batch goes stale (BatchAbandoned) or its signal aborts (RetryAborted). An
   * insert that may repeat an earlier one (a retry, a replayed range, a bisection part) is
   * marked mayRepeat, so its written rows are counted as ClickHouse reports a dropped repeat.
   */
  private insertRetrying(batch: Batch, rows: EncodedRows, token: string) {
    const table = batch.eventType.table;
    let attempts = 0;
    return retryRetriable(
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
    );
  }

  /**
   * Returns the parts of `rows` ClickHouse acknowledged; the other rows are in the dead-letter
   * queue (poison). Retriable failures are retried until they succeed or the batch's signal
   * aborts (then BatchAbandoned).
   */
  private async insertOrDeadLetter(batch: Batch, rows: EncodedRows, token: string): Promise<readonly EncodedRows[]> {
    const table = batch.eventType.table;
    let written: number;
    try {
      ({ value: written } = await this.insertRetrying(batch, rows, token));
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

  /**
   * Settles a batch ClickHouse refused as data: every good row lands, only the rows ClickHouse
   * refuses are dead-lettered (rejected_by_clickhouse, retried from the queue until a table fix
   * lands them), and a table that refuses everything is stopped instead of bisected.
   *
   * Bounded: the batch is split level by level (halves, quarters, ...) while every part keeps
   * being refused. When all 2^d parts of level d = BISECT_VERDICT_DEPTH (+1 per failed probe)
   * are refused and none landed, the table is the problem (a retyped column), not the rows: no
   * row is dead-lettered, the topic is stopped (deadLetters.limit.tableRefusing: gauge, log),
   * and after a pause with backoff the batch is probed whole with its own token. Meanwhile this
   * insert holds no insert slot and nothing commits, so the partition's later batches wait and
   * the consumer pauses it: Kafka keeps the rows, and the other tables keep flowing. A batch
   * with a few bad rows spread over every part looks the same once; the probe looks one level
   * deeper each time (up to BISECT_MAX_VERDICT_DEPTH), so it is settled row by row soon after.
   * Cost of a refusing table: 2^(d+1) - 2 inserts per probe (14 at first, at most 126), instead
   * of about 2n per batch. A batch of 64 rows or fewer whose every row is refused on its own
   * gives no such evidence: it counts as the table refusing for two probes, then its rows are
   * dead-lettered through the poison limit (which stops the topic if they are too many).
   *
   * Once some part lands, the refused parts are bisected down to single rows. Each refused row
   * is counted by the topic's poison limit: when the topic's share of poison is spiking, the row
   * waits (as above) instead of being dead-lettered. Tokens derive from the parent's and the
   * position, so re-running a bisection after a crash deduplicates what landed.
   */
  private async bisect(batch: Batch, rows: EncodedRows, token: string, err: unknown): Promise<readonly EncodedRows[]> {
    let error = err;
    for (let probe = 0; ; probe++) {
      const settled = await this.isolate(batch, rows, token, Math.min(BISECT_MAX_VERDICT_DEPTH, BISECT_VERDICT_DEPTH + probe), probe);
      if (settled !== 'table') {
        this.deadLetters.limit.recovered(batch.topic);
        return settled;
      }
      const detail = `ClickHouse refused every part of ${batch.topic}[${batch.partition}] ${batch.firstOffset}-${batch.lastOffset} (${rows.count} rows) as data: table ${batch.eventType.table} is refusing rows (a changed column type?), not the rows themselves. Its partitions wait in Kafka; nothing is dead-lettered. Last error: ${errorText(error)}`;
      const pauseMs = this.deadLetters.limit.tableRefusing(batch.topic, detail);
      await this.limiter.yielding(() => this.pause(batch, pauseMs));
      const whole = await this.attempt(batch, rows, token);
      if (whole === true) {
        this.deadLetters.limit.recovered(batch.topic);
        return [rows];
      }
      error = whole;
    }
  }

  /**
   * One bounded bisection of `rows` (refused as a whole). Returns the parts that landed, or
   * 'table' when every part down to level `verdictDepth` was refused.
   */
  private async isolate(batch: Batch, rows: EncodedRows, token: string, verdictDepth: number, probe: number): Promise<readonly EncodedRows[] | 'table'> {
    const landed: EncodedRows[] = [];
    let refused: Part[] = [{ rows, token, error: undefined }];
    for (let depth = 1; depth <= verdictDepth; depth++) {
      if (refused.every((p) => p.rows.count === 1)) {
        // Every row refused on its own. A small batch gives no other evidence, so the first
        // two times it counts as the table refusing; then the rows are dead-lettered (through
        // the poison limit, which stops the topic if its share of poison spikes).
        if (probe < 2) return 'table';
        break;
      }
      const next: Part[] = [];
      for (const part of refused) {
        if (part.rows.count === 1) {
          next.push(part); // refused on its own already
          continue;
        }
        for (const child of halves(part)) {
          const outcome = await this.attempt(batch, child.rows, child.token);
          if (outcome === true) landed.push(child.rows);
          else next.push({ ...child, error: outcome });
        }
      }
      refused = next;
      if (landed.length > 0) break;
    }
    if (landed.length === 0 && refused.some((p) => p.rows.count > 1)) return 'table';
    for (const part of refused) landed.push(...(await this.settle(batch, part)));
    return landed;
  }

  /** Bisects a refused part down to single rows; dead-letters the rows ClickHouse refuses. */
  private async settle(batch: Batch, part: Part): Promise<readonly EncodedRows[]> {
    if (part.rows.count > 1) {
      const landed: EncodedRows[] = [];
      for (const child of halves(part)) {
        const outcome = await this.attempt(batch, child.rows, child.token);
        if (outcome === true) landed.push(child.rows);
        else landed.push(...(await this.settle(batch, { ...child, error: outcome })));
      }
      return landed;
    }
    const limit = this.deadLetters.limit;
    while (!limit.admitPoison(batch.topic)) {
      // The topic's share of poison is spiking: this row waits (nothing commits) and is tried
      // again after the hold; a table fixed meanwhile takes it.
      await this.limiter.yielding(() => this.pause(batch, Math.max(10, limit.heldForMs(batch.topic))));
      const outcome = await this.attempt(batch, part.rows, part.token);
      if (outcome === true) return [part.rows];
      part = { ...part, error: outcome };
    }
    const [row] = toLetterRows(this.decoded(batch, part.rows));
    const letter = {
      topic: batch.topic,
      partition: batch.partition,
      offset: part.rows.offsets[0]!,
      reason: 'rejected_by_clickhouse' as const,
      detail: errorText(part.error),
      value: null,
      row,
      table: batch.eventType.table,
    };
    // The batch commits after this returns, so the letter must be durable first: a Redis
    // outage or a full queue makes the partition wait here, never lose the row.
    try {
      await retryUntilDone('dead-letter write of a refused row', () => this.deadLetters.poison(letter), this.log, { signal: batch.signal });
    } catch (err) {
      // A stop or rebalance while Redis refuses the letter: the batch is given up, not failed
      // (nothing of it commits; Kafka re-delivers the row), as for an interrupted insert.
      if (err instanceof RetryAborted) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: dead-letter write interrupted by a stop or rebalance`);
      throw err;
    }
    this.metrics.poisonMessages.inc({ topic: batch.topic, reason: 'rejected_by_clickhouse' });
    return [];
  }

  /**
   * Inserts one part of a batch that is being bisected: true when it landed, the error when
   * ClickHouse refused it as data. Retriable failures are retried in place with capped
   * backoff (the rows stay in Kafka meanwhile); a stop or rebalance abandons the batch; fatal
   * errors are thrown. Parts are marked mayRepeat: a re-run bisection repeats their tokens.
   */
  private async attempt(batch: Batch, rows: EncodedRows, token: string): Promise<true | unknown> {
    const table = batch.eventType.table;
    mayRepeat.add(rows);
    try {
      const { value: written } = await this.insertRetrying(batch, rows, token);
      this.recovered(batch, true);
      this.metrics.rowsInserted.inc({ table }, written);
      if (written < rows.count) this.metrics.rowsDeduplicated.inc({ table }, rows.count - written);
      this.metrics.bytesInserted.inc({ table }, Math.round((batch.bytes * written) / Math.max(1, batch.rows.count)));
      return true;
    } catch (err) {
      this.recovered(batch, false);
      if (err instanceof RetryAborted) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: insert retries interrupted by a stop or rebalance`);
      if (err instanceof BatchAbandoned) throw err;
      if (classifyClickHouseError(err) === 'poison') return err;
      throw err;
    }
  }

  /** Waits `ms` between probes of a stopped table; a stop or rebalance abandons the batch (Kafka keeps its rows). */
  private async pause(batch: Batch, ms: number): Promise<void> {
    await abortableSleep(ms, batch.signal);
    if (batch.signal.aborted || this.isStale(batch)) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: stopped table's wait interrupted by a stop or rebalance`);
  }

  private decoded(batch: Batch, rows: EncodedRows): InsertBatch {
    return decodedRows(rows, rowEncoderFor(batch.eventType));
  }
}

/** Levels of a refused batch split (2^d parts) before it counts as its table refusing every row; see InsertStage.bisect. */
export const BISECT_VERDICT_DEPTH = 3;
/** The deepest level the probes of a stopped table look at (64 parts): a batch with bad rows in all of them is held, not dead-lettered. */
export const BISECT_MAX_VERDICT_DEPTH = 6;

interface Part {
  rows: EncodedRows;
  token: string;
  error: unknown;
}

/** The two halves of a part, with tokens derived from its own (`/a`, `/b`), as before bounded bisection. */
function halves(part: Part): Part[] {
  const mid = Math.ceil(part.rows.count / 2);
  return [
    { rows: sliceRows(part.rows, 0, mid), token: `${part.token}/a`, error: undefined },
    { rows: sliceRows(part.rows, mid, part.rows.count), token: `${part.token}/b`, error: undefined },
  ];
}

function errorText(err: unknown): string {
  return String((err as Error | undefined)?.message ?? err);
}

