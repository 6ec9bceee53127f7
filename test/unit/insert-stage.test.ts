import { describe, expect, it, vi } from 'vitest';
import type { BatchConsumer } from '../../consumers/batch-stage.js';
import type { OffsetCommitter } from '../../consumers/commit-offsets.js';
import type { DeadLetterSink } from '../../consumers/dead-letter-queue.js';
import type { RowInserter } from '../../consumers/clickhouse-inserter.js';
import { InsertStage } from '../../consumers/insert-stage.js';
import { Semaphore } from '../../consumers/memory-budget.js';
import { encodeRange, PartitionLedger } from '../../consumers/partition-ledger.js';
import { PoisonLimit } from '../../consumers/poison-limit.js';
import { InsertBody } from '../../consumers/insert-body.js';
import { BatchAbandoned, type Batch } from '../../consumers/types.js';
import { recordingLog } from '../helpers/recording-log.js';
import { createWorkerMetrics } from '../../lib/metrics.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { performanceMetrics } from '@kafka-clickhouse-ingest/producer/schemas/performance-metrics.js';


function batchOf(ledger: PartitionLedger, first: number, n: number): Batch {
  const body = new InsertBody('t', 0);
  for (let o = first; o < first + n; o++) {
    body.writeText(`${o}\n`);
    body.endRow(o, Number.NaN);
  }
  return { topic: 't', partition: 0, eventType: costMetrics, firstOffset: first, lastOffset: first + n - 1, firstTimestamp: 1_000, lastTimestamp: 2_000, ledger, rows: body.finish(), bytes: 10 * n, messages: n, reason: 'rows', poisonWrites: [] };
}

/** A batch of `n` rows from `first` on the ledger's partition, sealed there. */
function sealedBatch(ledger: PartitionLedger, n = 5, first = 0, eventType: Batch['eventType'] = costMetrics): Batch {
  const b = { ...batchOf(ledger, first, n), partition: ledger.partition, eventType };
  ledger.sealed(b);
  return b;
}

const noDeadLetters: DeadLetterSink = {
  poison: async () => expect.fail('nothing is poison here'),
  failedBatch: async () => expect.fail('a retriable failure never goes to the dead-letter queue'),
  limit: new PoisonLimit({ maxRatio: 0.5, window: 1_000, initialPauseMs: 1_000, maxPauseMs: 1_000 }),
};
const done: BatchConsumer = { submit: async () => undefined };
const config = { initialBackoffMs: 1, maxBackoffMs: 4, concurrency: 1 };

