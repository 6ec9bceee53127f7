import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BatchStage, memoryCost, type BatchConsumer } from '../../consumers/batch-stage.js';
import { CommitFenced, CommitStage, fencedPartition } from '../../consumers/commit-offsets.js';
import { InsertStage } from '../../consumers/insert-stage.js';
import { MemoryBudget, Semaphore } from '../../consumers/memory-budget.js';
import { encodeRange, PartitionLedger } from '../../consumers/partition-ledger.js';
import { InsertBody } from '../../consumers/insert-body.js';
import { BatchAbandoned, MessageRejected, type Batch } from '../../consumers/types.js';
import type { DeadLetterSink } from '../../consumers/dead-letter-queue.js';
import { PoisonLimit } from '../../consumers/poison-limit.js';
import { classifyClickHouseError, classifyKafkaError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import { createWorkerMetrics } from '../../lib/metrics.js';
import { rowEncoderFor } from '../../consumers/row-encoder.js';
import { encodeRecords } from '../../consumers/insert-body.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { sampleEvents } from '../fixtures/events.js';

/**
 * The edges of a partition's protocol that the per-assignment ledger closes: each case failed
 * (deadlocked, lost or duplicated rows, or sent a stale commit) when the protocol was spread
 * over the stages with epochs and a separate skip watermark.
 */
const log = createLogger({}, 'silent');
const tick = () => new Promise((r) => setImmediate(r));

class Recorder implements BatchConsumer {
  readonly batches: Batch[] = [];
  async submit(batch: Batch): Promise<void> {
    this.batches.push(batch);
  }
}

describe('re-formed ranges and the memory budget', () => {
  it('3 partitions each re-forming 100 messages of 500 B under a 100,000 B budget all seal (no deadlock)', async () => {
    const next = new Recorder();
    const budget = new MemoryBudget(100_000);
    const stage = new BatchStage(next, { maxRows: 10_000, maxBytes: 10_000_000, maxWaitMs: 60_000 }, budget, createWorkerMetrics(), () => 0);
    // Each range alone costs more than the whole budget: 100 x memoryCost(500).
    expect(100 * memoryCost(500)).toBeGreaterThan(100_000);
    for (const p of [0, 1, 2]) {
      await stage.prepare('t', p, costMetrics, async () => ({ offset: 0, metadata: encodeRange({ firstOffset: 0, lastOffset: 99, firstTimestamp: 0, lastTimestamp: 0 }) }), async () => undefined);
    }
    let refused = 0;
    for (let o = 0; o < 100; o++) {
      for (const p of [0, 1, 2]) {
        try {
          const body = stage.reserve('t', p, costMetrics, o, 500, 0);
          body.writeText(`${o}\n`);
          body.endRow(o, Number.NaN);
          stage.append('t', p, o, 500);
        } catch (err) {
          if (!(err instanceof MessageRejected)) throw err;
          refused++;
        }
      }
    }
    await tick();
    expect(refused).toBe(0);
    expect(next.batches.map((b) => [b.partition, b.firstOffset, b.lastOffset, b.reason])).toEqual([
      [0, 0, 99, 'replay'],
      [1, 0, 99, 'replay'],
      [2, 0, 99, 'replay'],
    ]);
  });

  it('messages past the re-formed range are refused by the budget again', async () => {
    const budget = new MemoryBudget(1_000);
    const stage = new BatchStage(new Recorder(), { maxRows: 10_000, maxBytes: 10_000_000, maxWaitMs: 60_000 }, budget, createWorkerMetrics(), () => 0);
    await stage.prepare('t', 0, costMetrics, async () => ({ offset: 0, metadata: encodeRange({ firstOffset: 0, lastOffset: 1, firstTimestamp: 0, lastTimestamp: 0 }) }), async () => undefined);
    budget.acquire(costMetrics.table, 5_000); // another partition of the table holds the budget
    for (const o of [0, 1]) {
      stage.reserve('t', 0, costMetrics, o, 500, 0).endRow(o, Number.NaN);
      stage.append('t', 0, o, 500);
    }
    expect(() => stage.reserve('t', 0, costMetrics, 2, 500, 0)).toThrow(MessageRejected);
  });
});

describe('age seals', () => {
  it('run on the monotonic clock: a wall clock stepped back an hour does not hold a batch open', async () => {
    let wall = 1_000_000;
    let mono = 0;
    const next = new Recorder();
    const stage = new BatchStage(next, { maxRows: 100, maxBytes: 1_000_000, maxWaitMs: 500 }, new MemoryBudget(1e9), createWorkerMetrics(), { wall: () => wall, monotonic: () => mono });
    stage.reserve('t', 0, costMetrics, 0, 10, wall).endRow(0, Number.NaN);
    stage.append('t', 0, 0, 10);
    wall -= 3_600_000; // NTP steps the wall clock back
    mono += 500;
    stage.poll();
    await tick();
    expect(next.batches.map((b) => b.reason)).toEqual(['age']);
  });
});

describe('a revoked assignment', () => {
  it('makes its batches stale: the commit stage sends nothing for them', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const sent: number[] = [];
    const stage = new CommitStage(async (_t, _p, o) => void sent.push(o), { initialBackoffMs: 1, maxBackoffMs: 1 }, createWorkerMetrics(), log);
    const batch = (first: number, last: number): Batch => ({ topic: 't', partition: 0, eventType: costMetrics, firstOffset: first, lastOffset: last, firstTimestamp: 0, lastTimestamp: 0, ledger, rows: new InsertBody('t', 0).finish(), bytes: 0, messages: 0, reason: 'rows', poisonWrites: [] });
    await stage.submit(batch(0, 9));
    ledger.revoke();
    await stage.submit(batch(10, 19));
    expect(sent).toEqual([10]);
  });

  it('gives up a batch whose poison letters wait on a Redis that is down, at a stop, instead of hanging', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const never = new Promise<void>(() => undefined);
    const stage = new CommitStage(async () => undefined, { initialBackoffMs: 1, maxBackoffMs: 1 }, createWorkerMetrics(), log);
    const outcome = stage.submit({ topic: 't', partition: 0, eventType: costMetrics, firstOffset: 0, lastOffset: 0, firstTimestamp: 0, lastTimestamp: 0, ledger, rows: new InsertBody('t', 0).finish(), bytes: 0, messages: 1, reason: 'rows', poisonWrites: [never] }).catch((e: unknown) => e);
    await tick();
    ledger.stopRetrying();
    expect(await outcome).toBeInstanceOf(BatchAbandoned);
    expect(ledger.committed).toBe(0);
  });

  it('at a stop, a batch whose letters are already durable still commits', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const sent: number[] = [];
    const stage = new CommitStage(async (_t, _p, o) => void sent.push(o), { initialBackoffMs: 1, maxBackoffMs: 1 }, createWorkerMetrics(), log);
    ledger.stopRetrying();
    await stage.submit({ topic: 't', partition: 0, eventType: costMetrics, firstOffset: 0, lastOffset: 4, firstTimestamp: 0, lastTimestamp: 0, ledger, rows: new InsertBody('t', 0).finish(), bytes: 0, messages: 5, reason: 'shutdown', poisonWrites: [Promise.resolve()] });
    expect(sent).toEqual([5]);
  });
});

