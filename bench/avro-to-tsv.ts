import type { AvroSchema } from '../schemas/avro-types.js';
import type { EventType } from '../schemas/event-type.js';
import { SINGLE_OBJECT_MAGIC } from '../schemas/wire-format.js';
import { escapeTsv } from '../consumers/row-encoder.js';

/**
 * An option measured by the benchmark, not used by the worker: transcode Avro single-object
 * messages straight into the worker's TabSeparated insert body, with the worker's checks (NaN
 * and ±Infinity, UUID format, timestamp ≥ 0, bounds), but without an object per row or a string
 * per field: string bytes are copied from the message into the body. The worker today decodes
 * each message into an object (avsc), checks it, holds the objects in its batch and builds the
 * body as one JS string; GC and string work are the largest items of its profile.
 *
 * Generated per event type, like consumers/row-encoder.ts, and for the same Avro types (string,
 * boolean, int, long, float, double, timestamp-millis, uuid, unions with null). The output must
 * be byte-identical to row-encoder.ts's (the benchmark checks it before timing).
 * Throws on a message it cannot take; the worker would send that one down the object path to
 * get its precise poison reason.
 */
export type AvroToTsv = (values: readonly Buffer[], firstOffset: number, topic: string, partition: number) => Buffer;

export function createAvroToTsv(type: EventType): AvroToTsv {
  const lines: string[] = [];
  for (const field of type.schema.fields) {
    lines.push(fieldCode(field.type as AvroSchema, type.bounds?.[field.name], JSON.stringify(field.name)), `out[o++] = 9;`);
  }
  const body = lines.join('\n        ');
  const factory = new Function(
    'fingerprint',
    'magic0',
    'magic1',
    'escapeTsv',
    `
    const HEX = new Uint8Array(256);
    for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1;
    let src, p, o, out;
    function fail(field, why) { throw new Error('avro-to-tsv: ' + field + ': ' + why); }
    function readLong() {
      // zigzag varint; exact for |n| < 2^53, as avsc's default long type
      let n = 0, shift = 1, b;
      do { b = src[p++]; n += (b & 0x7f) * shift; shift *= 128; } while (b & 0x80);
      return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    }
    function writeAscii(s) { for (let i = 0; i < s.length; i++) out[o++] = s.charCodeAt(i); }
    function writeInt(n) {
      if (n < 0) { out[o++] = 45; n = -n; }
      if (n < 10) { out[o++] = 48 + n; return; }
      writeAscii('' + n);
    }
    function copyString(field, uuid) {
      const len = readLong();
      const end = p + len;
      if (end > src.length) fail(field, 'string past the end of the message');
      if (uuid) {
        if (len !== 36) fail(field, 'not a UUID');
        for (let i = 0; i < 36; i++) {
          const c = src[p + i];
          if (i === 8 || i === 13 || i === 18 || i === 23 ? c !== 45 : HEX[c] !== 1) fail(field, 'not a UUID');
        }
        src.copy(out, o, p, end); o += 36; p = end; return;
      }
      let clean = true;
      for (let i = p; i < end; i++) { const c = src[i]; if (c === 92 || c === 9 || c === 10 || c === 13 || c === 0) { clean = false; break; } }
      if (clean) { src.copy(out, o, p, end); o += len; p = end; return; }
      for (; p < end; p++) {
        const c = src[p];
        if (c === 92) { out[o++] = 92; out[o++] = 92; }
        else if (c === 9) { out[o++] = 92; out[o++] = 116; }
        else if (c === 10) { out[o++] = 92; out[o++] = 110; }
        else if (c === 13) { out[o++] = 92; out[o++] = 114; }
        else if (c === 0) { out[o++] = 92; out[o++] = 48; }
        else out[o++] = c;
      }
    }
    function writeSeconds(ms) {
      // as row-encoder.ts's msToSeconds: whole seconds, '.', three digits
      const frac = ((ms % 1000) + 1000) % 1000;
      writeInt((ms - frac) / 1000);
      out[o++] = 46;
      out[o++] = 48 + Math.floor(frac / 100); out[o++] = 48 + (Math.floor(frac / 10) % 10); out[o++] = 48 + (frac % 10);
    }
    return function transcode(values, firstOffset, topic, partition) {
      let size = 0;
      for (const v of values) size += v.length;
      // Text of a number is at most ~24 bytes for 1-9 bytes of Avro; escapes at most double a string.
      out = Buffer.allocUnsafe(size * 4 + values.length * (topic.length * 3 + 40));
      o = 0;
      const tail = Buffer.from(escapeTsv(topic) + '\\t' + partition + '\\t');
      for (let k = 0; k < values.length; k++) {
        src = values[k];
        if (src[0] !== magic0 || src[1] !== magic1 || src.compare(fingerprint, 0, 8, 2, 10) !== 0) fail('(header)', 'not this event type');
        p = 10;
        let v;
        ${body}
        tail.copy(out, o); o += tail.length;
        writeInt(firstOffset + k);
        out[o++] = 10;
        if (p !== src.length) fail('(record)', 'trailing bytes');
      }
      return out.subarray(0, o);
    };`,
  );
  return factory(type.fingerprint, SINGLE_OBJECT_MAGIC[0], SINGLE_OBJECT_MAGIC[1], escapeTsv) as AvroToTsv;
}

