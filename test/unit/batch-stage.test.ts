import { describe, expect, it } from 'vitest';
import { AGE_STAGGER, BatchStage, memoryCost, type BatchConsumer } from '../../consumers/batch-stage.js';
import { MemoryBudget } from '../../consumers/memory-budget.js';
import { encodeRange } from '../../consumers/partition-ledger.js';
import { BatchAbandoned, batchToken, MessageRejected, type Batch } from '../../consumers/types.js';
import { createWorkerMetrics } from '../../lib/metrics.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';

/** A next stage that records batches and completes them only when told. */
class FakeInsert implements BatchConsumer {
  readonly batches: Batch[] = [];
  private readonly pending: Array<() => void> = [];
  auto = true;
  async submit(batch: Batch): Promise<void> {
    this.batches.push(batch);
    if (!this.auto) await new Promise<void>((r) => this.pending.push(r));
  }
  completeOne(): void {
    this.pending.shift()?.();
  }
}

const tick = () => new Promise((r) => setImmediate(r));

function setup(batch = { maxRows: 3, maxBytes: 1_000, maxWaitMs: 1_000 }, budgetBytes = 1_000_000) {
  let now = 0;
  const next = new FakeInsert();
  const metrics = createWorkerMetrics();
  const budget = new MemoryBudget(budgetBytes);
  const stage = new BatchStage(next, batch, budget, metrics, () => now);
  const add = (offset: number, bytes = 10, partition = 0, sentAt?: number) => {
    const body = stage.reserve('t', partition, costMetrics, offset, bytes, sentAt);
    body.writeText(`${offset}\n`);
    body.endRow(offset, Number.NaN);
    stage.append('t', partition, offset, bytes);
  };
  return { stage, next, metrics, budget, add, advance: (ms: number) => (now += ms), now: () => now };
}

async function flushReasons(metrics: ReturnType<typeof createWorkerMetrics>) {
  const m = await metrics.flushes.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.reason), v.value]));
}