describe('commit fencing (kafkajs retries included)', () => {
  // kafkajs's own OffsetCommit request encoder, as its retries run it for every attempt.
  const require = createRequire(import.meta.url);
  const offsetCommitV5 = require('kafkajs/src/protocol/requests/offsetCommit/v5/request.js') as (p: unknown) => { encode: () => Promise<unknown> };
  const request = (partition: number) => offsetCommitV5({ groupId: 'g', groupGenerationId: 7, memberId: 'm', topics: [{ topic: 't', partitions: [{ partition, offset: '10', metadata: null }] }] });

  it('a revoked ledger\'s commit fails at encoding, with an error kafkajs does not retry', async () => {
    const ledger = new PartitionLedger('t', 3);
    await expect(request(fencedPartition(3, ledger)).encode()).resolves.toBeDefined();
    ledger.revoke();
    const err = await request(fencedPartition(3, ledger)).encode().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommitFenced);
    expect((err as CommitFenced).retriable).toBe(false);
    // kafkajs keys what it committed by the partition: it reads as the number.
    expect(String(fencedPartition(3, ledger))).toBe('3');
  });
});

describe('errors of Kafka calls', () => {
  const protocolError = (type: string, code: number, retriable: boolean) => Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type, code, retriable });

  it('are classified as Kafka errors: a rebalance is retriable, not poison by its number', () => {
    const rebalancing = protocolError('REBALANCE_IN_PROGRESS', 27, false);
    // Kafka's 27 is ClickHouse's CANNOT_PARSE_INPUT_ASSERTION_FAILED: the ClickHouse classifier gets it wrong.
    expect(classifyClickHouseError(rebalancing)).toBe('poison');
    expect(classifyKafkaError(rebalancing)).toBe('retriable');
    expect(classifyKafkaError(protocolError('ILLEGAL_GENERATION', 22, false))).toBe('retriable');
    expect(classifyKafkaError(protocolError('NOT_COORDINATOR', 16, true))).toBe('retriable');
    expect(classifyKafkaError(protocolError('GROUP_AUTHORIZATION_FAILED', 30, false))).toBe('fatal');
    expect(classifyKafkaError(Object.assign(new Error('wrapped'), { cause: protocolError('TOPIC_AUTHORIZATION_FAILED', 29, false) }))).toBe('fatal');
    expect(classifyKafkaError(new TypeError('bug'))).toBe('fatal');
    expect(classifyKafkaError(new Error('connect ECONNREFUSED'))).toBe('retriable');
  });
});

