import { describe, expect, it } from 'vitest';
import type { PoisonJobData } from '../../consumers/dead-letter-queue.js';
import { healPoisonLetter, healPoisonLetters, LetterHealBatcher, letterChecks, letterIdentity, LetterNotSettled, type PoisonReplayer } from '../../consumers/letter-healer.js';
import { classifyClickHouseError, PoisonError } from '../../lib/errors.js';
import type { InsertBatch } from '../../consumers/types.js';

/** A replayer whose Kafka and ClickHouse answers the test sets, recording what it was asked. */
function fakeReplayer(state: { committed?: number; landed?: boolean | ((offset: number) => boolean); decodable?: boolean; refuses?: (offsets: number[]) => boolean }) {
  const calls: string[] = [];
  const inserts: Array<{ table: string; rows: InsertBatch; token: string }> = [];
  const replayer: PoisonReplayer = {
    decode: (topic) => {
      calls.push(`decode ${topic}`);
      if (state.decodable === false) throw new PoisonError('unknown_fingerprint', 'still unknown');
      return { table: 'cost_metrics_ts', record: { instance_id: 'i-7', timestamp: 1_700_000_000_000 } };
    },
    committedOffsets: async (topic) => {
      calls.push(`committed ${topic}`);
      return new Map(state.committed === undefined ? [] : [0, 1, 2, 3].map((p) => [p, state.committed!] as const));
    },
    landed: async (table, ms) => {
      calls.push(`landed ${table} ${ms.map((m) => `${m.topic}[${m.partition}]@${m.offset}`).join(' ')}`);
      return ms.map((m) => (typeof state.landed === 'function' ? state.landed(m.offset) : (state.landed ?? false)));
    },
    insert: async (table, rows, token) => {
      calls.push(`insert ${table} ${rows.rows.map((r) => r.offset).join(',')}`);
      if (state.refuses?.(rows.rows.map((r) => r.offset))) throw new PoisonError('rejected_by_clickhouse', 'Code: 53. Type mismatch');
      inserts.push({ table, rows, token });
    },
  };
  return { replayer, calls, inserts };
}

const value = Buffer.from([0xc3, 0x01, 9, 9, 9, 9, 9, 9, 9, 9, 1]);
const letter: PoisonJobData = { topic: 'ingest.cost_metrics', partition: 3, offset: 41, reason: 'unknown_fingerprint', detail: 'no known writer schema', valueBase64: value.toString('base64') };

describe('healPoisonLetter: a letter lands only once its message is settled', () => {
  it('waits (LetterNotSettled, retriable) while the group has no commit or has not committed past the letter, without asking ClickHouse', async () => {
    for (const committed of [undefined, 0, 41]) {
      const f = fakeReplayer({ committed });
      const err = await healPoisonLetter(letter, f.replayer).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LetterNotSettled);
      expect(classifyClickHouseError(err)).toBe('retriable');
      expect(f.calls).toEqual(['decode ingest.cost_metrics', 'committed ingest.cost_metrics']);
      expect(f.inserts).toEqual([]);
    }
  });

  it('does not insert a message whose row the table holds already (Kafka delivered it again and it landed)', async () => {
    const f = fakeReplayer({ committed: 42, landed: true });
    expect(await healPoisonLetter(letter, f.replayer)).toEqual({ table: 'cost_metrics_ts', inserted: false });
    expect(f.calls).toEqual(['decode ingest.cost_metrics', 'committed ingest.cost_metrics', 'landed cost_metrics_ts ingest.cost_metrics[3]@41']);
    expect(f.inserts).toEqual([]);
  });

  it('inserts a settled, missing message once, under the letter token', async () => {
    const f = fakeReplayer({ committed: 42, landed: false });
    expect(await healPoisonLetter(letter, f.replayer)).toEqual({ table: 'cost_metrics_ts', inserted: true });
    expect(f.inserts).toHaveLength(1);
    expect(f.inserts[0]!.token).toBe(letterIdentity({ ...letter, value }).token);
    expect(f.inserts[0]!.rows).toEqual({ topic: 'ingest.cost_metrics', partition: 3, rows: [{ offset: 41, record: { instance_id: 'i-7', timestamp: 1_700_000_000_000 }, bytes: 0 }] });
  });

  it('applies the same checks to a row ClickHouse refused, with the row as stored in the letter', async () => {
    const row = { instance_id: 'i-9', timestamp: 1_700_000_000_123, _kafka_topic: 'ingest.cost_metrics', _kafka_partition: 3, _kafka_offset: 41 };
    const refused: PoisonJobData = { ...letter, reason: 'rejected_by_clickhouse', valueBase64: null, row, table: 'cost_metrics_ts' };
    const waiting = fakeReplayer({ committed: 40 });
    await expect(healPoisonLetter(refused, waiting.replayer)).rejects.toBeInstanceOf(LetterNotSettled);
    const landed = fakeReplayer({ committed: 100, landed: true });
    expect(await healPoisonLetter(refused, landed.replayer)).toEqual({ table: 'cost_metrics_ts', inserted: false });
    const missing = fakeReplayer({ committed: 100, landed: false });
    expect(await healPoisonLetter(refused, missing.replayer)).toEqual({ table: 'cost_metrics_ts', inserted: true });
    expect(missing.calls).toEqual(['committed ingest.cost_metrics', 'landed cost_metrics_ts ingest.cost_metrics[3]@41', 'insert cost_metrics_ts 41']);
  });

  it('a letter this worker still cannot decode fails as poison before Kafka or ClickHouse is asked', async () => {
    const f = fakeReplayer({ committed: 100, decodable: false });
    await expect(healPoisonLetter(letter, f.replayer)).rejects.toBeInstanceOf(PoisonError);
    expect(f.calls).toEqual(['decode ingest.cost_metrics']);
  });
});

