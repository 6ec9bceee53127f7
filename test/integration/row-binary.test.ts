import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transcoderFor } from '../../consumers/avro-to-tsv.js';
import { bodyFormatOf, clickHouseInserter, type RowInserter } from '../../consumers/clickhouse-inserter.js';
import { encodeRecords, InsertBody } from '../../consumers/insert-body.js';
import { rowBinaryCodecFor } from '../../consumers/row-binary.js';
import { rowEncoderFor } from '../../consumers/row-encoder.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { migrate } from '../../sql/migrate.js';
import { classifyClickHouseError } from '../../lib/errors.js';
import { sampleEvents } from '../fixtures/events.js';
import { openDb } from '../helpers/migration-state.js';
import { queryRows, uniqueId } from '../helpers/stack.js';

/**
 * RowBinary on the embedded engine, the worker's insert format there: the migrated tables have
 * the column types the RowBinary codec writes, and rows inserted as RowBinary (the worker's fast
 * path, from the Avro messages) read back from the engine exactly as the same rows inserted as
 * TabSeparated, for every event type, with strings holding every byte the text format escapes
 * and the two consecutive newlines that end chDB's inline insert data (the reason the body goes
 * through a file, lib/clickhouse.ts).
 */
let dataPath: string;
let client: ClickHouseClient;
let insert: RowInserter;

beforeAll(async () => {
  dataPath = mkdtempSync(join(tmpdir(), 'row-binary-'));
  client = await openDb(dataPath, uniqueId('rb'));
  await migrate(client, undefined, { lock: { leaseMs: 5_000, pollMs: 50 } });
  insert = clickHouseInserter(client, eventTypes);
});
afterAll(async () => {
  await client.close();
  rmSync(dataPath, { recursive: true, force: true });
});

/** RowBinary's column types as the tables declare them: LowCardinality is storage, the bytes are its inner type's. */
const wireType = (t: string): string => t.replace(/^LowCardinality\((.*)\)$/, '$1').replace(/^Nullable\(LowCardinality\((.*)\)\)$/, 'Nullable($1)');

function records(type: EventType, n: number): Record<string, unknown>[] {
  // Recent event times: the metric tables' TTL drops rows of the fixtures' old dates.
  const now = Date.now();
  const rs = sampleEvents(type.name, n, 17).map((e, i) => toEventRecord(type, { ...(e as object), [type.timestampField]: now - i * 1_000 } as never, i, now));
  const text = type.schema.fields.find((f) => f.type === 'string' && !type.bounds?.[f.name]);
  if (text) rs[0]![text.name] = 'tab\there\nnew\n\nline\\back\rcr\u0000nul ünï 🚀 \\N';
  return rs;
}

describe('RowBinary into the embedded engine', () => {
  it('is the worker format on the embedded engine', () => {
    expect(bodyFormatOf(client)).toBe('RowBinary');
  });

  for (const type of eventTypes) {
    it(`${type.name}: the table's column types are the codec's, and rows read back as the TabSeparated ones`, async () => {
      const columns = await queryRows<{ name: string; type: string }>(client, 'SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String}', { t: type.table });
      const typeOf = new Map(columns.map((c) => [c.name, wireType(c.type)]));
      const codec = rowBinaryCodecFor(type);
      expect(codec.columns.map((c) => typeOf.get(c))).toEqual(codec.columnTypes);

      const rs = records(type, 300);
      // Offsets with 0A 0A in their bytes (2570 = 0x0A0A), as the worker's UInt64 offsets have.
      const first = 2_400;
      const tsv = encodeRecords(rowEncoderFor(type), type.timestampField, { topic: `tsv.${type.name}`, partition: 1, rows: rs.map((record, i) => ({ offset: first + i, record, bytes: 0 })) });
      const body = new InsertBody(`bin.${type.name}`, 1, 0, 'RowBinary');
      const transcode = transcoderFor(type, 'RowBinary')!;
      rs.forEach((r, i) => body.endRow(first + i, transcode(encodeSingleObject(type.avroType, type.fingerprint, r), first + i, body)));
      const bin = body.finish();
      expect(bin.body.includes(Buffer.from('\n\n'))).toBe(true);

      expect(await insert(type.table, tsv, `tsv-${type.name}`)).toBe(300);
      expect(await insert(type.table, bin, `bin-${type.name}`)).toBe(300);
      const read = (topic: string) => queryRows(client, `SELECT * EXCEPT _kafka_topic FROM ${type.table} WHERE _kafka_topic = {topic:String} ORDER BY _kafka_offset`, { topic });
      const [a, b] = [await read(`tsv.${type.name}`), await read(`bin.${type.name}`)];
      expect(b).toHaveLength(300);
      expect(b).toEqual(a);
    });
  }

  it('never reads rows in the wrong layout: with a column retyped (Float64 to Int64, 8 bytes either way), the rows go as TabSeparated and are refused as data', async () => {
    const db = await openDb(dataPath, uniqueId('rbt'));
    try {
      await migrate(db, undefined, { lock: { leaseMs: 5_000, pollMs: 50 } });
      await db.command({ query: 'ALTER TABLE cost_metrics_ts MODIFY COLUMN utilization_percent Int64' });
      const type = eventTypes.find((t) => t.name === 'cost_metrics')!;
      const body = new InsertBody('retyped', 0, 0, 'RowBinary');
      const transcode = transcoderFor(type, 'RowBinary')!;
      records(type, 20).forEach((r, i) => body.endRow(i, transcode(encodeSingleObject(type.avroType, type.fingerprint, { ...r, utilization_percent: 12.5 }), i, body)));
      const err = await clickHouseInserter(db, eventTypes)(type.table, body.finish(), 'retyped').then(() => undefined, (e: unknown) => e);
      expect(classifyClickHouseError(err)).toBe('poison');
      const [n] = await queryRows<{ n: string }>(db, 'SELECT toString(count()) AS n FROM cost_metrics_ts');
      expect(n!.n).toBe('0');
    } finally {
      await db.close();
    }
  });

  it('drops a repeat of a RowBinary insert (same token) and reports it', async () => {
    const type = eventTypes.find((t) => t.name === 'cost_metrics')!;
    const codec = rowBinaryCodecFor(type);
    const rows = records(type, 10).map((record, i) => ({ offset: 90_000 + i, record, bytes: 0 }));
    const body = codec.encode({ topic: 'repeat', partition: 0, rows });
    const encoded = { topic: 'repeat', partition: 0, format: 'RowBinary' as const, body, count: 10, ends: [], offsets: [], timestamps: [] };
    expect(await insert(type.table, encoded, 'repeat-token')).toBe(10);
    const { mayRepeat } = await import('../../consumers/clickhouse-inserter.js');
    mayRepeat.add(encoded);
    expect(await insert(type.table, encoded, 'repeat-token')).toBe(0);
    const [n] = await queryRows<{ n: string }>(client, "SELECT toString(count()) AS n FROM cost_metrics_ts WHERE _kafka_topic = 'repeat'");
    expect(n!.n).toBe('10');
  });
});