describe('a Redis outage while ClickHouse refuses rows', () => {
  it('does not hold the insert slot: another partition inserts while a refused row\'s letter waits for Redis', async () => {
    const limit = new PoisonLimit({ maxRatio: 1, window: 10, initialPauseMs: 1_000, maxPauseMs: 8_000 });
    let letterAttempts = 0;
    const redisDown: DeadLetterSink = {
      poison: async () => {
        letterAttempts++;
        throw new Error('connect ECONNREFUSED 127.0.0.1:6380 (injected)');
      },
      failedBatch: async () => undefined,
      limit,
    };
    const landed: number[] = [];
    // Partition 0's second row (offset 1) is refused as data (CANNOT_PARSE_TEXT); every other row lands.
    const stage = new InsertStage(
      new Recorder(),
      async (_table, rows) => {
        if (rows.partition === 0 && rows.offsets.includes(1)) throw Object.assign(new Error('Code: 6. CANNOT_PARSE_TEXT'), { code: '6' });
        landed.push(rows.partition);
        return rows.count;
      },
      async () => undefined,
      redisDown,
      new Semaphore(1),
      { initialBackoffMs: 5, maxBackoffMs: 5, concurrency: 1 },
      createWorkerMetrics(),
      log,
    );
    const batchOf = (partition: number, ledger: PartitionLedger, n: number): Batch => {
      const records = sampleEvents('cost_metrics', n, 1).map((e, i) => toEventRecord(costMetrics, e as never, i, Date.now()));
      const rows = encodeRecords(rowEncoderFor(costMetrics), costMetrics.timestampField, { topic: 't', partition, rows: records.map((record, offset) => ({ offset, record, bytes: 10 })) });
      return { topic: 't', partition, eventType: costMetrics, firstOffset: 0, lastOffset: n - 1, firstTimestamp: 0, lastTimestamp: 0, ledger, rows, bytes: 10 * n, messages: n, reason: 'rows', poisonWrites: [] };
    };
    const stuck = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const refusedOutcome = stage.submit(batchOf(0, stuck, 2)).catch((e: unknown) => e);
    // Wait until the refused row's letter is being retried (Redis down)...
    for (let i = 0; i < 200 && letterAttempts < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(letterAttempts).toBeGreaterThanOrEqual(2);
    // ...then partition 1's batch must get the only insert slot and land.
    await Promise.race([stage.submit(batchOf(1, new PartitionLedger('t', 1, { offset: 0, metadata: null }), 1)), new Promise((_, reject) => setTimeout(() => reject(new Error('partition 1 did not insert: the slot is held')), 2_000))]);
    expect(landed).toEqual([0, 1]); // partition 0's good half, then partition 1
    stuck.stopRetrying();
    expect(await refusedOutcome).toBeInstanceOf(BatchAbandoned);
  });
});
