import { describe, expect, it } from 'vitest';
import { healPoisonLetter, letterChecks, letterIdentity, LetterNotSettled, type PoisonJobData, type PoisonReplayer } from '../../consumers/dead-letter-queue.js';
import { classifyClickHouseError, PoisonError } from '../../lib/errors.js';
import type { InsertBatch } from '../../consumers/types.js';

/** A replayer whose Kafka and ClickHouse answers the test sets, recording what it was asked. */
function fakeReplayer(state: { committed?: number; landed?: boolean; decodable?: boolean }) {
  const calls: string[] = [];
  const inserts: Array<{ table: string; rows: InsertBatch; token: string }> = [];
  const replayer: PoisonReplayer = {
    decode: (topic) => {
      calls.push(`decode ${topic}`);
      if (state.decodable === false) throw new PoisonError('unknown_fingerprint', 'still unknown');
      return { table: 'cost_metrics_ts', record: { instance_id: 'i-7', timestamp: 1_700_000_000_000 } };
    },
    committedOffset: async (topic, partition) => {
      calls.push(`committed ${topic}[${partition}]`);
      return state.committed;
    },
    landed: async (table, m) => {
      calls.push(`landed ${table} ${m.topic}[${m.partition}]@${m.offset}`);
      return state.landed ?? false;
    },
    insert: async (table, rows, token) => {
      calls.push(`insert ${table}`);
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
      expect(f.calls).toEqual(['decode ingest.cost_metrics', 'committed ingest.cost_metrics[3]']);
      expect(f.inserts).toEqual([]);
    }
  });

  it('does not insert a message whose row the table holds already (Kafka delivered it again and it landed)', async () => {
    const f = fakeReplayer({ committed: 42, landed: true });
    expect(await healPoisonLetter(letter, f.replayer)).toEqual({ table: 'cost_metrics_ts', inserted: false });
    expect(f.calls).toEqual(['decode ingest.cost_metrics', 'committed ingest.cost_metrics[3]', 'landed cost_metrics_ts ingest.cost_metrics[3]@41']);
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
    expect(missing.calls).toEqual(['committed ingest.cost_metrics[3]', 'landed cost_metrics_ts ingest.cost_metrics[3]@41', 'insert cost_metrics_ts']);
  });

  it('a letter this worker still cannot decode fails as poison before Kafka or ClickHouse is asked', async () => {
    const f = fakeReplayer({ committed: 100, decodable: false });
    await expect(healPoisonLetter(letter, f.replayer)).rejects.toBeInstanceOf(PoisonError);
    expect(f.calls).toEqual(['decode ingest.cost_metrics']);
  });
});

describe('letterChecks: the real committed offset and presence check, with fakes of kafkajs admin and the ClickHouse client', () => {
  const admin = (offset: string) => ({
    fetchOffsets: async ({ groupId, topics }: { groupId: string; topics: string[] }) => {
      expect(groupId).toBe('g1');
      return topics.map((topic) => ({ topic, partitions: [{ partition: 2, offset: '7', metadata: null }, { partition: 3, offset, metadata: null }] }));
    },
  });
  const clickhouse = (n: number, seen: unknown[]) => ({
    query: async (q: unknown) => {
      seen.push(q);
      return { json: async () => [{ n: String(n) }] };
    },
  });
  const types = [{ table: 'cost_metrics_ts', timestampField: 'timestamp' }];

  it("reads the group's committed offset of the letter's partition; -1 (never committed) is none", async () => {
    expect(await letterChecks(admin('42') as never, 'g1', clickhouse(0, []) as never, types).committedOffset('t', 3)).toBe(42);
    expect(await letterChecks(admin('-1') as never, 'g1', clickhouse(0, []) as never, types).committedOffset('t', 3)).toBeUndefined();
  });

  it('matches coordinates and event time through bound parameters, never through the query text', async () => {
    const seen: Array<{ query: string; query_params: Record<string, unknown> }> = [];
    const checks = letterChecks(admin('0') as never, 'g1', clickhouse(1, seen) as never, types);
    const topic = "t'; DROP TABLE x; --";
    expect(await checks.landed('cost_metrics_ts', { topic, partition: 3, offset: 41, record: { timestamp: 1_700_000_000_123 } })).toBe(true);
    expect(seen[0]!.query).toBe(
      'SELECT count() AS n FROM {table:Identifier} WHERE _kafka_topic = {topic:String} AND _kafka_partition = {partition:UInt32} AND _kafka_offset = {offset:UInt64} AND toUnixTimestamp64Milli({field:Identifier}) = {time:Int64}',
    );
    expect(seen[0]!.query_params).toEqual({ table: 'cost_metrics_ts', topic, partition: 3, offset: 41, field: 'timestamp', time: 1_700_000_000_123 });
    expect(await letterChecks(admin('0') as never, 'g1', clickhouse(0, []) as never, types).landed('cost_metrics_ts', { topic: 't', partition: 0, offset: 1, record: { timestamp: 5 } })).toBe(false);
  });
});