describe('BatchStage', () => {
  it('seals by rows before appending the message that would overflow', async () => {
    const { next, add, metrics } = setup();
    for (let o = 0; o < 7; o++) add(o);
    await tick();
    expect(next.batches.map((b) => [b.firstOffset, b.lastOffset, b.rows.count])).toEqual([
      [0, 2, 3],
      [3, 5, 3],
    ]);
    // Each batch's body holds the lines written for its messages, in offset order.
    expect(next.batches.map((b) => b.rows.body.toString())).toEqual(['0\n1\n2\n', '3\n4\n5\n']);
    expect(next.batches[1]!.rows.ends).toEqual([2, 4, 6]);
    expect(await flushReasons(metrics)).toEqual({ rows: 2 });
  });

  it('sizes a body from the partition\'s recent largest, so a full batch after a smaller one is not copied at seal', async () => {
    const { stage, next, advance } = setup({ maxRows: 10, maxBytes: 10_000_000, maxWaitMs: 500 }, 100_000_000);
    const line = 'x'.repeat(30_000);
    const addLine = (offset: number) => {
      const body = stage.reserve('t', 0, costMetrics, offset, line.length + 1);
      body.writeText(`${line}\n`);
      body.endRow(offset, Number.NaN);
      stage.append('t', 0, offset, line.length + 1);
    };
    let offset = 0;
    for (let i = 0; i < 10; i++) addLine(offset++); // full: 300 KB
    for (let i = 0; i < 4; i++) addLine(offset++); // seals the first; four rows (120 KB) then sealed by age
    await tick();
    advance(1_000);
    stage.poll();
    await tick();
    for (let i = 0; i < 11; i++) addLine(offset++); // a full one again, sealed by the eleventh
    await tick();
    expect(next.batches.map((b) => b.rows.count)).toEqual([10, 4, 10]);
    const [first, , third] = next.batches.map((b) => b.rows.body);
    // The first body outgrew its 64 KiB start and was copied into a Buffer of exactly its size;
    // the third fits the Buffer it was written in (sized from 300 KB, not from the last 120 KB).
    expect(first!.buffer.byteLength).toBe(first!.length);
    expect(third!.length).toBe(300_010);
    expect(third!.buffer.byteLength).toBeGreaterThan(third!.length);
  });

  it('seals by bytes', async () => {
    const { next, add, metrics } = setup({ maxRows: 100, maxBytes: 25, maxWaitMs: 1_000 });
    add(0, 10);
    add(1, 10);
    add(2, 10);
    await tick();
    expect(next.batches.map((b) => [b.firstOffset, b.lastOffset, b.bytes])).toEqual([[0, 1, 20]]);
    expect(await flushReasons(metrics)).toEqual({ bytes: 1 });
  });

  it('seals by age on poll, using the injected clock, within the window', async () => {
    const { stage, next, add, advance, metrics } = setup({ maxRows: 100, maxBytes: 10_000, maxWaitMs: 500 });
    add(0);
    let sealedAt = -1;
    for (let t = 0; t <= 500; t++) {
      stage.poll();
      await tick();
      if (next.batches.length > 0) {
        sealedAt = t;
        break;
      }
      advance(1);
    }
    // The partition's slot: never later than the window, never earlier than (1 - AGE_STAGGER) of it.
    expect(sealedAt).toBeGreaterThan(500 * (1 - AGE_STAGGER));
    expect(sealedAt).toBeLessThanOrEqual(500);
    expect(next.batches.map((b) => [b.firstOffset, b.lastOffset])).toEqual([[0, 0]]);
    expect(await flushReasons(metrics)).toEqual({ age: 1 });
  });

  it('spreads the age seals of partitions that fill in step, each at a phase of its own', async () => {
    const maxWaitMs = 1_000;
    const { stage, next, add, advance } = setup({ maxRows: 1_000_000, maxBytes: 1e12, maxWaitMs });
    const partitions = 8;
    const sealTimes = new Map<number, number[]>();
    let offset = 0;
    // Every partition gets a message every 10 ms for 5 s, all at the same instants.
    for (let t = 0; t < 5_000; t += 10) {
      for (let p = 0; p < partitions; p++) add(offset++, 10, p);
      const before = next.batches.length;
      stage.poll();
      await tick();
      for (const b of next.batches.slice(before)) sealTimes.set(b.partition, [...(sealTimes.get(b.partition) ?? []), t]);
      advance(10);
    }
    const period = AGE_STAGGER * maxWaitMs;
    const firstSeals = [...sealTimes.values()].map((times) => times[0]!);
    for (const times of sealTimes.values()) {
      // Each batch is at most maxWaitMs old (plus the 10 ms poll step here) and at least (1 - AGE_STAGGER) of it.
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      for (const gap of gaps) {
        expect(gap).toBeGreaterThan(maxWaitMs - period);
        expect(gap).toBeLessThanOrEqual(maxWaitMs + 10);
      }
      // A partition keeps its phase: its seals fall on the same slot of the period (to the poll step).
      const phases = times.map((t) => t % period);
      expect(Math.max(...phases) - Math.min(...phases)).toBeLessThanOrEqual(10);
    }
    // Partitions do not seal together: their first seals spread over most of the period.
    expect(sealTimes.size).toBe(partitions);
    expect(new Set(firstSeals).size).toBeGreaterThanOrEqual(partitions - 1);
    expect(Math.max(...firstSeals) - Math.min(...firstSeals)).toBeGreaterThanOrEqual(period / 2);
  });

  it('counts the age from the send time when the worker keeps up (at most half the window), from arrival when behind', async () => {
    const { stage, next, add, advance, now } = setup({ maxRows: 100, maxBytes: 10_000, maxWaitMs: 1_000 });
    advance(10_000);
    add(0, 10, 0, now() - 200); // live: sent 200 ms ago, sealed by 800 ms after arrival
    add(1, 10, 1, now() - 900); // live but slow: only half the window is credited
    add(2, 10, 2, now() - 5_000); // a backlog: the full window from arrival
    add(3, 10, 3, now() + 3_000); // a producer clock ahead: from arrival
    const sealedAt: Record<number, number> = {};
    for (let t = 0; t <= 1_000; t += 10) {
      stage.poll();
      await tick();
      for (const b of next.batches) sealedAt[b.partition] ??= t;
      advance(10);
    }
    // Each seals at its partition's slot, up to AGE_STAGGER of the window before its deadline.
    const slack = 1_000 * AGE_STAGGER;
    const deadlines: Record<number, number> = { 0: 800, 1: 500, 2: 1_000, 3: 1_000 };
    for (const [p, deadline] of Object.entries(deadlines)) {
      expect(sealedAt[Number(p)]).toBeLessThanOrEqual(deadline);
      expect(sealedAt[Number(p)]).toBeGreaterThan(deadline - slack - 10);
    }
  });

  it('keeps one insert in flight per partition and rejects when two sealed batches wait', async () => {
    const { next, add } = setup();
    next.auto = false;
    for (let o = 0; o < 9; o++) add(o); // [0-2] in flight, [3-5] sealed, [6-8] open
    await tick();
    expect(next.batches).toHaveLength(1);
    expect(() => add(9)).toThrow(MessageRejected); // sealing [6-8] makes two sealed: refused
    next.completeOne();
    await tick();
    expect(next.batches).toHaveLength(2);
  });

  it('a refused message can be offered again without duplicating anything', async () => {
    const { next, add } = setup();
    next.auto = false;
    for (let o = 0; o < 9; o++) add(o);
    expect(() => add(9)).toThrow(MessageRejected);
    expect(() => add(9)).toThrow(MessageRejected);
    for (let i = 0; i < 3; i++) {
      next.completeOne();
      await tick();
      await tick();
    }
    add(9);
    next.auto = true;
    next.completeOne();
    await tick();
    const offsets = next.batches.flatMap((b) => b.rows.offsets);
    expect(new Set(offsets).size).toBe(offsets.length);
    expect(offsets).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('re-forms the range named in the commit metadata exactly, whatever the size limits say', async () => {
    const { stage, next, add, metrics } = setup({ maxRows: 2, maxBytes: 1_000, maxWaitMs: 1_000 });
    await stage.prepare('t', 0, costMetrics, async () => ({ offset: 10, metadata: encodeRange({ firstOffset: 10, lastOffset: 14, firstTimestamp: 5, lastTimestamp: 9 }) }), async () => undefined);
    for (let o = 10; o < 20; o++) {
      add(o, 10, 0, o - 5);
      await tick();
    }
    await stage.join('shutdown', 1_000);
    expect(next.batches.map((b) => [b.firstOffset, b.lastOffset])).toEqual([
      [10, 14],
      [15, 16],
      [17, 18],
      [19, 19],
    ]);
    // The re-formed batch has the same identity (offsets and Kafka timestamps), hence the same token.
    expect(batchToken(next.batches[0]!)).toBe('t/0/10-14/5-9');
    expect(await flushReasons(metrics)).toEqual({ replay: 1, rows: 2, shutdown: 1 });
  });

  it('ages no replay batch, but a range ahead of the fetch position does not switch off other seals', async () => {
    const { stage, next, add, advance } = setup({ maxRows: 2, maxBytes: 1_000, maxWaitMs: 100 });
    // Metadata naming a range that does not start at the committed offset is not a replay (another tool's).
    await stage.prepare('t', 0, costMetrics, async () => ({ offset: 0, metadata: encodeRange({ firstOffset: 50, lastOffset: 60, firstTimestamp: 0, lastTimestamp: 0 }) }), async () => undefined);
    for (let o = 0; o < 5; o++) add(o);
    advance(200);
    stage.poll();
    await tick();
    expect(next.batches.map((b) => [b.firstOffset, b.lastOffset])).toEqual([
      [0, 1],
      [2, 3],
      [4, 4],
    ]);
  });

  it('a replay range still being re-formed at a stop is dropped, not sealed short under a new token', async () => {
    const { stage, next, add, budget } = setup({ maxRows: 2, maxBytes: 1_000, maxWaitMs: 100 });
    await stage.prepare('t', 0, costMetrics, async () => ({ offset: 10, metadata: encodeRange({ firstOffset: 10, lastOffset: 14, firstTimestamp: 0, lastTimestamp: 0 }) }), async () => undefined);
    for (let o = 10; o < 13; o++) add(o);
    await stage.join('shutdown', 1_000);
    expect(next.batches).toEqual([]);
    expect(budget.used).toBe(0);
  });

  it('a replay range whose first message never arrives (deleted) is given up and batching goes on by size', async () => {
    const { stage, next, add } = setup({ maxRows: 2, maxBytes: 1_000, maxWaitMs: 100 });
    await stage.prepare('t', 0, costMetrics, async () => ({ offset: 10, metadata: encodeRange({ firstOffset: 10, lastOffset: 14, firstTimestamp: 0, lastTimestamp: 0 }) }), async () => undefined);
    for (let o = 12; o < 17; o++) add(o);
    await stage.join('shutdown', 1_000);
    expect(next.batches.map((b) => [b.firstOffset, b.lastOffset])).toEqual([
      [12, 13],
      [14, 15],
      [16, 16],
    ]);
  });

  it('a batch given up at a stop (BatchAbandoned) halts its partition: no later batch is handed on', async () => {
    let now = 0;
    const seen: number[] = [];
    const next: BatchConsumer = {
      submit: async (b) => {
        seen.push(b.firstOffset);
        throw new BatchAbandoned('stop');
      },
    };
    const stage = new BatchStage(next, { maxRows: 1, maxBytes: 1_000, maxWaitMs: 100 }, new MemoryBudget(1_000_000), createWorkerMetrics(), () => now);
    for (let o = 0; o < 3; o++) {
      const body = stage.reserve('t', 0, costMetrics, o, 10);
      body.writeText(`${o}\n`);
      body.endRow(o, Number.NaN);
      stage.append('t', 0, o, 10);
    }
    await stage.join('shutdown', 1_000);
    expect(seen).toEqual([0]);
    expect(stage.failed).toBeUndefined();
  });

  it('refuses over the memory budget (counting decoded heap, not encoded bytes) and resumes after inserts release it', async () => {
    const per = memoryCost(20);
    const { next, add, budget } = setup({ maxRows: 2, maxBytes: 1_000, maxWaitMs: 1_000 }, 2 * per + 1);
    next.auto = false;
    add(0, 20);
    add(1, 20);
    expect(() => add(2, 20)).toThrow(/memory budget/);
    expect(budget.used).toBe(2 * per);
    next.completeOne();
    await tick();
    await tick();
    expect(budget.used).toBe(0);
    add(2, 20);
  });

  it('always lets one message through for a table holding nothing, even one larger than the budget', () => {
    const { add, budget } = setup({ maxRows: 10, maxBytes: 1_000_000, maxWaitMs: 1_000 }, 100);
    add(0, 500);
    expect(budget.used).toBe(memoryCost(500));
    expect(() => add(1, 10)).toThrow(/memory budget/);
  });

  it('join seals and waits for every batch to be committed', async () => {
    const { stage, next, add } = setup({ maxRows: 100, maxBytes: 10_000, maxWaitMs: 10_000 });
    add(0);
    add(1);
    await stage.join('shutdown', 1_000);
    expect(next.batches.map((b) => [b.firstOffset, b.lastOffset, b.reason])).toEqual([[0, 1, 'shutdown']]);
  });

  it('a rebalance drops what is buffered but not yet inserting', async () => {
    const { stage, next, add, budget } = setup({ maxRows: 100, maxBytes: 10_000, maxWaitMs: 10_000 });
    add(0);
    add(1);
    stage.revokeAll();
    expect(budget.used).toBe(0);
    expect(stage.isPrepared('t', 0)).toBe(false);
    await stage.join('shutdown', 1_000);
    expect(next.batches).toHaveLength(0);
  });
});

describe('MemoryBudget', () => {
  it('lets a table under its fair share through when another table holds the budget', () => {
    const budget = new MemoryBudget(100);
    budget.acquire('slow', 100);
    expect(budget.admits('slow', 1)).toBe(false);
    expect(budget.admits('fast', 10)).toBe(true);
    budget.acquire('fast', 40);
    expect(budget.admits('fast', 20)).toBe(false); // 60 > fair share 50
  });
});
