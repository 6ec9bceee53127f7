import { readFileSync } from 'node:fs';
import avsc from 'avsc';
import { describe, expect, it } from 'vitest';
import type { AvroRecordSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import { avscPath, renderAvsc } from '../../schemas/avsc-files.js';
import { defineEventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { EventValidationError, convertInput, toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { SingleObjectEncoder, encodeSingleObject, readFingerprint } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { sampleEvents } from '../fixtures/events.js';

const NEW_TYPES = ['performance_metrics', 'resource_metrics', 'quality_metrics', 'evolution_runs', 'generations', 'individuals', 'pareto_fronts', 'code_lineages', 'llm_logs', 'agent_actions'];

describe('event types', () => {
  it('all eleven are registered, with unique names, tables and record names', () => {
    const names = eventTypes.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['cost_metrics', ...NEW_TYPES]));
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(eventTypes.map((t) => t.table)).size).toBe(names.length);
    expect(new Set(eventTypes.map((t) => `${t.schema.namespace}.${t.schema.name}`)).size).toBe(names.length);
  });

  it('every field has a doc, and the key, time, JSON and auto fields exist', () => {
    for (const t of eventTypes) {
      for (const f of t.schema.fields) expect(f.doc, `${t.name}.${f.name}`).toMatch(/\S/);
      for (const f of [t.partitionKey, t.timestampField, ...(t.jsonFields ?? []), ...Object.keys(t.autoFields ?? {})]) expect(t.fieldNames, `${t.name}: ${f}`).toContain(f);
    }
  });

  for (const t of eventTypes) {
    it(`${t.name}: samples validate and round-trip through single-object encoding and SchemaLookup`, () => {
      const lookup = new SchemaLookup(eventTypes);
      const samples = sampleEvents(t.name, 25, 3);
      expect(sampleEvents(t.name, 25, 3)).toEqual(samples); // deterministic
      expect(sampleEvents(t.name, 25, 4)).not.toEqual(samples);
      for (const [i, s] of samples.entries()) {
        const record = toEventRecord(t, s, i);
        const bytes = encodeSingleObject(t.avroType, t.fingerprint, record);
        const entry = lookup.get(readFingerprint(bytes)!);
        expect(entry?.eventType.name).toBe(t.name);
        expect(entry!.decode(bytes)).toEqual(record);
      }
    });
  }

  it('JSON fields accept objects and are stored as JSON text', () => {
    const [s] = sampleEvents('llm_logs', 1, 1);
    const r = toEventRecord(eventTypes.find((t) => t.name === 'llm_logs')!, s);
    expect(JSON.parse(r.messages as string)).toEqual(s!.messages);
    expect(r.id).toMatch(/^[0-9a-f-]{36}$/); // auto uuid
  });
});

describe('validation names the event type and field', () => {
  const perf = eventTypes.find((t) => t.name === 'performance_metrics')!;
  const good = () => ({ ...sampleEvents('performance_metrics', 1, 1)[0]! });
  const cases: Array<[string, (e: Record<string, unknown>) => void, string, RegExp]> = [
    ['missing', (e) => delete e.latency_ms, 'latency_ms', /is required/],
    ['wrong type', (e) => (e.batch_size = 'eight'), 'batch_size', /32-bit integer/],
    ['NaN', (e) => (e.latency_ms = Number.NaN), 'latency_ms', /finite number/],
    ['Infinity', (e) => (e.gpu_utilization = Infinity), 'gpu_utilization', /finite number/],
    ['bad uuid', (e) => (e.service_id = 'svc-1'), 'service_id', /UUID/],
    ['unknown field', (e) => (e.latency = 1), 'latency', /unknown field/],
  ];
  for (const [what, mutate, field, reason] of cases) {
    it(what, () => {
      const e = good();
      mutate(e);
      let err: unknown;
      try {
        toEventRecord(perf, e, 3);
      } catch (x) {
        err = x;
      }
      expect(err).toBeInstanceOf(EventValidationError);
      expect((err as EventValidationError).eventType).toBe('performance_metrics');
      expect((err as EventValidationError).field).toBe(field);
      expect((err as Error).message).toMatch(new RegExp(`^performance_metrics\\[3\\]\\.${field}: `));
      expect((err as Error).message).toMatch(reason);
    });
  }

  it('evolution types too: a NaN fitness names individuals.fitness_score', () => {
    const ind = eventTypes.find((t) => t.name === 'individuals')!;
    expect(() => toEventRecord(ind, { ...sampleEvents('individuals', 1)[0], fitness_score: Number.NaN })).toThrow(/^individuals\.fitness_score: expected a finite number/);
  });
});

describe('.avsc files', () => {
  for (const t of eventTypes) {
    it(`schemas/avro/${t.name}.avsc equals what npm run schemas:export writes`, () => {
      const onDisk = readFileSync(avscPath(t), 'utf8');
      expect(onDisk).toBe(renderAvsc(t));
      expect(avsc.Type.forSchema(JSON.parse(onDisk)).equals(t.avroType)).toBe(true);
    });
  }
});

