import { describe, expect, it } from 'vitest';
import { createAvroToTsv, createAvroTranscoder } from '../../consumers/avro-to-tsv.js';
import { createRowBinaryCodec, rowBinaryHeader } from '../../consumers/row-binary.js';
import { BatchStage, type BatchConsumer } from '../../consumers/batch-stage.js';
import type { DeadLetterSink, PoisonLetter } from '../../consumers/dead-letter-queue.js';
import { DecodeStage } from '../../consumers/decode-stage.js';
import { PoisonLimit } from '../../consumers/poison-limit.js';
import { decodedRows } from '../../consumers/letter-rows.js';
import { MemoryBudget } from '../../consumers/memory-budget.js';
import { createRowEncoder } from '../../consumers/row-encoder.js';
import { encodeRecords, sliceRows, InsertBody, type BodyFormat } from '../../consumers/insert-body.js';
import type { Batch } from '../../consumers/types.js';
import { createLogger } from '../../lib/logger.js';
import { createWorkerMetrics } from '../../lib/metrics.js';
import type { AvroRecordSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import { defineEventType, type EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { sampleEvents } from '../fixtures/events.js';

const typeNamed = (name: string) => eventTypes.find((t) => t.name === name)!;

/** The worker's former path, which stays the fallback: avsc decode, then row-encoder.ts. */
function objectPathBody(type: EventType, values: readonly Buffer[], firstOffset: number, topic: string, partition: number): string {
  const rows = values.map((v, k) => ({ offset: firstOffset + k, record: type.avroType.fromBuffer(v.subarray(10)) as Record<string, unknown>, bytes: v.length }));
  return createRowEncoder(type).encode({ topic, partition, rows });
}

/** The object path into RowBinary: avsc decode, then row-binary.ts. */
function objectPathRowBinary(type: EventType, values: readonly Buffer[], firstOffset: number, topic: string, partition: number): Buffer {
  const rows = values.map((v, k) => ({ offset: firstOffset + k, record: type.avroType.fromBuffer(v.subarray(10)) as Record<string, unknown>, bytes: v.length }));
  return Buffer.from(createRowBinaryCodec(type).encode({ topic, partition, rows }));
}

function transcodeRows(type: EventType, values: readonly Buffer[], firstOffset: number, topic: string, partition: number, format: BodyFormat = 'TabSeparated') {
  const transcode = createAvroTranscoder(type, format)!;
  const body = new InsertBody(topic, partition, 0, format);
  const timestamps = values.map((v, k) => {
    const ts = transcode(v, firstOffset + k, body);
    body.endRow(firstOffset + k, ts);
    return ts;
  });
  return { rows: body.finish(), timestamps };
}

function transcodeAll(type: EventType, values: readonly Buffer[], firstOffset: number, topic: string, partition: number): { body: string; timestamps: number[] } {
  const { rows, timestamps } = transcodeRows(type, values, firstOffset, topic, partition);
  return { body: rows.body.toString(), timestamps };
}

/** Records as the test writes them into messages, with text that TabSeparated must escape where the type has a plain string field. */
function sampleRecords(type: EventType, n: number, seed: number): Record<string, unknown>[] {
  const records = sampleEvents(type.name, n, seed).map((e, i) => toEventRecord(type, e as never, i, Date.now()));
  const text = type.schema.fields.find((f) => f.type === 'string' && !type.bounds?.[f.name]);
  if (text) records[0]![text.name] = 'tab\there\nnew line\\back\rcr\u0000nul, ünïcødé 🚀 \n\n';
  return records;
}

describe('avro-to-tsv: the decode stage fast path', () => {
  for (const type of eventTypes) {
    it(`${type.name}: the same bytes as the object path (avsc + row encoder), escapes and nulls included`, () => {
      const records = sampleEvents(type.name, 300, 7).map((e, i) => toEventRecord(type, e as never, i, Date.now()));
      // Text that must be escaped, where the type has a plain string field.
      const text = type.schema.fields.find((f) => f.type === 'string' && !type.bounds?.[f.name]);
      if (text) records[0]![text.name] = 'tab\there\nnew line\\back\rcr\u0000nul, ünïcødé 🚀';
      const values = records.map((r) => encodeSingleObject(type.avroType, type.fingerprint, r));
      const got = transcodeAll(type, values, 1_000, `ingest.${type.name}`, 3);
      expect(got.body).toBe(objectPathBody(type, values, 1_000, `ingest.${type.name}`, 3));
      expect(got.timestamps).toEqual(records.map((r) => r[type.timestampField]));
    });
  }

  it('spans chunks: a body of many rows is the same as written row by row', () => {
    const type = typeNamed('llm_logs');
    const records = sampleEvents(type.name, 3_000, 11).map((e, i) => toEventRecord(type, e as never, i, Date.now()));
    const values = records.map((r) => encodeSingleObject(type.avroType, type.fingerprint, r));
    expect(values.reduce((n, v) => n + v.length, 0)).toBeGreaterThan(4 * 64 * 1024); // several chunks
    expect(transcodeAll(type, values, 0, 't', 0).body).toBe(objectPathBody(type, values, 0, 't', 0));
  });

  for (const format of ['TabSeparated', 'RowBinary'] as const)
  it(`refuses what it is not sure of, leaving the body untouched (${format})`, () => {
    const cost = typeNamed('cost_metrics');
    const record = toEventRecord(cost, sampleEvents('cost_metrics', 1, 3)[0] as never, 0, Date.now());
    const transcode = createAvroTranscoder(cost, format)!;
    const body = new InsertBody('t', 0, 0, format);
    const enc = (r: Record<string, unknown>, fp = cost.fingerprint) => encodeSingleObject(cost.avroType, fp, r);
    const good = enc(record);
    const cases: Array<[Buffer, RegExp]> = [
      [enc({ ...record, cost_per_hour: Number.NaN }), /cost_per_hour: not finite/],
      [enc({ ...record, customer_id: 'not-a-uuid' }), /customer_id: not a lowercase UUID/],
      [enc({ ...record, customer_id: String(record.customer_id).toUpperCase() }), /customer_id: not a lowercase UUID/],
      [enc(record, typeNamed('llm_logs').fingerprint), /not the current schema/],
      [good.subarray(0, good.length - 3), /truncated|past the end|out of range/i],
      [Buffer.concat([good, Buffer.from([0])]), /trailing bytes/],
    ];
    for (const [value, why] of cases) {
      expect(() => transcode(value, 0, body)).toThrow(why);
      expect(body.pos).toBe(0);
    }
    transcode(good, 0, body);
    expect(body.pos).toBeGreaterThan(0);
  });

  it('refuses a string that is not UTF-8 (avsc would replace the bytes; the object path keeps that behaviour)', () => {
    const perf = typeNamed('performance_metrics');
    const record = toEventRecord(perf, sampleEvents('performance_metrics', 1, 3)[0] as never, 0, Date.now());
    const field = perf.schema.fields.find((f) => f.type === 'string' && typeof record[f.name] === 'string')!.name;
    const marker = 'zzzz';
    const value = encodeSingleObject(perf.avroType, perf.fingerprint, { ...record, [field]: marker });
    value.write('\xff\xfe', value.indexOf(marker), 'latin1'); // two bytes that are never UTF-8
    expect(() => createAvroToTsv(perf)!(value, 0, new InsertBody('t', 0))).toThrow(/not UTF-8/);
    expect(() => createAvroTranscoder(perf, 'RowBinary')!(value, 0, new InsertBody('t', 0, 0, 'RowBinary'))).toThrow(/not UTF-8/);
  });
});

describe('avro-to-tsv into RowBinary: the decode stage fast path on the embedded engine', () => {
  for (const type of eventTypes) {
    it(`${type.name}: the same bytes as the object path (avsc + row-binary.ts), nulls and every string included, and the rows read back`, () => {
      const records = sampleRecords(type, 300, 7);
      const values = records.map((r) => encodeSingleObject(type.avroType, type.fingerprint, r));
      const got = transcodeRows(type, values, 1_000, `ingest.${type.name}`, 3, 'RowBinary');
      expect(got.rows.body.equals(objectPathRowBinary(type, values, 1_000, `ingest.${type.name}`, 3))).toBe(true);
      expect(got.timestamps).toEqual(records.map((r) => r[type.timestampField]));
      // A refused row is read back from its bytes: exactly the record avsc decodes.
      const decoded = values.map((v) => type.avroType.fromBuffer(v.subarray(10)) as Record<string, unknown>);
      expect(decodedRows(got.rows, type).rows.map((r) => r.record)).toEqual(decoded);
      expect(decodedRows(sliceRows(got.rows, 120, 123), type).rows).toEqual([120, 121, 122].map((k) => ({ offset: 1_000 + k, record: decoded[k], bytes: 0 })));
    });
  }

  it('writes the column types the tables have: a UUID as its two halves, times as Int64 ms, nullable cells flagged, offsets as UInt64', () => {
    const runs = typeNamed('evolution_runs');
    const record = { ...toEventRecord(runs, sampleEvents('evolution_runs', 1, 3)[0] as never, 0, Date.now()), end_time: null, total_generations: 7 };
    const codec = createRowBinaryCodec(runs);
    expect(codec.columnTypes).toContain("Nullable(DateTime64(3, 'UTC'))");
    const body = transcodeRows(runs, [encodeSingleObject(runs.avroType, runs.fingerprint, record)], 2 ** 40 + 5, 'tp', 7, 'RowBinary').rows.body;
    // The row ends with the `_kafka_*` cells: String 'tp', UInt32 7, UInt64 offset.
    const offset = Buffer.alloc(8);
    offset.writeBigUInt64LE(2n ** 40n + 5n);
    expect(body.subarray(body.length - 15).equals(Buffer.concat([Buffer.from([2]), Buffer.from('tp'), Buffer.from([7, 0, 0, 0]), offset]))).toBe(true);
    const cost = typeNamed('cost_metrics');
    const c = { ...toEventRecord(cost, sampleEvents('cost_metrics', 1, 3)[0] as never, 0, Date.now()), customer_id: '00112233-4455-6677-8899-aabbccddeeff', timestamp: 1_700_000_000_123, is_spot: 1 };
    const cb = transcodeRows(cost, [encodeSingleObject(cost.avroType, cost.fingerprint, c)], 0, 't', 0, 'RowBinary').rows.body;
    const ts = Buffer.alloc(8);
    ts.writeBigInt64LE(1_700_000_000_123n);
    expect(cb.subarray(0, 8).equals(ts)).toBe(true);
    expect(cb.subarray(8, 24).toString('hex')).toBe('7766554433221100ffeeddccbbaa9988');
    expect(createRowBinaryCodec(cost).columnTypes).toEqual(['DateTime64(3, \'UTC\')', 'UUID', 'String', 'String', 'String', 'String', 'String', 'Float64', 'Float64', 'UInt8', 'UInt8', 'String', 'UInt32', 'UInt64']);
  });
});

/** A decode stage over a real batch stage, collecting sealed batches and dead letters. */
function decodeStage(type: EventType, lookup: SchemaLookup) {
  const batches: Batch[] = [];
  const letters: PoisonLetter[] = [];
  const next: BatchConsumer = { submit: async (b) => void batches.push(b) };
  const metrics = createWorkerMetrics();
  const batch = new BatchStage(next, { maxRows: 1_000, maxBytes: 1e9, maxWaitMs: 1_000 }, new MemoryBudget(1e9), metrics);
  const sink: DeadLetterSink = { poison: async (l) => void letters.push(l), failedBatch: async () => undefined, limit: new PoisonLimit({ maxRatio: 1, window: 1_000, initialPauseMs: 1_000, maxPauseMs: 1_000 }) };
  const stage = new DecodeStage(batch, lookup, new Map([['topic', type]]), sink, metrics, createLogger({}, 'silent'));
  return { stage, batch, batches, letters };
}

describe('DecodeStage: fast path and object path in one batch', () => {
  it('writes older-writer-schema, uppercase-UUID and fast-path rows into one body, and dead-letters poison with its reason', async () => {
    const base = typeNamed('quality_metrics');
    // The current schema has one more field (with a default) than the old writer (base).
    const v2Schema: AvroRecordSchema = { ...base.schema, fields: [...base.schema.fields, { name: 'judge_model', type: 'string', default: 'unknown', doc: 'judge' }] };
    const v2 = defineEventType({ ...base, schema: v2Schema, previousSchemas: [base.schema] } as never) as EventType;
    const lookup = new SchemaLookup([v2]);
    const { stage, batch, batches, letters } = decodeStage(v2, lookup);

    const samples = sampleEvents('quality_metrics', 4, 5).map((e, i) => toEventRecord(base, e as never, i, Date.now()));
    const current = { ...samples[0]!, judge_model: 'gpt-4o' };
    const idField = v2.schema.fields.find((f) => typeof f.type === 'object' && !Array.isArray(f.type) && 'logicalType' in f.type && f.type.logicalType === 'uuid')!.name;
    const upper = { ...samples[1]!, judge_model: 'x', [idField]: String(samples[1]![idField]).toUpperCase() };
    const messages = [
      encodeSingleObject(v2.avroType, v2.fingerprint, current), // fast path
      encodeSingleObject(base.avroType, base.fingerprint, samples[2]), // older writer: object path, default filled in
      encodeSingleObject(v2.avroType, v2.fingerprint, upper), // uppercase UUID: object path accepts it
      encodeSingleObject(v2.avroType, v2.fingerprint, { ...samples[3]!, judge_model: 'y', [idField]: 'nope' }), // poison
      Buffer.from('not avro'), // poison
    ];
    messages.forEach((value, offset) => stage.submit({ topic: 'topic', partition: 0, offset, value, timestamp: 0 }));
    await batch.join('shutdown', 1_000);

    expect(batches).toHaveLength(1);
    const rows = batches[0]!.rows;
    expect(rows.offsets).toEqual([0, 1, 2]);
    const expected = createRowEncoder(v2).encode({
      topic: 'topic',
      partition: 0,
      rows: [current, { ...samples[2]!, judge_model: 'unknown' }, upper].map((record, offset) => ({ offset, record, bytes: 0 })),
    });
    expect(rows.body.toString()).toBe(expected);
    expect(rows.timestamps).toEqual([current, samples[2]!, upper].map((r) => (r as Record<string, unknown>)[v2.timestampField]));
    expect([batches[0]!.firstOffset, batches[0]!.lastOffset, batches[0]!.messages]).toEqual([0, 4, 5]);
    expect(letters.map((l) => [l.offset, l.reason])).toEqual([
      [3, 'invalid_value'],
      [4, 'undecodable'],
    ]);
    expect(letters[0]!.detail).toContain(idField);
  });
});

describe('InsertBody: what a failed batch is split and dead-lettered from', () => {
  it('slices rows (body, offsets, event times, messages) across chunks, and decodes a slice back into its records', () => {
    const type = typeNamed('llm_logs');
    const records = sampleEvents(type.name, 1_500, 21).map((e, i) => toEventRecord(type, e as never, i, Date.now()));
    const values = records.map((r) => encodeSingleObject(type.avroType, type.fingerprint, r));
    const transcode = createAvroToTsv(type)!;
    const body = new InsertBody('t', 2); // no size hint: 64 KiB first chunks, so several of each
    values.forEach((v, k) => body.endRow(500 + k, transcode(v, 500 + k, body)));
    const rows = body.finish();
    const lines = rows.body.toString().split('\n').slice(0, -1);
    expect(lines).toHaveLength(1_500);

    const part = sliceRows(rows, 700, 1_100);
    expect(part.count).toBe(400);
    expect(part.body.toString()).toBe(`${lines.slice(700, 1_100).join('\n')}\n`);
    expect(part.offsets).toEqual(Array.from({ length: 400 }, (_, k) => 1_200 + k));
    expect(part.timestamps).toEqual(records.slice(700, 1_100).map((r) => r[type.timestampField]));
    const letters = decodedRows(sliceRows(part, 398, 400), type);
    expect(letters.rows).toEqual([
      { offset: 1_598, record: records[1_098], bytes: 0 },
      { offset: 1_599, record: records[1_099], bytes: 0 },
    ]);
  });

  for (const type of eventTypes) {
    it(`${type.name}: a line reads back into exactly the record avsc decodes (nulls, escapes, float widening, times)`, () => {
      const records = sampleEvents(type.name, 200, 13).map((e, i) => toEventRecord(type, e as never, i, Date.now()));
      const text = type.schema.fields.find((f) => f.type === 'string' && !type.bounds?.[f.name]);
      if (text) records[1]![text.name] = 'a\\tb \\ c\tnew\nline\r\u0000 \\N ünï 🚀';
      const decoded = records.map((r) => type.avroType.fromBuffer(encodeSingleObject(type.avroType, type.fingerprint, r).subarray(10)) as Record<string, unknown>);
      const encoder = createRowEncoder(type);
      const rows = encodeRecords(encoder, type.timestampField, { topic: 't', partition: 0, rows: decoded.map((record, offset) => ({ offset, record, bytes: 0 })) });
      expect(decodedRows(rows, type).rows.map((r) => r.record)).toEqual(decoded);
    });
  }
});

describe('the RowBinaryWithNamesAndTypes header: only for a table with the types the rows were written in', () => {
  const codec = { columns: ['a', 'b', 'c'], columnTypes: ['String', 'Nullable(String)', 'Float64'] };
  it("names the table's exact types (LowCardinality included) when their bytes are the codec's", () => {
    const header = rowBinaryHeader(codec, new Map([['a', 'LowCardinality(String)'], ['b', 'LowCardinality(Nullable(String))'], ['c', 'Float64']]))!;
    expect(header[0]).toBe(3);
    expect(header.toString('latin1')).toContain('LowCardinality(Nullable(String))');
  });
  it('is undefined when a column is missing or retyped (a Float64 read as Int64 would be the same 8 bytes)', () => {
    expect(rowBinaryHeader(codec, new Map([['a', 'String'], ['b', 'Nullable(String)']]))).toBeUndefined();
    expect(rowBinaryHeader(codec, new Map([['a', 'String'], ['b', 'Nullable(String)'], ['c', 'Int64']]))).toBeUndefined();
  });
});