/** Statements that read one field of `schema` at `p` and write its TSV cell at `o`. */
function fieldCode(schema: AvroSchema, bounds: readonly [number, number] | undefined, name: string): string {
  if (Array.isArray(schema)) {
    const nullIndex = schema.indexOf('null');
    const branch = schema.find((s) => s !== 'null');
    if (schema.length !== 2 || nullIndex < 0 || branch === undefined) throw new Error(`avro-to-tsv: union ${JSON.stringify(schema)} not supported`);
    return `if (readLong() === ${nullIndex}) { out[o++] = 92; out[o++] = 78; } else { ${fieldCode(branch as AvroSchema, bounds, name)} }`;
  }
  if (typeof schema === 'object' && 'logicalType' in schema) {
    if (schema.logicalType === 'timestamp-millis') return `v = readLong(); if (v < 0) fail(${name}, 'negative timestamp'); writeSeconds(v);`;
    if (schema.logicalType === 'uuid') return `copyString(${name}, true);`;
    return fieldCode(schema.type as AvroSchema, bounds, name);
  }
  const bound = bounds ? ` if (v < ${bounds[0]} || v > ${bounds[1]}) fail(${name}, 'out of bounds');` : '';
  switch (schema) {
    case 'string':
      return `copyString(${name}, false);`;
    case 'boolean':
      return `v = src[p++]; writeAscii(v ? 'true' : 'false');`;
    case 'int':
    case 'long':
      return `v = readLong();${bound} writeInt(v);`;
    case 'float':
      return `v = src.readFloatLE(p); p += 4; if (!Number.isFinite(v)) fail(${name}, 'not finite');${bound} writeAscii('' + v);`;
    case 'double':
      return `v = src.readDoubleLE(p); p += 8; if (!Number.isFinite(v)) fail(${name}, 'not finite');${bound} writeAscii('' + v);`;
    default:
      throw new Error(`avro-to-tsv: Avro type ${JSON.stringify(schema)} not supported`);
  }
}

export interface TranscodeFigures {
  rows: number;
  batchRows: number;
  /** The worker's path today: decode + check into objects, TSV text from the objects, text to a Buffer. */
  objectPath: { seconds: number; rowsPerSec: number };
  /** createAvroToTsv: message bytes straight into the body Buffer. */
  direct: { seconds: number; rowsPerSec: number };
  /** The two bodies of the first batch are byte-identical (checked before timing; else the step fails). */
  identical: true;
}

/**
 * Messages → insert body, both ways, over `total` messages (the pool cycled) in batches of
 * `batchRows`, each timed over the whole run (GC included). The first batch runs once each way
 * untimed, to compare the two bodies, which also warms both up.
 */
export function transcodeLimit(opts: { type: EventType; encodedPool: readonly Buffer[]; total: number; batchRows: number; decode: (value: Buffer) => Record<string, unknown>; encodeRows: (batch: { topic: string; partition: number; rows: { offset: number; record: Record<string, unknown>; bytes: number }[] }) => string }): TranscodeFigures {
  const { type, encodedPool, total, batchRows } = opts;
  const topic = `bench.${type.name}`;
  const transcode = createAvroToTsv(type);
  const batchOf = (first: number) => {
    const values: Buffer[] = [];
    for (let i = first; i < Math.min(total, first + batchRows); i++) values.push(encodedPool[i % encodedPool.length]!);
    return values;
  };
  const objectWay = (values: readonly Buffer[], first: number): Buffer =>
    Buffer.from(opts.encodeRows({ topic, partition: 0, rows: values.map((value, k) => ({ offset: first + k, record: opts.decode(value), bytes: value.length })) }));
  const first = batchOf(0);
  const a = objectWay(first, 0);
  const b = transcode(first, 0, topic, 0);
  if (!a.equals(b)) {
    let at = 0;
    while (at < a.length && a[at] === b[at]) at++;
    throw new Error(`avro-to-tsv: body differs from row-encoder's at byte ${at}: ${JSON.stringify(a.subarray(at, at + 60).toString())} vs ${JSON.stringify(b.subarray(at, at + 60).toString())}`);
  }
  const time = (fn: (values: readonly Buffer[], first: number) => Buffer) => {
    let sink = 0;
    const t0 = performance.now();
    for (let f = 0; f < total; f += batchRows) sink += fn(batchOf(f), f).length;
    const seconds = (performance.now() - t0) / 1000;
    if (sink === 0) throw new Error('avro-to-tsv: empty bodies');
    return { seconds: Math.round(seconds * 1000) / 1000, rowsPerSec: Math.round(total / seconds) };
  };
  const objectPath = time(objectWay);
  const direct = time((values, f) => transcode(values, f, topic, 0));
  return { rows: total, batchRows, objectPath, direct, identical: true };
}
