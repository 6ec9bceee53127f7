import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { RetryAborted, retryUntilDone } from '../lib/retry.js';
import type { DeadLetterSink } from './dead-letter-queue.js';
import { decodedRows, toLetterRows } from './letter-rows.js';
import type { Semaphore } from './memory-budget.js';
import { sliceRows } from './insert-body.js';
import { BatchAbandoned, type Batch, type EncodedRows } from './types.js';

/** How RefusedRows inserts a part and waits between probes (InsertStage supplies both). */
export interface PartInserter {
  /**
   * Inserts one part under `token`: true when it landed, the error when ClickHouse refused it as
   * data. Retriable failures are retried inside; a stop or revocation throws BatchAbandoned.
   */
  attempt(batch: Batch, rows: EncodedRows, token: string): Promise<true | unknown>;
  /** Waits `ms` between probes of a stopped table; a stop or revocation throws BatchAbandoned. */
  pause(batch: Batch, ms: number): Promise<void>;
}

/**
 * What happens to a batch ClickHouse refused as data: it is split until every good row has
 * landed and only the rows ClickHouse refuses on their own remain, which are dead-lettered; a
 * table that refuses everything is held instead (see settle).
 */
export class RefusedRows {
  constructor(
    private readonly rows: PartInserter,
    private readonly deadLetters: DeadLetterSink,
    private readonly limiter: Semaphore,
    private readonly metrics: Pick<WorkerMetrics, 'poisonMessages'>,
    private readonly log: Logger,
  ) {}

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
  async settle(batch: Batch, rows: EncodedRows, token: string, err: unknown): Promise<readonly EncodedRows[]> {
    let error = err;
    for (let probe = 0; ; probe++) {
      const settled = await this.isolate(batch, rows, token, Math.min(BISECT_MAX_VERDICT_DEPTH, BISECT_VERDICT_DEPTH + probe), probe);
      if (settled !== 'table') {
        this.deadLetters.limit.recovered(batch.topic);
        return settled;
      }
      const detail = `ClickHouse refused every part of ${batch.topic}[${batch.partition}] ${batch.firstOffset}-${batch.lastOffset} (${rows.count} rows) as data: table ${batch.eventType.table} is refusing rows (a changed column type?), not the rows themselves. Its partitions wait in Kafka; nothing is dead-lettered. Last error: ${errorText(error)}`;
      const pauseMs = this.deadLetters.limit.tableRefusing(batch.topic, detail);
      await this.limiter.yielding(() => this.rows.pause(batch, pauseMs));
      const whole = await this.rows.attempt(batch, rows, token);
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
          const outcome = await this.rows.attempt(batch, child.rows, child.token);
          if (outcome === true) landed.push(child.rows);
          else next.push({ ...child, error: outcome });
        }
      }
      refused = next;
      if (landed.length > 0) break;
    }
    if (landed.length === 0 && refused.some((p) => p.rows.count > 1)) return 'table';
    for (const part of refused) landed.push(...(await this.settleRows(batch, part)));
    return landed;
  }

  /** Bisects a refused part down to single rows; dead-letters the rows ClickHouse refuses. */
  private async settleRows(batch: Batch, part: Part): Promise<readonly EncodedRows[]> {
    if (part.rows.count > 1) {
      const landed: EncodedRows[] = [];
      for (const child of halves(part)) {
        const outcome = await this.rows.attempt(batch, child.rows, child.token);
        if (outcome === true) landed.push(child.rows);
        else landed.push(...(await this.settleRows(batch, { ...child, error: outcome })));
      }
      return landed;
    }
    const limit = this.deadLetters.limit;
    while (!limit.admitPoison(batch.topic)) {
      // The topic's share of poison is spiking: this row waits (nothing commits) and is tried
      // again after the hold; a table fixed meanwhile takes it.
      await this.limiter.yielding(() => this.rows.pause(batch, Math.max(10, limit.heldForMs(batch.topic))));
      const outcome = await this.rows.attempt(batch, part.rows, part.token);
      if (outcome === true) return [part.rows];
      part = { ...part, error: outcome };
    }
    const [row] = toLetterRows(decodedRows(part.rows, batch.eventType));
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
      // Written without holding an insert slot: during a Redis outage this waits, and the other
      // partitions' inserts must keep landing meanwhile.
      await this.limiter.yielding(() => retryUntilDone('dead-letter write of a refused row', () => this.deadLetters.poison(letter, { signal: batch.ledger.signal }), this.log, { signal: batch.ledger.signal }));
    } catch (err) {
      // A stop or rebalance while Redis refuses the letter: the batch is given up, not failed
      // (nothing of it commits; Kafka re-delivers the row), as for an interrupted insert.
      if (err instanceof RetryAborted) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: dead-letter write interrupted by a stop or rebalance`);
      throw err;
    }
    this.metrics.poisonMessages.inc({ topic: batch.topic, reason: 'rejected_by_clickhouse' });
    return [];
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