describe('healPoisonLetters: many letters share the round trips, each keeps its own outcome', () => {
  const at = (offset: number, partition = 3): PoisonJobData => ({ ...letter, partition, offset, valueBase64: Buffer.from([0xc3, 0x01, 9, 9, 9, 9, 9, 9, 9, 9, offset]).toString('base64') });

  it('one committed-offset read per topic, one presence query per table, one insert per partition', async () => {
    const letters = [at(10), at(11), at(12, 1), at(13), at(50)];
    // Committed up to 40: offset 50 is not settled. Offset 11 landed from Kafka already.
    const f = fakeReplayer({ committed: 40, landed: (o) => o === 11 });
    const results = await healPoisonLetters(letters, f.replayer);
    expect(results.slice(0, 4)).toEqual([
      { table: 'cost_metrics_ts', inserted: true },
      { table: 'cost_metrics_ts', inserted: false },
      { table: 'cost_metrics_ts', inserted: true },
      { table: 'cost_metrics_ts', inserted: true },
    ]);
    expect(results[4]).toBeInstanceOf(LetterNotSettled);
    expect(f.calls.filter((c) => !c.startsWith('decode'))).toEqual([
      'committed ingest.cost_metrics',
      'landed cost_metrics_ts ingest.cost_metrics[3]@10 ingest.cost_metrics[3]@11 ingest.cost_metrics[1]@12 ingest.cost_metrics[3]@13',
      'insert cost_metrics_ts 10,13',
      'insert cost_metrics_ts 12',
    ]);
    // Several letters: a token derived from theirs, the same for the same letters in any order.
    const again = fakeReplayer({ committed: 40, landed: (o) => o === 11 });
    await healPoisonLetters([at(13), at(12, 1), at(10)], again.replayer);
    expect(again.inserts.find((i) => i.rows.partition === 3)!.token).toBe(f.inserts.find((i) => i.rows.partition === 3)!.token);
    expect(f.inserts.find((i) => i.rows.partition === 3)!.token).toMatch(/^poison-batch\/[0-9a-f]{32}$/);
    // A lone letter keeps its own token.
    expect(f.inserts.find((i) => i.rows.partition === 1)!.token).toBe(letterIdentity({ ...at(12, 1), value: Buffer.from(at(12, 1).valueBase64!, 'base64') }).token);
  });

  it('a row the table still refuses fails alone: the others of its partition land, each under its own token', async () => {
    const f = fakeReplayer({ committed: 100, refuses: (offsets) => offsets.includes(21) });
    const results = await healPoisonLetters([at(20), at(21), at(22)], f.replayer);
    expect(results[0]).toEqual({ table: 'cost_metrics_ts', inserted: true });
    expect(results[1]).toBeInstanceOf(PoisonError);
    expect(results[2]).toEqual({ table: 'cost_metrics_ts', inserted: true });
    expect(f.calls.filter((c) => c.startsWith('insert'))).toEqual(['insert cost_metrics_ts 20,21,22', 'insert cost_metrics_ts 20', 'insert cost_metrics_ts 21', 'insert cost_metrics_ts 22']);
    expect(f.inserts.map((i) => i.token)).toEqual([20, 22].map((o) => letterIdentity({ ...at(o), value: Buffer.from(at(o).valueBase64!, 'base64') }).token));
  });

  it('a Kafka read that fails fails the letters of that topic only, retriable', async () => {
    const f = fakeReplayer({ committed: 100 });
    const broken = { ...f.replayer, committedOffsets: async (topic: string) => (topic === 'ingest.other' ? Promise.reject(new Error('connect ECONNREFUSED')) : f.replayer.committedOffsets(topic)) };
    const results = await healPoisonLetters([at(1), { ...at(2), topic: 'ingest.other' }], broken);
    expect(results[0]).toEqual({ table: 'cost_metrics_ts', inserted: true });
    expect(classifyClickHouseError(results[1])).toBe('retriable');
  });

  it('LetterHealBatcher: concurrent heals go out as one batch, each promise with its own letter', async () => {
    const f = fakeReplayer({ committed: 40 });
    const batcher = new LetterHealBatcher(f.replayer, { maxLetters: 100, lingerMs: 5 });
    const outcomes = await Promise.allSettled([at(1), at(2), at(60)].map((l) => batcher.heal(l)));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(LetterNotSettled);
    expect(f.calls.filter((c) => c.startsWith('committed'))).toHaveLength(1);
    expect(f.calls.filter((c) => c.startsWith('insert'))).toEqual(['insert cost_metrics_ts 1,2']);
  });

  it('LetterHealBatcher: one batch at a time; the letters that arrive meanwhile go together in the next', async () => {
    const f = fakeReplayer({ committed: 1_000 });
    // The first insert waits until the test lets it go, as a slow insert would.
    let releaseFirst: () => void = () => undefined;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    let inserts = 0;
    const slow: PoisonReplayer = {
      ...f.replayer,
      insert: async (table, rows, token) => {
        if (inserts++ === 0) await firstHeld;
        return f.replayer.insert(table, rows, token);
      },
    };
    const batcher = new LetterHealBatcher(slow, { maxLetters: 100, lingerMs: 1 });
    const first = batcher.heal(at(1));
    await new Promise((r) => setTimeout(r, 20)); // the first batch (one letter) is in flight
    const later = [2, 3, 4, 5].map((o) => batcher.heal(at(o)));
    await new Promise((r) => setTimeout(r, 20)); // well past lingerMs: still nothing sent
    expect(inserts).toBe(1);
    releaseFirst();
    await Promise.all([first, ...later]);
    expect(f.inserts.map((i) => i.rows.rows.map((r) => r.offset).join(','))).toEqual(['1', '2,3,4,5']);
  });
});

