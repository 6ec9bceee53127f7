import type { AvroSchema } from '@kafka-clickhouse-ingest/producer/schemas/avro-types.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { KAFKA_COLUMNS } from './row-encoder.js';
import type { InsertBatch } from './types.js';

/**
 * ClickHouse's RowBinary for our tables, driven by one table of the Avro types the schemas use.
 *
 * RowBinary is a row's values one after another in the columns' binary layout, with no
 * separators and no escaping: Float64 and Int32 as their little-endian bytes (Avro's double is
 * the same 8 bytes), String as an unsigned LEB128 length and the bytes (Avro: a zigzag varint
 * length and the same bytes), UUID as 16 bytes (the two 64-bit halves, each little-endian),
 * DateTime64(3) as Int64 milliseconds, Bool and UInt8 as one byte, Nullable(T) as a byte
 * (1 = NULL) before the value, LowCardinality(T) as T
 * (https://clickhouse.com/docs/interfaces/formats/RowBinary). The engine parses it without the
 * text parser's number and escape handling, and the worker writes it mostly by copying bytes.
 *
 * Unlike a text format, RowBinary carries no types: the bytes must match each column's type
 * exactly. `columnTypeOf` derives the column type from the Avro type the way the migrations
 * declare it (an int bounded within 0..255 is a UInt8 flag), and an integration test compares
 * it with the migrated tables, so a migration that changes a type fails there and not at insert.
 */
export type ColumnType = 'String' | 'UUID' | 'Bool' | 'UInt8' | 'Int32' | 'Int64' | 'Float32' | 'Float64' | "DateTime64(3, 'UTC')" | `Nullable(${string})`;

/** One Avro type of the schemas: its column type and its RowBinary codecs for the object path. */
interface BinaryKind {
  readonly column: ColumnType;
  /** Writes the decoded value (as avsc and checkEventRecord produce it). */
  write(w: BinaryWriter, v: unknown): void;
  /** Reads it back, the inverse of write. */
  read(r: BinaryReader): unknown;
}

/** The RowBinary column type of a field (LowCardinality is a storage detail, the same bytes). */
export function columnTypeOf(schema: AvroSchema, bounds?: readonly [number, number]): ColumnType {
  return kindOf(schema, bounds).column;
}

/** The one switch over Avro types for RowBinary; the fast path (avro-to-tsv.ts) follows the same column types. */
function kindOf(schema: AvroSchema, bounds: readonly [number, number] | undefined): BinaryKind {
  if (Array.isArray(schema)) {
    const branch = schema.find((s) => s !== 'null');
    if (schema.length !== 2 || !schema.includes('null') || branch === undefined) throw new Error(`row-binary: no RowBinary encoding for the union ${JSON.stringify(schema)}`);
    const inner = kindOf(branch as AvroSchema, bounds);
    return {
      column: `Nullable(${inner.column})`,
      write: (w, v) => {
        if (v === null || v === undefined) w.byte(1);
        else {
          w.byte(0);
          inner.write(w, v);
        }
      },
      read: (r) => (r.byte() === 1 ? null : inner.read(r)),
    };
  }
  if (typeof schema === 'object' && 'logicalType' in schema) {
    if (schema.logicalType === 'timestamp-millis') return { column: "DateTime64(3, 'UTC')", write: (w, v) => w.int64(v as number), read: (r) => r.int64() };
    if (schema.logicalType === 'uuid') return { column: 'UUID', write: (w, v) => w.uuid(v as string), read: (r) => r.uuid() };
    return kindOf(schema.type as AvroSchema, bounds);
  }
  switch (schema) {
    case 'string':
      return { column: 'String', write: (w, v) => w.string(v as string), read: (r) => r.string() };
    case 'boolean':
      return { column: 'Bool', write: (w, v) => w.byte(v ? 1 : 0), read: (r) => r.byte() !== 0 };
    case 'int':
      if (bounds && bounds[0] >= 0 && bounds[1] <= 255) return { column: 'UInt8', write: (w, v) => w.byte(v as number), read: (r) => r.byte() };
      return { column: 'Int32', write: (w, v) => w.int32(v as number), read: (r) => r.int32() };
    case 'long':
      return { column: 'Int64', write: (w, v) => w.int64(v as number), read: (r) => r.int64() };
    case 'float':
      return { column: 'Float32', write: (w, v) => w.float32(v as number), read: (r) => r.float32() };
    case 'double':
      return { column: 'Float64', write: (w, v) => w.float64(v as number), read: (r) => r.float64() };
    default:
      throw new Error(`row-binary: no RowBinary encoding for Avro type ${JSON.stringify(schema)}`);
  }
}

/** The `_kafka_*` columns' types, as in every migration. */
export const KAFKA_COLUMN_TYPES = ['String', 'UInt32', 'UInt64'] as const;