describe('InsertStage', () => {
  it('names the range in Kafka before inserting, retries an unknown ClickHouse code until it lands, logs the streak once', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const events: string[] = [];
    let failures = 0;
    const insert: RowInserter = async (_table, rows, token) => {
      events.push(`insert ${token}`);
      if (failures++ < 6) throw Object.assign(new Error('Code: 439. CANNOT_SCHEDULE_TASK'), { code: '439' });
      return rows.count;
    };
    const commit: OffsetCommitter = async (_t, _p, offset, metadata, purpose) => void events.push(`${purpose} ${offset} ${metadata}`);
    const metrics = createWorkerMetrics();
    const { log, lines } = recordingLog();
    const stage = new InsertStage(done, insert, commit, noDeadLetters, new Semaphore(1), config, metrics, log);
    const b = batchOf(ledger, 0, 5);
    ledger.sealed(b);
    await stage.submit(b);
    expect(events[0]).toBe(`journal 0 ${encodeRange(b)}`);
    expect(events.slice(1)).toEqual(Array(7).fill('insert t/0/0-4/1000-2000'));
    expect((await metrics.insertErrors.get()).values.map((v) => [v.labels.kind, v.value])).toEqual([['retriable', 6]]);
    expect((await metrics.rowsInserted.get()).values[0]!.value).toBe(5);
    expect((await metrics.retryingPartitions.get()).values[0]!.value).toBe(0);
    const warns = lines.filter(([level]) => level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]![1]).toMatch(/do not recognise/);
    expect(warns[0]![2]).toMatchObject({ code: 439, attempt: 1 });
    expect(lines.some(([level, m, f]) => level === 'info' && /succeeded again/.test(m) && f?.failedAttempts === 6)).toBe(true);
  });

  it('counts a repeat ClickHouse dropped (0 rows written) as deduplicated, not inserted', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const metrics = createWorkerMetrics();
    const stage = new InsertStage(done, async () => 0, async () => undefined, noDeadLetters, new Semaphore(1), config, metrics, recordingLog().log);
    await stage.submit(batchOf(ledger, 0, 5));
    expect((await metrics.rowsInserted.get()).values[0]!.value).toBe(0);
    expect((await metrics.rowsDeduplicated.get()).values[0]!.value).toBe(5);
  });

  it('a stop or rebalance interrupts the retries promptly: BatchAbandoned, nothing committed past the range', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const commits: Array<[number, string]> = [];
    const insert: RowInserter = async () => {
      throw Object.assign(new Error('Code: 243. NOT_ENOUGH_SPACE'), { code: '243' });
    };
    const stage = new InsertStage(done, insert, async (_t, _p, o, _m, purpose) => void commits.push([o, purpose]), noDeadLetters, new Semaphore(1), { ...config, initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, createWorkerMetrics(), recordingLog().log);
    setTimeout(() => ledger.stopRetrying(), 30);
    const started = Date.now();
    await expect(stage.submit(batchOf(ledger, 0, 5))).rejects.toBeInstanceOf(BatchAbandoned);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(commits).toEqual([[0, 'journal']]);
  });

  it('an insert that lands wakes the retries into its table backing off: after an outage no partition waits out its own jittered delay', async () => {
    let up = false;
    let failed = 0;
    const landed: number[] = [];
    const insert: RowInserter = async (_table, rows, token) => {
      if (!up) {
        failed++;
        throw Object.assign(new Error('Code: 243. NOT_ENOUGH_SPACE'), { code: '243' });
      }
      landed.push(Number(token.split('/')[1]));
      return rows.count;
    };
    // Full jitter of a 60 s ceiling, drawn at 0.99 for partitions 0 and 1 (59.4 s each) and at
    // 0.01 for partition 2 (0.6 s), whose retry is the first to land.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const ledgers = [0, 1, 2].map((p) => new PartitionLedger('t', p, { offset: 0, metadata: null }));
    try {
      const stage = new InsertStage(done, insert, async () => undefined, noDeadLetters, new Semaphore(3), { ...config, initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, createWorkerMetrics(), recordingLog().log);
      const waiting = Promise.all([stage.submit(sealedBatch(ledgers[0]!)), stage.submit(sealedBatch(ledgers[1]!))]);
      while (failed < 2) await new Promise((r) => setTimeout(r, 5));
      random.mockReturnValue(0.01);
      const third = stage.submit(sealedBatch(ledgers[2]!));
      while (failed < 3) await new Promise((r) => setTimeout(r, 5));
      // ClickHouse is back: partition 2's retry lands after 0.6 s and wakes the other two.
      up = true;
      await third;
      await Promise.race([waiting, new Promise((_, reject) => setTimeout(() => reject(new Error('partitions 0 and 1 still backing off 3 s after an insert landed')), 3_000))]);
      expect(failed).toBe(3);
      expect(landed[0]).toBe(2);
      expect(landed.slice(1).sort()).toEqual([0, 1]);
    } finally {
      random.mockRestore();
      for (const ledger of ledgers) ledger.stopRetrying();
    }
  });

  it("an insert into another table does not wake a table's retries", async () => {
    let costAttempts = 0;
    const insert: RowInserter = async (table, rows) => {
      if (table === costMetrics.table) {
        costAttempts++;
        throw Object.assign(new Error('Code: 252. TOO_MANY_PARTS'), { code: '252' });
      }
      return rows.count;
    };
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const ledgers = [0, 1].map((p) => new PartitionLedger('t', p, { offset: 0, metadata: null }));
    try {
      const stage = new InsertStage(done, insert, async () => undefined, noDeadLetters, new Semaphore(2), { ...config, initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, createWorkerMetrics(), recordingLog().log);
      const failing = stage.submit(sealedBatch(ledgers[0]!)).catch((err: unknown) => err);
      while (costAttempts < 1) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 5; i++) await stage.submit(sealedBatch(ledgers[1]!, 5, i * 5, performanceMetrics));
      await new Promise((r) => setTimeout(r, 50));
      expect(costAttempts).toBe(1);
      ledgers[0]!.stopRetrying();
      expect(await failing).toBeInstanceOf(BatchAbandoned);
    } finally {
      random.mockRestore();
      for (const ledger of ledgers) ledger.stopRetrying();
    }
  });

  it('a bug in our code is still fatal', async () => {
    const ledger = new PartitionLedger('t', 0);
    const bug = new TypeError("Cannot read properties of undefined (reading 'body')");
    const stage = new InsertStage(done, async () => {
      throw bug;
    }, async () => undefined, noDeadLetters, new Semaphore(1), config, createWorkerMetrics(), recordingLog().log);
    await expect(stage.submit(batchOf(ledger, 0, 5))).rejects.toBe(bug);
  });
});
