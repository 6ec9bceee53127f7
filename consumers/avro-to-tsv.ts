import { isUtf8 } from 'node:buffer';
import type { AvroSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { SINGLE_OBJECT_MAGIC } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import type { TsvBody } from './tsv-body.js';

/**
 * Transcodes one Avro single-object message of the event type's current schema straight into
 * its TabSeparated insert line: no object per row, no string per field; string bytes are copied
 * from the message into the body. Returns the event time (epoch ms).
 *
 * The worker's fast path. It writes exactly what decode (avsc) + checkEventRecord + row-encoder.ts
 * write (test/unit/avro-to-tsv.test.ts checks all event types byte for byte), and it is
 * stricter, never looser: it throws on anything it is not sure of (another writer schema, a
 * string that is not valid UTF-8, a long beyond 2^53, an int beyond 32 bits, a value the checks
 * refuse, a truncated or over-long datum). The decode stage then takes that message down the
 * object path, which either encodes it the same way or names the precise poison reason. A
 * throw leaves `body` as it was: `body.pos` moves only once the whole line is written.
 *
 * Generated per event type (straight-line code per field, as row-encoder.ts), for the Avro
 * types the schemas use: string, boolean, int, long, float, double, timestamp-millis, uuid, and
 * unions of one of these with null. `createAvroToTsv` returns undefined for a schema with any
 * other type; such an event type always takes the object path.
 */
export type AvroToTsv = (value: Buffer, offset: number, body: TsvBody) => number;

const transcoders = new WeakMap<EventType, AvroToTsv | null>();

/** The transcoder of `type` (undefined when its schema has a type the fast path lacks), generated once per process. */
export function avroToTsvFor(type: EventType): AvroToTsv | undefined {
  let transcode = transcoders.get(type);
  if (transcode === undefined) transcoders.set(type, (transcode = createAvroToTsv(type) ?? null));
  return transcode ?? undefined;
}

export function createAvroToTsv(type: EventType): AvroToTsv | undefined {
  const lines: string[] = [];
  try {
    for (const field of type.schema.fields) {
      lines.push(fieldCode(field.type as AvroSchema, type.bounds?.[field.name], field.name, field.name === type.timestampField), `out[o++] = 9;`);
    }
  } catch (err) {
    if (err instanceof UnsupportedType) return undefined;
    throw err;
  }
  // Field names come from our own schema definitions (JSON-quoted), never from input. The
  // sourceURL names this code in CPU profiles (bench/profile.ts), which would show it as builtins.
  const factory = new Function(
    'fingerprint',
    'magic0',
    'magic1',
    'isUtf8',
    `
    const HEX = new Uint8Array(256);
    for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1;
    let src, p, o, out;
    function fail(field, why) { throw new Error('avro-to-tsv: ' + field + ': ' + why); }
    function readLong() {
      // zigzag varint, exact below 2^53 (avsc's default long type refuses or rounds beyond)
      let n = 0, shift = 1, b;
      do { b = src[p++]; n += (b & 0x7f) * shift; shift *= 128; } while (b & 0x80);
      if (n > 9007199254740991) fail('(long)', 'beyond 2^53');
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
      if (len < 0 || end > src.length) fail(field, 'string past the end of the message');
      if (uuid) {
        if (len !== 36) fail(field, 'not a lowercase UUID');
        for (let i = 0; i < 36; i++) {
          const c = src[p + i];
          if (i === 8 || i === 13 || i === 18 || i === 23 ? c !== 45 : HEX[c] !== 1) fail(field, 'not a lowercase UUID');
        }
        for (let i = p; i < end; i++) out[o++] = src[i];
        p = end; return;
      }
      let clean = true, ascii = true;
      for (let i = p; i < end; i++) {
        const c = src[i];
        if (c === 92 || c === 9 || c === 10 || c === 13 || c === 0) clean = false;
        else if (c > 127) ascii = false;
      }
      // avsc would replace invalid UTF-8 with U+FFFD; leave such strings to the object path.
      if (!ascii && !isUtf8(src.subarray(p, end))) fail(field, 'not UTF-8');
      if (clean) {
        // Buffer#copy of a sub-range allocates a Uint8Array view per call: a loop is cheaper for short strings.
        if (len > 64) { src.copy(out, o, p, end); o += len; }
        else for (let i = p; i < end; i++) out[o++] = src[i];
        p = end; return;
      }
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
    return function transcode(value, offset, body) {
      src = value;
      if (src.length < 10 || src[0] !== magic0 || src[1] !== magic1 || src.compare(fingerprint, 0, 8, 2, 10) !== 0) fail('(header)', 'not the current schema of this event type');
      // The longest text per Avro byte: a 4-byte float as up to 24 characters and a tab.
      body.reserve(src.length * 7 + body.tail.length + 32);
      out = body.buf; o = body.pos; p = 10;
      let v, ts = NaN;
      ${lines.join('\n      ')}
      if (p !== src.length) fail('(record)', p < src.length ? 'trailing bytes' : 'truncated');
      const tail = body.tail;
      for (let i = 0; i < tail.length; i++) out[o++] = tail[i];
      writeInt(offset);
      out[o++] = 10;
      // Writes past the end of a Buffer are dropped silently: never let one through.
      if (o > out.length) fail('(record)', 'line longer than reserved');
      body.pos = o;
      return ts;
    };
    //# sourceURL=generated:consumers/avro-to-tsv.ts/${type.name}`,
  );
  return factory(type.fingerprint, SINGLE_OBJECT_MAGIC[0], SINGLE_OBJECT_MAGIC[1], isUtf8) as AvroToTsv;
}

class UnsupportedType extends Error {}

/** Statements that read one field of `schema` at `p` and write its TSV cell at `o`. */
function fieldCode(schema: AvroSchema, bounds: readonly [number, number] | undefined, fieldName: string, isTimestamp: boolean): string {
  const name = JSON.stringify(fieldName);
  if (Array.isArray(schema)) {
    const nullIndex = schema.indexOf('null');
    const branch = schema.find((s) => s !== 'null');
    if (schema.length !== 2 || nullIndex < 0 || branch === undefined) throw new UnsupportedType();
    const other = 1 - nullIndex;
    return `v = readLong(); if (v === ${nullIndex}) { out[o++] = 92; out[o++] = 78; } else if (v === ${other}) { ${fieldCode(branch as AvroSchema, bounds, fieldName, isTimestamp)} } else fail(${name}, 'union branch out of range');`;
  }
  if (typeof schema === 'object' && 'logicalType' in schema) {
    if (schema.logicalType === 'timestamp-millis') return `v = readLong(); if (v < 0) fail(${name}, 'negative timestamp');${isTimestamp ? ' ts = v;' : ''} writeSeconds(v);`;
    if (schema.logicalType === 'uuid') return `copyString(${name}, true);`;
    return fieldCode(schema.type as AvroSchema, bounds, fieldName, isTimestamp);
  }
  const bound = bounds ? ` if (v < ${bounds[0]} || v > ${bounds[1]}) fail(${name}, 'out of bounds');` : '';
  switch (schema) {
    case 'string':
      return `copyString(${name}, false);`;
    case 'boolean':
      return `v = src[p++]; writeAscii(v ? 'true' : 'false');`;
    case 'int':
      return `v = readLong(); if (v < -2147483648 || v > 2147483647) fail(${name}, 'int beyond 32 bits');${bound} writeInt(v);`;
    case 'long':
      return `v = readLong();${bound} writeInt(v);`;
    case 'float':
      return `v = src.readFloatLE(p); p += 4; if (!Number.isFinite(v)) fail(${name}, 'not finite');${bound} writeAscii('' + v);`;
    case 'double':
      return `v = src.readDoubleLE(p); p += 8; if (!Number.isFinite(v)) fail(${name}, 'not finite');${bound} writeAscii('' + v);`;
    default:
      throw new UnsupportedType();
  }
}