describe('schema evolution', () => {
  const base = eventTypes.find((t) => t.name === 'quality_metrics')!;
  const v2Schema: AvroRecordSchema = {
    ...base.schema,
    fields: [...base.schema.fields, { name: 'judge_model', type: 'string', default: 'unknown', doc: 'Model that scored the response.' }],
  };
  const v2 = defineEventType({ ...base, schema: v2Schema } as never) as typeof base;
  const sample = sampleEvents('quality_metrics', 1, 9)[0]!;

  it('a new writer (added field with default) is read by an old reader that learned the new schema', () => {
    const oldLookup = new SchemaLookup([base]);
    const record = { ...toEventRecord(base, sample), judge_model: 'gpt-4o' };
    const bytes = encodeSingleObject(v2.avroType, v2.fingerprint, record);
    expect(oldLookup.has(readFingerprint(bytes)!)).toBe(false);
    expect(oldLookup.learn(v2Schema)).toBe(true);
    const { judge_model: _dropped, ...expected } = record;
    expect(oldLookup.get(readFingerprint(bytes)!)!.decode(bytes)).toEqual(expected);
  });

  it('old events are read by the new reader through previousSchemas, with the default filled in', () => {
    const v2WithHistory = defineEventType({ ...base, schema: v2Schema, previousSchemas: [base.schema] } as never) as typeof base;
    const newLookup = new SchemaLookup([v2WithHistory]);
    const oldRecord = toEventRecord(base, sample);
    const bytes = encodeSingleObject(base.avroType, base.fingerprint, oldRecord);
    expect(newLookup.get(readFingerprint(bytes)!)!.decode(bytes)).toEqual({ ...oldRecord, judge_model: 'unknown' });
    expect(new SchemaLookup([v2]).has(readFingerprint(bytes)!)).toBe(false); // without the history it is unknown
  });

  it('an added field without a default cannot be read from old events (learn refuses it)', () => {
    const bad: AvroRecordSchema = { ...base.schema, fields: [...base.schema.fields, { name: 'x', type: 'string' }] };
    const lookup = new SchemaLookup([defineEventType({ ...base, schema: bad } as never)]);
    expect(lookup.learn(base.schema)).toBe(false);
  });
});

describe('SingleObjectEncoder', () => {
  it('writes every message into shared slabs byte for byte as encodeSingleObject does, across slab ends and for a message larger than a slab', () => {
    const encoder = new SingleObjectEncoder(4096);
    const expected: Buffer[] = [];
    const got: Buffer[] = [];
    for (const type of eventTypes) {
      const records = sampleEvents(type.name, 50, 7).map((e, i) => toEventRecord(type, e, i));
      for (const record of records) {
        expected.push(encodeSingleObject(type.avroType, type.fingerprint, record));
        got.push(encoder.encode(type.avroType, type.fingerprint, record));
      }
    }
    const llm = eventTypes.find((t) => t.name === 'llm_logs')!;
    const big = toEventRecord(llm, { ...sampleEvents('llm_logs', 1, 3)[0]!, response: 'x'.repeat(10_000) });
    expected.push(encodeSingleObject(llm.avroType, llm.fingerprint, big));
    got.push(encoder.encode(llm.avroType, llm.fingerprint, big));
    expect(got.map((b) => b.toString('hex'))).toEqual(expected.map((b) => b.toString('hex')));
    // Views of shared slabs, not one allocation each: far fewer distinct backing buffers than messages.
    expect(new Set(got.map((b) => b.buffer)).size).toBeLessThan(got.length / 5);
  });
});

describe('compiled input conversion (toEventRecord)', () => {
  const now = Date.UTC(2026, 10, 24, 3, 0, 0);
  const uuidLike = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const autoUuid = (type: (typeof eventTypes)[number]) => Object.entries(type.autoFields ?? {}).filter(([, a]) => a === 'uuid').map(([f]) => f);
  const outcome = (fn: () => Record<string, unknown>, type: (typeof eventTypes)[number]) => {
    try {
      const record = { ...fn() };
      // Generated UUIDs differ per call: compare that each is one.
      for (const f of autoUuid(type)) if (uuidLike.test(String(record[f]))) record[f] = '<uuid>';
      return { record };
    } catch (err) {
      return { error: `${(err as Error).name}: ${(err as Error).message}` };
    }
  };

  it('gives exactly the reference conversion, records and errors, for every event type', () => {
    let accepted = 0;
    let refused = 0;
    for (const type of eventTypes) {
      const inputs: unknown[] = [];
      for (const event of sampleEvents(type.name, 20, 11) as Record<string, unknown>[]) {
        const given = event[type.timestampField];
        const ts = given instanceof Date ? given.getTime() : typeof given === 'string' ? Date.parse(given) : Number(given ?? now);
        inputs.push(event, { ...event, [type.timestampField]: new Date(ts) }, { ...event, [type.timestampField]: new Date(ts).toISOString() }, { ...event, [type.timestampField]: ts + 0.4 });
        for (const field of type.schema.fields) {
          const { [field.name]: _omit, ...without } = event;
          inputs.push(without, { ...event, [field.name]: null });
          for (const bad of ['x', 42, 1.5, -1, 2 ** 40, Number.NaN, Infinity, true, {}, [], '{"a":1}', 'not json', '123e4567-e89b-12d3-a456-426614174000']) inputs.push({ ...event, [field.name]: bad });
        }
        inputs.push({ ...event, unknown_field: 1 }, null, [], 'event');
      }
      for (const [i, input] of inputs.entries()) {
        const fast = outcome(() => toEventRecord(type, input, i, now), type);
        const reference = outcome(() => convertInput(type, input, i, now), type);
        expect(fast, `${type.name} input ${i}: ${JSON.stringify(input)}`).toEqual(reference);
        if (fast.record) accepted++;
        else refused++;
      }
    }
    // Both outcomes were exercised, many times.
    expect(accepted).toBeGreaterThan(1_000);
    expect(refused).toBeGreaterThan(1_000);
  });
});
