import { isUtf8 } from 'node:buffer';
import type { AvroSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { SINGLE_OBJECT_MAGIC } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import type { BodyFormat, InsertBody } from './insert-body.js';

/**
 * Transcodes one Avro single-object message of the event type's current schema straight into
 * its row of the insert body, TabSeparated or RowBinary: no object per row, no string per field;
 * string bytes are copied from the message into the body. Returns the event time (epoch ms).
 *
 * The worker's fast path. It writes exactly what decode (avsc) + checkEventRecord + the object
 * path's encoder write (row-encoder.ts for TabSeparated, row-binary.ts for RowBinary;
 * test/unit/avro-to-tsv.test.ts checks all event types byte for byte in both formats), and it is
 * stricter, never looser: it throws on anything it is not sure of (another writer schema, a
 * string that is not valid UTF-8, a long beyond 2^53, an int beyond 32 bits, a value the checks
 * refuse, a truncated or over-long datum). The decode stage then takes that message down the
 * object path, which either encodes it the same way or names the precise poison reason. A
 * throw leaves `body` as it was: `body.pos` moves only once the whole row is written.
 *
 * Generated per event type and format (straight-line code per field) from one table of the
 * Avro types the schemas use (`KINDS` below: how each is read and checked, and how each format
 * writes it): string, boolean, int, long, float, double, timestamp-millis, uuid, and unions of
 * one of these with null. `createAvroTranscoder` returns undefined for a schema with any other
 * type; such an event type always takes the object path.
 */
export type AvroToTsv = (value: Buffer, offset: number, body: InsertBody) => number;
export type AvroTranscoder = AvroToTsv;

const transcoders = { TabSeparated: new WeakMap<EventType, AvroTranscoder | null>(), RowBinary: new WeakMap<EventType, AvroTranscoder | null>() };

/** The transcoder of `type` into `format` (undefined when its schema has a type the fast path lacks), generated once per process. */
export function transcoderFor(type: EventType, format: BodyFormat): AvroTranscoder | undefined {
  const cache = transcoders[format];
  let transcode = cache.get(type);
  if (transcode === undefined) cache.set(type, (transcode = createAvroTranscoder(type, format) ?? null));
  return transcode ?? undefined;
}

/** The TabSeparated transcoder of `type` (see transcoderFor). */
export function avroToTsvFor(type: EventType): AvroToTsv | undefined {
  return transcoderFor(type, 'TabSeparated');
}

export function createAvroToTsv(type: EventType): AvroToTsv | undefined {
  return createAvroTranscoder(type, 'TabSeparated');
}

/**
 * One Avro type of the schemas: `read` reads it at `p` into `v` with the worker's checks (name
 * and bounds given); `tsv` and `rowBinary` write `v` (and may copy the bytes just read, from
 * `start`) in each format. RowBinary's column types are row-binary.ts's (`columnTypeOf`).
 */
interface Kind {
  read(name: string, bound: string): string;
  tsv: string;
  rowBinary: string;
}

const KINDS = {
  string: { read: (n) => `v = readStringEnd(${n});`, tsv: `copyString(p, v);`, rowBinary: `writeVarUInt(v - p); copyBytes(p, v); p = v;` },
  uuid: { read: (n) => `v = readUuid(${n});`, tsv: `copyBytes(p - 36, p);`, rowBinary: `writeUuid(p - 36);` },
  boolean: { read: () => `v = src[p++];`, tsv: `writeAscii(v ? 'true' : 'false');`, rowBinary: `out[o++] = v ? 1 : 0;` },
  int: { read: (n, b) => `v = readLong(); if (v < -2147483648 || v > 2147483647) fail(${n}, 'int beyond 32 bits');${b}`, tsv: `writeInt(v);`, rowBinary: `writeInt32(v);` },
  uint8: { read: (n, b) => `v = readLong(); if (v < -2147483648 || v > 2147483647) fail(${n}, 'int beyond 32 bits');${b}`, tsv: `writeInt(v);`, rowBinary: `out[o++] = v;` },
  long: { read: (_, b) => `v = readLong();${b}`, tsv: `writeInt(v);`, rowBinary: `writeInt64(v);` },
  float: { read: (n, b) => `start = p; v = src.readFloatLE(p); p += 4; if (!Number.isFinite(v)) fail(${n}, 'not finite');${b}`, tsv: `writeAscii('' + v);`, rowBinary: `copyBytes(start, p);` },
  double: { read: (n, b) => `start = p; v = src.readDoubleLE(p); p += 8; if (!Number.isFinite(v)) fail(${n}, 'not finite');${b}`, tsv: `writeAscii('' + v);`, rowBinary: `copyBytes(start, p);` },
  timestamp: { read: (n) => `v = readLong(); if (v < 0) fail(${n}, 'negative timestamp');`, tsv: `writeSeconds(v);`, rowBinary: `writeInt64(v);` },
} satisfies Record<string, Kind>;

/** How each format writes a union's null, and the marker before a union's value. */
const NULLS: Record<BodyFormat, { isNull: string; notNull: string }> = {
  TabSeparated: { isNull: 'out[o++] = 92; out[o++] = 78;', notNull: '' },
  RowBinary: { isNull: 'out[o++] = 1;', notNull: 'out[o++] = 0;' },
};

/** Cell separator and row end of each format (the `_kafka_*` tail and the offset are written by the body). */
const SEPARATOR: Record<BodyFormat, string> = { TabSeparated: 'out[o++] = 9;', RowBinary: '' };

export function createAvroTranscoder(type: EventType, format: BodyFormat): AvroTranscoder | undefined {
  const lines: string[] = [];
  try {
    for (const field of type.schema.fields) {
      lines.push(fieldCode(field.type as AvroSchema, type.bounds?.[field.name], field.name, field.name === type.timestampField, format), SEPARATOR[format]);
    }
  } catch (err) {
    if (err instanceof UnsupportedType) return undefined;
    throw err;
  }
  const rowEnd =
    format === 'TabSeparated'
      ? `for (let i = 0; i < tail.length; i++) out[o++] = tail[i];
      writeInt(offset);
      out[o++] = 10;`
      : `for (let i = 0; i < tail.length; i++) out[o++] = tail[i];
      writeInt64(offset);`;
  // Field names come from our own schema definitions (JSON-quoted), never from input. The
  // sourceURL names this code in CPU profiles (bench/profile.ts), which would show it as builtins.
  const factory = new Function(
    'fingerprint',
    'magic0',
    'magic1',
    'isUtf8',
    `
    const HEX = new Int8Array(256).fill(-1);
    for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = i;
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
    function writeInt32(n) { out[o++] = n & 255; out[o++] = (n >> 8) & 255; out[o++] = (n >> 16) & 255; out[o++] = (n >> 24) & 255; }
    function writeInt64(n) {
      // two's complement of a safe integer: the low 32 bits, then the high (floor division keeps the sign)
      const hi = Math.floor(n / 4294967296);
      writeInt32((n - hi * 4294967296) | 0);
      writeInt32(hi | 0);
    }
    function writeVarUInt(n) { while (n >= 128) { out[o++] = (n & 127) | 128; n = Math.floor(n / 128); } out[o++] = n; }
    function copyBytes(from, to) {
      // Buffer#copy of a sub-range allocates a Uint8Array view per call: a loop is cheaper for short runs.
      if (to - from > 64) { src.copy(out, o, from, to); o += to - from; }
      else for (let i = from; i < to; i++) out[o++] = src[i];
    }
    /** Reads a string's length, checks its bytes are in the message and valid UTF-8; returns its end (p at its first byte). */
    function readStringEnd(field) {
      const len = readLong();
      const end = p + len;
      if (len < 0 || end > src.length) fail(field, 'string past the end of the message');
      let ascii = true;
      for (let i = p; i < end; i++) if (src[i] > 127) { ascii = false; break; }
      // avsc would replace invalid UTF-8 with U+FFFD; leave such strings to the object path.
      if (!ascii && !isUtf8(src.subarray(p, end))) fail(field, 'not UTF-8');
      return end;
    }
    /** Reads a lowercase UUID's text (the only form the fast path takes); p ends after it. */
    function readUuid(field) {
      const len = readLong();
      if (len !== 36 || p + 36 > src.length) fail(field, 'not a lowercase UUID');
      for (let i = 0; i < 36; i++) {
        const c = src[p + i];
        if (i === 8 || i === 13 || i === 18 || i === 23 ? c !== 45 : HEX[c] < 0) fail(field, 'not a lowercase UUID');
      }
      p += 36;
      return 0;
    }
    /** ClickHouse's UUID in RowBinary: the first 8 bytes of the text form reversed, then the last 8 reversed. */
    const UUID_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    function writeUuid(at) {
      for (let j = 0; j < 16; j++) {
        const c = at + UUID_AT[j];
        out[o + (j < 8 ? 7 - j : 23 - j)] = (HEX[src[c]] << 4) | HEX[src[c + 1]];
      }
      o += 16;
    }
    /** TabSeparated: the string at p..end with backslash, tab, newline, CR and NUL escaped. */
    function copyString(from, end) {
      for (let i = from; i < end; i++) {
        const c = src[i];
        if (c === 92 || c === 9 || c === 10 || c === 13 || c === 0) {
          copyBytes(from, i);
          for (; i < end; i++) {
            const d = src[i];
            if (d === 92) { out[o++] = 92; out[o++] = 92; }
            else if (d === 9) { out[o++] = 92; out[o++] = 116; }
            else if (d === 10) { out[o++] = 92; out[o++] = 110; }
            else if (d === 13) { out[o++] = 92; out[o++] = 114; }
            else if (d === 0) { out[o++] = 92; out[o++] = 48; }
            else out[o++] = d;
          }
          p = end; return;
        }
      }
      copyBytes(from, end);
      p = end;
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
      // The longest row per Avro byte: TabSeparated, a 4-byte float as up to 24 characters and a
      // tab; RowBinary, a one-byte long as 8 bytes.
      body.reserve(src.length * 8 + body.tail.length + 32);
      out = body.buf; o = body.pos; p = 10;
      let v, start, ts = NaN;
      ${lines.join('\n      ')}
      if (p !== src.length) fail('(record)', p < src.length ? 'trailing bytes' : 'truncated');
      const tail = body.tail;
      ${rowEnd}
      // Writes past the end of a Buffer are dropped silently: never let one through.
      if (o > out.length) fail('(record)', 'row longer than reserved');
      body.pos = o;
      return ts;
    };
    //# sourceURL=generated:consumers/avro-to-tsv.ts/${type.name}/${format}`,
  );
  return factory(type.fingerprint, SINGLE_OBJECT_MAGIC[0], SINGLE_OBJECT_MAGIC[1], isUtf8) as AvroTranscoder;
}

class UnsupportedType extends Error {}

/** The KINDS entry of a (non-union) Avro type, or UnsupportedType. */
function kindOf(schema: AvroSchema, bounds: readonly [number, number] | undefined): Kind {
  if (typeof schema === 'object' && !Array.isArray(schema) && 'logicalType' in schema) {
    if (schema.logicalType === 'timestamp-millis') return KINDS.timestamp;
    if (schema.logicalType === 'uuid') return KINDS.uuid;
    return kindOf(schema.type as AvroSchema, bounds);
  }
  switch (schema) {
    case 'string':
    case 'boolean':
    case 'long':
    case 'float':
    case 'double':
      return KINDS[schema];
    case 'int':
      // 0/1 flags and other small bounded ints are UInt8 columns (row-binary.ts's columnTypeOf).
      return bounds && bounds[0] >= 0 && bounds[1] <= 255 ? KINDS.uint8 : KINDS.int;
    default:
      throw new UnsupportedType();
  }
}

/** Statements that read one field of `schema` at `p` and write its cell at `o`. */
function fieldCode(schema: AvroSchema, bounds: readonly [number, number] | undefined, fieldName: string, isTimestamp: boolean, format: BodyFormat): string {
  const name = JSON.stringify(fieldName);
  if (Array.isArray(schema)) {
    const nullIndex = schema.indexOf('null');
    const branch = schema.find((s) => s !== 'null');
    if (schema.length !== 2 || nullIndex < 0 || branch === undefined) throw new UnsupportedType();
    const other = 1 - nullIndex;
    const nulls = NULLS[format];
    return `v = readLong(); if (v === ${nullIndex}) { ${nulls.isNull} } else if (v === ${other}) { ${nulls.notNull} ${fieldCode(branch as AvroSchema, bounds, fieldName, isTimestamp, format)} } else fail(${name}, 'union branch out of range');`;
  }
  const kind = kindOf(schema, bounds);
  const bound = bounds ? ` if (v < ${bounds[0]} || v > ${bounds[1]}) fail(${name}, 'out of bounds');` : '';
  const ts = isTimestamp && kind === KINDS.timestamp ? ' ts = v;' : '';
  return `${kind.read(name, bound)}${ts} ${format === 'TabSeparated' ? kind.tsv : kind.rowBinary}`;
}