describe('letterChecks: the real committed offsets and presence check, with fakes of kafkajs admin and the ClickHouse client', () => {
  const admin = (offset: string) => ({
    fetchOffsets: async ({ groupId, topics }: { groupId: string; topics: string[] }) => {
      expect(groupId).toBe('g1');
      return topics.map((topic) => ({ topic, partitions: [{ partition: 2, offset: '7', metadata: null }, { partition: 3, offset, metadata: null }] }));
    },
  });
  const clickhouse = (rows: Array<{ p: number; o: number; ms: number }>, seen: unknown[]) => ({
    query: async (q: unknown) => {
      seen.push(q);
      return { json: async () => rows };
    },
  });
  const types = [{ table: 'cost_metrics_ts', timestampField: 'timestamp' }];

  it("reads the group's committed offsets of the letter's topic; -1 (never committed) is none", async () => {
    expect([...(await letterChecks(admin('42') as never, 'g1', clickhouse([], []) as never, types).committedOffsets('t'))]).toEqual([[2, 7], [3, 42]]);
    expect([...(await letterChecks(admin('-1') as never, 'g1', clickhouse([], []) as never, types).committedOffsets('t'))]).toEqual([[2, 7]]);
  });

  it('matches coordinates and event time through bound parameters, never through the query text', async () => {
    const seen: Array<{ query: string; query_params: Record<string, unknown> }> = [];
    const topic = "t'; DROP TABLE x; --";
    // The table holds offset 41 with the letter's event time, and offset 42 with another one.
    const checks = letterChecks(admin('0') as never, 'g1', clickhouse([{ p: 3, o: 41, ms: 1_700_000_000_123 }, { p: 3, o: 42, ms: 5 }], seen) as never, types);
    const landed = await checks.landed('cost_metrics_ts', [
      { topic, partition: 3, offset: 41, record: { timestamp: 1_700_000_000_123 } },
      { topic, partition: 3, offset: 42, record: { timestamp: 1_700_000_000_456 } },
      { topic, partition: 3, offset: 43, record: { timestamp: 1_700_000_000_789 } },
    ]);
    expect(landed).toEqual([true, false, false]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.query).toBe(
      'SELECT _kafka_partition AS p, _kafka_offset AS o, toUnixTimestamp64Milli({field:Identifier}) AS ms FROM {table:Identifier} WHERE _kafka_topic = {topic:String} AND (_kafka_partition, _kafka_offset) IN (SELECT arrayJoin(arrayZip({partitions:Array(UInt32)}, {offsets:Array(UInt64)})))',
    );
    expect(seen[0]!.query_params).toEqual({ table: 'cost_metrics_ts', topic, partitions: [3, 3, 3], offsets: [41, 42, 43], field: 'timestamp' });
  });
});
