import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchStage } from '../../consumers/batch-stage.js';
import { DecodeStage } from '../../consumers/decode-stage.js';
import { MemoryBudget } from '../../consumers/memory-budget.js';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import type { BatchConsumer } from '../../consumers/batch-stage.js';
import { PartitionLedger } from '../../consumers/partition-ledger.js';
import { letterBackoffMs, type DeadLetterSink, type PoisonLetter } from '../../consumers/dead-letter-queue.js';
import { letterIdentity } from '../../consumers/letter-healer.js';
import type { RowInserter } from '../../consumers/clickhouse-inserter.js';
import { InsertStage } from '../../consumers/insert-stage.js';
import { BISECT_VERDICT_DEPTH } from '../../consumers/refused-rows.js';
import { Semaphore } from '../../consumers/memory-budget.js';
import { PoisonLimit, type StopCause } from '../../consumers/poison-limit.js';
import { rowEncoderFor } from '../../consumers/row-encoder.js';
import { encodeRecords } from '../../consumers/insert-body.js';
import { BatchAbandoned, MessageRejected, type Batch, type EncodedRows } from '../../consumers/types.js';
import { createLogger } from '../../lib/logger.js';
import { createWorkerMetrics } from '../../lib/metrics.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { sampleEvents } from '../fixtures/events.js';

const policy = { maxRatio: 0.5, window: 10, initialPauseMs: 1_000, maxPauseMs: 4_000 };

describe('PoisonLimit: per topic, holds instead of crashing, probes with backoff', () => {
  let now = 0;
  const changes: Array<[string, StopCause | undefined]> = [];
  const limit = () => new PoisonLimit(policy, () => now, (topic, cause) => changes.push([topic, cause]));
  beforeEach(() => {
    now = 0;
    changes.length = 0;
  });

  it('stops only the topic whose window goes over the ratio, at the letter that would take it over', () => {
    const l = limit();
    l.good('busy', 1_000_000); // a busy topic's good messages do not dilute another topic's poison
    for (let i = 0; i < 5; i++) expect(l.admitPoison('quiet')).toBe(true);
    expect(l.admitPoison('quiet')).toBe(false); // 6 > 0.5 * 10
    expect(l.stopped('quiet')).toBe('poison_share');
    expect(l.stopped('busy')).toBeUndefined();
    expect(l.admitPoison('busy')).toBe(true);
    expect(changes).toEqual([['quiet', 'poison_share']]);
  });

  it('holds a stopped topic, lets one probe through per pause, doubling up to the cap; a clean window resumes it', () => {
    const l = limit();
    for (let i = 0; i < 5; i++) l.admitPoison('t');
    expect(l.admitPoison('t')).toBe(false); // stopped at 0, held until 1000
    now = 999;
    expect(l.admitPoison('t')).toBe(false);
    expect(l.heldForMs('t')).toBe(1);
    now = 1_000;
    expect(l.admitPoison('t')).toBe(true); // probe; held until 1000 + 2000
    expect(l.admitPoison('t')).toBe(false);
    now = 3_000;
    expect(l.admitPoison('t')).toBe(true); // probe; held for 4000 (capped)
    now = 6_999;
    expect(l.admitPoison('t')).toBe(false);
    now = 7_000;
    expect(l.admitPoison('t')).toBe(true);
    expect(l.heldForMs('t')).toBe(4_000);
    // 8 poison counted in this window so far (5 + 3 probes): it closes over the ratio, still stopped.
    l.good('t', 2);
    expect(l.stopped('t')).toBe('poison_share');
    // A window within the ratio ends the stop, and the pause starts over.
    l.good('t', 10);
    expect(l.stopped('t')).toBeUndefined();
    expect(changes).toEqual([['t', 'poison_share'], ['t', undefined]]);
    for (let i = 0; i < 5; i++) expect(l.admitPoison('t')).toBe(true);
    expect(l.admitPoison('t')).toBe(false);
    expect(l.heldForMs('t')).toBe(1_000);
  });

  it('a table refusing rows: pauses double while it refuses, recovered() ends the stop', () => {
    const l = limit();
    expect(l.tableRefusing('t', 'x')).toBe(1_000);
    expect(l.tableRefusing('t', 'x')).toBe(2_000);
    expect(l.tableRefusing('t', 'x')).toBe(4_000);
    expect(l.tableRefusing('t', 'x')).toBe(4_000);
    expect(l.stopped('t')).toBe('table_refusing');
    l.recovered('t');
    expect(l.stopped('t')).toBeUndefined();
    expect(l.tableRefusing('t', 'x')).toBe(1_000);
    expect(changes).toEqual([['t', 'table_refusing'], ['t', undefined], ['t', 'table_refusing']]);
  });
});

