import { describe, expect, it } from 'vitest';
import { createAvroToTsv } from '../../bench/avro-to-tsv.js';
import { createRowEncoder } from '../../consumers/row-encoder.js';
import { eventTypes } from '../../schemas/index.js';
import { toEventRecord } from '../../schemas/validate-event.js';
import { encodeSingleObject } from '../../schemas/wire-format.js';
import { sampleEvents } from '../fixtures/events.js';

/**
 * The benchmark's direct Avro → TSV transcoder (an option measured, not used by the worker) must
 * write exactly the body the worker's row encoder writes, or its figure would not compare.
 */
describe('avro-to-tsv (bench option)', () => {
  for (const type of eventTypes) {
    it(`${type.name}: the same bytes as the worker's row encoder, escapes and nulls included`, () => {
      const records = sampleEvents(type.name, 300, 7).map((e, i) => toEventRecord(type, e as never, i, Date.now()));
      // Text that must be escaped, where the type has a plain string field.
      const text = type.schema.fields.find((f) => f.type === 'string' && !type.bounds?.[f.name]);
      if (text) records[0]![text.name] = 'tab\there\nnew line\\back\rcr\u0000nul, ünïcødé';
      const values = records.map((r) => encodeSingleObject(type.avroType, type.fingerprint, r));
      const rows = records.map((record, k) => ({ offset: 1_000 + k, record: type.avroType.fromBuffer(values[k]!.subarray(10)) as Record<string, unknown>, bytes: values[k]!.length }));
      const expected = createRowEncoder(type).encode({ topic: `ingest.${type.name}`, partition: 3, rows });
      const got = createAvroToTsv(type)(values, 1_000, `ingest.${type.name}`, 3);
      expect(got.toString()).toBe(expected);
    });
  }

  it('refuses what the worker would dead-letter: NaN, a malformed UUID, another event type', () => {
    const cost = eventTypes.find((t) => t.name === 'cost_metrics')!;
    const record = toEventRecord(cost, sampleEvents('cost_metrics', 1, 3)[0] as never, 0, Date.now());
    const transcode = createAvroToTsv(cost);
    expect(() => transcode([encodeSingleObject(cost.avroType, cost.fingerprint, { ...record, cost_per_hour: Number.NaN })], 0, 't', 0)).toThrow(/cost_per_hour: not finite/);
    expect(() => transcode([encodeSingleObject(cost.avroType, cost.fingerprint, { ...record, customer_id: 'not-a-uuid' })], 0, 't', 0)).toThrow(/customer_id: not a UUID/);
    const other = eventTypes.find((t) => t.name !== 'cost_metrics')!;
    expect(() => transcode([encodeSingleObject(cost.avroType, other.fingerprint, record)], 0, 't', 0)).toThrow(/not this event type/);
  });
});