/** A growable buffer for the object path (dead-letter replays, the fallback of the fast path). */
export class BinaryWriter {
  buf: Buffer;
  pos = 0;
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  int32(v: number): void {
    this.room(4);
    this.pos = this.buf.writeInt32LE(v, this.pos);
  }
  uint32(v: number): void {
    this.room(4);
    this.pos = this.buf.writeUInt32LE(v, this.pos);
  }
  int64(v: number): void {
    this.room(8);
    this.pos = this.buf.writeBigInt64LE(BigInt(v), this.pos);
  }
  uint64(v: number): void {
    this.room(8);
    this.pos = this.buf.writeBigUInt64LE(BigInt(v), this.pos);
  }
  float32(v: number): void {
    this.room(4);
    this.pos = this.buf.writeFloatLE(v, this.pos);
  }
  float64(v: number): void {
    this.room(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }
  varUInt(n: number): void {
    this.room(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }
  string(s: string): void {
    const n = Buffer.byteLength(s);
    this.varUInt(n);
    this.room(n);
    this.pos += this.buf.write(s, this.pos);
  }
  /** ClickHouse's UUID: the first 8 bytes of the text form reversed, then the last 8 reversed. */
  uuid(s: string): void {
    const hex = s.replace(/-/g, '');
    if (hex.length !== 32 || !/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`row-binary: not a UUID: ${JSON.stringify(s)}`);
    this.room(16);
    for (let i = 0; i < 8; i++) this.buf[this.pos + 7 - i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    for (let i = 0; i < 8; i++) this.buf[this.pos + 15 - i] = parseInt(hex.slice(16 + i * 2, 18 + i * 2), 16);
    this.pos += 16;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  take(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class BinaryReader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.end) throw new Error('row-binary: row truncated');
  }
  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  int64(): number {
    this.need(8);
    const v = Number(this.buf.readBigInt64LE(this.pos));
    this.pos += 8;
    return v;
  }
  uint64(): number {
    this.need(8);
    const v = Number(this.buf.readBigUInt64LE(this.pos));
    this.pos += 8;
    return v;
  }
  float32(): number {
    this.need(4);
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }
  float64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  varUInt(): number {
    let n = 0;
    let shift = 1;
    let b: number;
    do {
      b = this.byte();
      n += (b & 0x7f) * shift;
      shift *= 128;
    } while (b & 0x80);
    return n;
  }
  string(): string {
    const n = this.varUInt();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  uuid(): string {
    this.need(16);
    let hex = '';
    for (let i = 7; i >= 0; i--) hex += this.buf[this.pos + i]!.toString(16).padStart(2, '0');
    for (let i = 15; i >= 8; i--) hex += this.buf[this.pos + i]!.toString(16).padStart(2, '0');
    this.pos += 16;
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

/** RowBinary rows of one event type, the object path: what the fast path writes, from decoded records. */
export interface RowBinaryCodec {
  readonly columns: readonly string[];
  /** Column types in the order of `columns`, `_kafka_*` included. */
  readonly columnTypes: readonly string[];
  /** The `_kafka_*` topic and partition cells, constant per batch. */
  tail(topic: string, partition: number): Buffer;
  /** Writes one row (the record, then `tail`, then the offset). */
  writeRow(w: BinaryWriter, record: Record<string, unknown>, tail: Buffer, offset: number): void;
  encode(batch: InsertBatch): Buffer;
  /** Reads the row in buf[start, end) back into its record (the `_kafka_*` cells are checked, not returned). */
  decode(buf: Buffer, start: number, end: number): Record<string, unknown>;
}

const codecs = new WeakMap<EventType, RowBinaryCodec>();

export function rowBinaryCodecFor(type: EventType): RowBinaryCodec {
  let codec = codecs.get(type);
  if (!codec) codecs.set(type, (codec = createRowBinaryCodec(type)));
  return codec;
}

export function createRowBinaryCodec(type: EventType): RowBinaryCodec {
  const fields = type.schema.fields.map((f) => ({ name: f.name, kind: kindOf(f.type as AvroSchema, type.bounds?.[f.name]) }));
  const tail = (topic: string, partition: number): Buffer => {
    const w = new BinaryWriter(topic.length * 3 + 16);
    w.string(topic);
    w.uint32(partition);
    return Buffer.from(w.take());
  };
  const writeRow = (w: BinaryWriter, record: Record<string, unknown>, t: Buffer, offset: number): void => {
    for (const f of fields) f.kind.write(w, record[f.name]);
    w.bytes(t);
    w.uint64(offset);
  };
  return {
    columns: [...type.fieldNames, ...KAFKA_COLUMNS],
    columnTypes: [...fields.map((f) => f.kind.column), ...KAFKA_COLUMN_TYPES],
    tail,
    writeRow,
    encode(batch) {
      const w = new BinaryWriter(Math.max(256, batch.rows.length * 128));
      const t = tail(batch.topic, batch.partition);
      for (const row of batch.rows) writeRow(w, row.record, t, row.offset);
      return w.take();
    },
    decode(buf, start, end) {
      const r = new BinaryReader(buf, start, end);
      const record: Record<string, unknown> = {};
      for (const f of fields) record[f.name] = f.kind.read(r);
      r.string();
      r.uint32();
      r.uint64();
      if (r.pos !== end) throw new Error(`row-binary: a ${type.name} row has ${end - r.pos} bytes after its last column`);
      return record;
    },
  };
}

/** RowBinary's bytes of a column type: LowCardinality is storage, its values are its inner type's. */
export function wireTypeOf(columnType: string): string {
  return columnType.replace(/^LowCardinality\((.*)\)$/, '$1').replace(/^Nullable\(LowCardinality\((.*)\)\)$/, 'Nullable($1)');
}

/**
 * The RowBinaryWithNamesAndTypes header of `codec`'s columns with the table's exact types
 * (`tableTypes`: name → type), or undefined when a column is missing or its type's bytes are not
 * the ones the codec writes. ClickHouse checks the header's types against the table's.
 */
export function rowBinaryHeader(codec: Pick<RowBinaryCodec, 'columns' | 'columnTypes'>, tableTypes: ReadonlyMap<string, string>): Buffer | undefined {
  const w = new BinaryWriter(1024);
  w.varUInt(codec.columns.length);
  for (const c of codec.columns) w.string(c);
  for (let i = 0; i < codec.columns.length; i++) {
    const t = tableTypes.get(codec.columns[i]!);
    if (t === undefined || wireTypeOf(t) !== codec.columnTypes[i]) return undefined;
    w.string(t);
  }
  return Buffer.from(w.take());
}