describe('letters: backoff and identity', () => {
  it('backs off doubling from backoffMs, capped at maxBackoffMs, with at most 20% jitter below', () => {
    const p = { backoffMs: 100, maxBackoffMs: 1_000 };
    expect([1, 2, 3, 4, 5, 40, 1_000_000].map((n) => letterBackoffMs(n, p, () => 1))).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    expect(letterBackoffMs(3, p, () => 0)).toBe(320);
  });

  it('names the data: same message, same id and token; same offset with other bytes (a recreated topic), another', () => {
    const a = { topic: 'ingest.x', partition: 1, offset: 7, value: Buffer.from('abc'), row: undefined };
    expect(letterIdentity(a)).toEqual(letterIdentity({ ...a, value: Buffer.from('abc') }));
    const b = letterIdentity({ ...a, value: Buffer.from('abd') });
    expect(b.jobId).not.toBe(letterIdentity(a).jobId);
    expect(b.token).not.toBe(letterIdentity(a).token);
    expect(letterIdentity(a).token).toMatch(/^poison\/ingest\.x\/1\/7\/[0-9a-f]{16}$/);
    expect(letterIdentity(a).jobId).toMatch(/^poison-ingest\.x-1-7-[0-9a-f]{16}$/);
  });
});

describe('InsertStage.bisect: bounded, stops a table that refuses every row', () => {
  const table = costMetrics.table;
  const topic = 'ingest.cost_metrics';
  const metrics = createWorkerMetrics();
  const log = createLogger({}, 'silent');
  const commit = async () => undefined;
  const config = { attempts: 3, initialBackoffMs: 1, maxBackoffMs: 2, concurrency: 1 };
  const dataError = () => Object.assign(new Error('Cannot parse input: expected \\t (injected)'), { code: '27' });

  function batchOf(n: number, partition = 0, type: EventType = costMetrics as unknown as EventType): Batch {
    const records = sampleEvents(type.name, n, 3).map((e, i) => toEventRecord(type, e as never, i, Date.now()));
    const rows: EncodedRows = encodeRecords(rowEncoderFor(type), type.timestampField, { topic: `ingest.${type.name}`, partition, rows: records.map((record, offset) => ({ offset, record, bytes: 10 })) });
    const ledger = new PartitionLedger(`ingest.${type.name}`, partition, { offset: 0, metadata: null });
    const batch: Batch = { topic: `ingest.${type.name}`, partition, eventType: type, firstOffset: 0, lastOffset: n - 1, firstTimestamp: 1_000, lastTimestamp: 2_000, ledger, rows, bytes: 10 * n, messages: n, reason: 'rows', poisonWrites: [] };
    ledger.sealed(batch);
    return batch;
  }

  function stage(insert: RowInserter, limiter = new Semaphore(1)) {
    const letters: PoisonLetter[] = [];
    const committed: Batch[] = [];
    const limit = new PoisonLimit({ maxRatio: 0.5, window: 1_000, initialPauseMs: 1_000, maxPauseMs: 8_000 });
    const sink: DeadLetterSink = { poison: async (l) => void letters.push(l), failedBatch: async () => undefined, limit };
    const next: BatchConsumer = { submit: async (b) => void committed.push(b) };
    return { s: new InsertStage(next, insert, commit, sink, limiter, config, metrics, log), letters, committed, limit };
  }

  /** An inserter that refuses any part holding a row of `bad` (or everything while `all` is on), recording what landed. */
  function fakeTable(bad: Set<number>) {
    const landed: number[] = [];
    const tokens = new Set<string>();
    const state = { all: false, calls: 0 };
    const insert: RowInserter = async (t, rows, token) => {
      state.calls++;
      if (state.all || rows.offsets.some((o) => bad.has(o))) throw dataError();
      if (tokens.has(`${t}|${token}`)) return 0; // ClickHouse's deduplication
      tokens.add(`${t}|${token}`);
      landed.push(...rows.offsets);
      return rows.count;
    };
    return { insert, landed, state };
  }

  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('lands every good row once and dead-letters exactly the refused ones, with their decoded rows', async () => {
    const fake = fakeTable(new Set([5, 40]));
    const { s, letters, committed, limit } = stage(fake.insert);
    await s.submit(batchOf(64));
    expect(fake.landed.sort((a, b) => a - b)).toEqual([...Array(64).keys()].filter((o) => o !== 5 && o !== 40));
    expect(letters.map((l) => [l.offset, l.reason, l.table])).toEqual([
      [5, 'rejected_by_clickhouse', table],
      [40, 'rejected_by_clickhouse', table],
    ]);
    expect(letters[0]!.row).toMatchObject({ _kafka_topic: topic, _kafka_partition: 0, _kafka_offset: 5 });
    expect(committed).toHaveLength(1);
    expect(limit.stopped(topic)).toBeUndefined();
  });

  it('a stop while Redis refuses a refused row\'s letter gives the batch up (BatchAbandoned), it does not fail the worker', async () => {
    const fake = fakeTable(new Set([1]));
    const batch = batchOf(2);
    let letterWrites = 0;
    const limit = new PoisonLimit({ maxRatio: 0.5, window: 1_000, initialPauseMs: 1_000, maxPauseMs: 8_000 });
    const redisDown: DeadLetterSink = {
      poison: async () => {
        if (++letterWrites === 2) batch.ledger.stopRetrying();
        throw new Error('connect ECONNREFUSED 127.0.0.1:6380 (injected)');
      },
      failedBatch: async () => expect.fail('no batch is dead-lettered whole'),
      limit,
    };
    const committed: Batch[] = [];
    const s = new InsertStage({ submit: async (b) => void committed.push(b) }, fake.insert, commit, redisDown, new Semaphore(1), config, metrics, log);
    const outcome = s.submit(batch).then(() => 'committed', (e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await outcome).toBeInstanceOf(BatchAbandoned);
    expect(letterWrites).toBe(2);
    expect(fake.landed).toEqual([0]);
    expect(committed).toHaveLength(0);
  });

  it('a table refusing everything: 2+4+8 inserts, nothing dead-lettered, stopped; probed with backoff; lands whole once fixed', async () => {
    const fake = fakeTable(new Set());
    fake.state.all = true;
    const { s, letters, committed, limit } = stage(fake.insert);
    const done = s.submit(batchOf(64));
    await vi.advanceTimersByTimeAsync(0);
    expect(BISECT_VERDICT_DEPTH).toBe(3);
    expect(fake.state.calls).toBe(1 + 2 + 4 + 8); // the batch, then three levels
    expect(limit.stopped(topic)).toBe('table_refusing');
    expect(committed).toHaveLength(0);
    // First probe after 1 s: refused again, so it looks one level deeper (16 more parts) and stops again.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fake.state.calls).toBe(15 + 1 + 2 + 4 + 8 + 16);
    expect(limit.stopped(topic)).toBe('table_refusing');
    // The table is fixed: the next probe (2 s later) lands the batch whole with its own token.
    fake.state.all = false;
    await vi.advanceTimersByTimeAsync(1_999);
    expect(fake.landed).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await done;
    expect(fake.landed).toEqual([...Array(64).keys()]);
    expect(letters).toEqual([]);
    expect(committed).toHaveLength(1);
    expect(limit.stopped(topic)).toBeUndefined();
  });

  it('bad rows spread over every part look like a refusing table once; the deeper probe settles them row by row', async () => {
    const bad = new Set([0, 8, 16, 24, 32, 40, 48, 56]); // one in each eighth
    const fake = fakeTable(bad);
    const { s, letters, limit } = stage(fake.insert);
    const done = s.submit(batchOf(64));
    await vi.advanceTimersByTimeAsync(0);
    expect(limit.stopped(topic)).toBe('table_refusing');
    expect(letters).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    await done;
    expect(letters.map((l) => l.offset)).toEqual([...bad]);
    expect(fake.landed.sort((a, b) => a - b)).toEqual([...Array(64).keys()].filter((o) => !bad.has(o)));
    expect(limit.stopped(topic)).toBeUndefined();
  });

  it('a stopped table holds no insert slot: another table inserts while it waits', async () => {
    const fake = fakeTable(new Set());
    const limiter = new Semaphore(1);
    const refusing: RowInserter = async (t, rows, token) => {
      if (t === table) throw dataError();
      return fake.insert(t, rows, token);
    };
    const { s } = stage(refusing, limiter);
    void s.submit(batchOf(8)).catch(() => undefined);
    await vi.advanceTimersByTimeAsync(0);
    const other = eventTypes.find((t) => t.name === 'llm_logs')!;
    await s.submit(batchOf(5, 1, other));
    expect(fake.landed).toEqual([0, 1, 2, 3, 4]);
  });

  it('when the topic\'s share of poison spikes, refused rows wait instead of being dead-lettered', async () => {
    // 64 rows, 40 refused (rows 0-39), window 10 at 0.5: five letters, then the sixth refused row
    // waits, and so does the rest of the bisection behind it; only the quarter 48-63 had landed.
    const bad = new Set([...Array(40).keys()]);
    const fake = fakeTable(bad);
    const letters: PoisonLetter[] = [];
    const limit = new PoisonLimit({ maxRatio: 0.5, window: 10, initialPauseMs: 1_000, maxPauseMs: 1_000 });
    const sink: DeadLetterSink = { poison: async (l) => void letters.push(l), failedBatch: async () => undefined, limit };
    const s = new InsertStage({ submit: async () => undefined }, fake.insert, commit, sink, new Semaphore(1), config, metrics, log);
    const done = s.submit(batchOf(64));
    await vi.advanceTimersByTimeAsync(0);
    expect(letters).toHaveLength(5);
    expect(limit.stopped(topic)).toBe('poison_share');
    expect(fake.landed.sort((a, b) => a - b)).toEqual([...Array(16).keys()].map((i) => i + 48));
    // The table is fixed meanwhile: after the hold the waiting row and everything behind it lands.
    fake.state.all = false;
    bad.clear();
    await vi.advanceTimersByTimeAsync(1_000);
    await done;
    expect(letters).toHaveLength(5);
    expect(new Set(fake.landed).size).toBe(64 - 5);
    expect(fake.landed).toHaveLength(64 - 5);
  });
});

describe('DecodeStage with a stopped topic', () => {
  it('holds the poison message (MessageRejected, nothing dead-lettered, offset not taken) while good ones pass, and lets it through after the pause', async () => {
    let now = 0;
    const type = costMetrics as unknown as EventType;
    const letters: PoisonLetter[] = [];
    const batches: Batch[] = [];
    const limit = new PoisonLimit({ maxRatio: 0.5, window: 4, initialPauseMs: 1_000, maxPauseMs: 1_000 }, () => now);
    const sink: DeadLetterSink = { poison: async (l) => void letters.push(l), failedBatch: async () => undefined, limit };
    const metrics = createWorkerMetrics();
    const batch = new BatchStage({ submit: async (b) => void batches.push(b) }, { maxRows: 1_000, maxBytes: 1e9, maxWaitMs: 1_000 }, new MemoryBudget(1e9), metrics, () => now);
    const stage = new DecodeStage(batch, new SchemaLookup([type]), new Map([['t', type]]), sink, metrics, createLogger({}, 'silent'));
    const good = (offset: number) => ({ topic: 't', partition: 0, offset, timestamp: 0, value: encodeSingleObject(type.avroType, type.fingerprint, toEventRecord(type, sampleEvents('cost_metrics', 1, offset)[0] as never, 0, Date.now())) });
    const bad = (offset: number) => ({ topic: 't', partition: 0, offset, timestamp: 0, value: Buffer.from('garbage') });
    stage.submit(bad(0));
    stage.submit(bad(1));
    expect(() => stage.submit(bad(2))).toThrow(MessageRejected); // 3 > 0.5 * 4
    expect(letters.map((l) => l.offset)).toEqual([0, 1]);
    expect(limit.stopped('t')).toBe('poison_share');
    // Offered again while held: still refused, counted once in the metrics when it finally passes.
    expect(() => stage.submit(bad(2))).toThrow(MessageRejected);
    now = 1_000;
    stage.submit(bad(2)); // the probe
    stage.submit(good(3));
    stage.flushCounts();
    batch.poll();
    expect(letters.map((l) => l.offset)).toEqual([0, 1, 2]);
    // Four messages consumed, although offset 2 was offered three times.
    expect((await metrics.messagesConsumed.get()).values.find((v) => v.labels.topic === 't')?.value).toBe(4);
    now = 10_000;
    batch.poll();
    expect(batches).toHaveLength(1);
    expect([batches[0]!.firstOffset, batches[0]!.lastOffset, batches[0]!.rows.count, batches[0]!.poisonWrites.length]).toEqual([0, 3, 1, 3]);
  });
});
