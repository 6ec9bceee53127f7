import type { Config } from '../lib/config.js';
import { classifyClickHouseError, clickHouseCodeOf, isKnownRetriable } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { abortableSleep, RetryAborted, retryRetriable } from '../lib/retry.js';
import type { BatchConsumer } from './batch-stage.js';
import { mayRepeat, type RowInserter } from './clickhouse-inserter.js';
import { sendCommit, type OffsetCommitter } from './commit-offsets.js';
import type { DeadLetterSink } from './dead-letter-queue.js';
import type { Semaphore } from './memory-budget.js';
import { RefusedRows } from './refused-rows.js';
import { BatchAbandoned, batchToken, type Batch, type EncodedRows } from './types.js';

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
    deadLetters: DeadLetterSink,
    private readonly limiter: Semaphore,
    private readonly config: Config['insert'],
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.refused = new RefusedRows({ attempt: (b, r, t) => this.attempt(b, r, t), pause: (b, ms) => this.pause(b, ms) }, deadLetters, limiter, metrics, log);
  }

  /** Where a batch ClickHouse refused as data is settled (refused-rows.ts). */
  private readonly refused: RefusedRows;

  async submit(batch: Batch): Promise<void> {
    const table = batch.eventType.table;
    if (batch.rows.count > 0) {
      // Durable in Kafka before the insert is sent: what a crash right after the insert needs.
      const journal = batch.ledger.beforeInsert(batch);
      if (journal) await sendCommit(batch, journal, 'journal', this.commit, this.config, this.log);
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
        if (batch.ledger.revoked) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: the assignment was revoked since the batch was sealed`);
        if (attempts++ > 0 || batch.reason === 'replay' || rows !== batch.rows) mayRepeat.add(rows);
        try {
          const written = await this.insert(table, rows, token);
          this.wakeBackingOff(table);
          return written;
        } catch (err) {
          this.metrics.insertErrors.inc({ table, kind: classifyClickHouseError(err) });
          throw err;
        }
      },
      {
        backoff: this.config,
        signal: batch.ledger.signal,
        sleep: (ms, signal) => this.backOff(table, ms, signal),
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
      if (classifyClickHouseError(err) === 'poison') return this.refused.settle(batch, rows, token, err);
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
   * Inserts one part of a batch that is being bisected: true when it landed, the error when
   * ClickHouse refused it as data. Retriable failures are retried in place with capped
   * backoff (the rows stay in Kafka meanwhile); a stop or rebalance abandons the batch; fatal
   * errors are thrown. Parts are marked mayRepeat: a re-run bisection repeats their tokens.
   */
  async attempt(batch: Batch, rows: EncodedRows, token: string): Promise<true | unknown> {
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

  /**
   * A retry's wait: `ms` (the jittered backoff), cut short by a stop or rebalance (`signal`) or
   * by an insert into the same table that lands. After an outage (ClickHouse down, its disk
   * full) each partition's retry waits out its own jittered delay, up to maxBackoffMs (10 s by
   * default): without the wake-up, the last partition would resume up to that long after
   * ClickHouse is back, although the first insert to land already proved it is. (In the fault
   * suite, waking each retried insert only once, or only on a retry that lands, left the
   * disk-full recovery at 5.8-7.2 s against 2.1 s, likely because inserts also land now and then
   * while the disk is full, spending those wake-ups early; docs/reliability.md.)
   * The cost: where one batch fails on its own (over the memory limit, say) while the table's
   * other inserts land, it is retried as often as they land instead of backing off; its
   * ceiling still grows, and another table's inserts never wake it.
   */
  private backOff(table: string, ms: number, signal: AbortSignal): Promise<void> {
    let wake = this.wakes.get(table);
    if (!wake) this.wakes.set(table, (wake = new AbortController()));
    return abortableSleep(ms, AbortSignal.any([signal, wake.signal]));
  }

  /** Ends the wait of every retry into `table` backing off now (an insert into it just landed). */
  private wakeBackingOff(table: string): void {
    const wake = this.wakes.get(table);
    if (!wake) return;
    // The waits to come get a controller of their own.
    this.wakes.delete(table);
    wake.abort();
  }

  /** Per table, what ends the retries' waits now (backOff), replaced at each wake-up. */
  private readonly wakes = new Map<string, AbortController>();

  /** Waits `ms` between probes of a stopped table; a stop or rebalance abandons the batch (Kafka keeps its rows). */
  async pause(batch: Batch, ms: number): Promise<void> {
    await abortableSleep(ms, batch.ledger.signal);
    if (batch.ledger.signal.aborted) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: stopped table's wait interrupted by a stop or rebalance`);
  }
}
