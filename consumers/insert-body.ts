import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { escapeTsv, rowEncoderFor, type RowEncoder } from './row-encoder.js';
import { BinaryWriter, rowBinaryCodecFor } from './row-binary.js';
import type { EncodedRows, InsertBatch } from './types.js';

/**
 * The insert body's format. RowBinary where the engine takes it (the embedded engine: a third
 * of TabSeparated's parse cost, BENCHMARKS.md), TabSeparated otherwise (@clickhouse/client
 * sends raw bodies in text formats only).
 */
export type BodyFormat = 'TabSeparated' | 'RowBinary';

const MIN_CHUNK = 64 * 1024;
const MAX_CHUNK = 64 * 1024 * 1024;

/**
 * The insert body of one open batch (one topic-partition), written a row at a time as messages
 * arrive: TabSeparated lines or RowBinary rows, `_kafka_*` columns included, straight into Buffers.
 *
 * Why: the worker used to keep one decoded object per row and build the body as one JS string
 * at insert time; holding 50,000 objects per partition and turning them into text made GC and
 * string work the largest items of its profile (BENCHMARKS.md). A row here costs its line and
 * three array slots; no object per row outlives the fetch. A row ClickHouse refuses is read back
 * from its bytes (RowEncoder.decode, RowBinaryCodec.decode) to be dead-lettered.
 *
 * The first Buffer is sized from a hint (the partition's last body, see batch-stage.ts), so a
 * batch usually fits in it and `finish` copies nothing; unwritten capacity costs address space,
 * not resident memory. Rows never straddle Buffers (`reserve` is called before a row is
 * written), so a row that fails half-way is dropped by not advancing `pos`.
 */
export class InsertBody {
  /** The constant part of every row's `_kafka_*` columns: `topic \t partition \t` in TabSeparated. */
  readonly tail: Buffer;
  /** The Buffer being written and the write position in it: writers fill buf[pos…] after `reserve`. */
  buf: Buffer;
  pos = 0;
  /** Filled Buffers before `buf`, and their total bytes. */
  private readonly full: Buffer[] = [];
  private done = 0;
  private readonly ends: number[] = [];
  private readonly offsets: number[] = [];
  private readonly timestamps: number[] = [];

  constructor(
    readonly topic: string,
    readonly partition: number,
    sizeHint = 0,
    readonly format: BodyFormat = 'TabSeparated',
  ) {
    if (format === 'TabSeparated') this.tail = Buffer.from(`${escapeTsv(topic)}\t${partition}\t`);
    else {
      const w = new BinaryWriter(topic.length * 3 + 16);
      w.string(topic);
      w.uint32(partition);
      this.tail = Buffer.from(w.take());
    }
    this.buf = Buffer.allocUnsafe(Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, sizeHint)));
  }

  get count(): number {
    return this.ends.length;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.done + this.pos;
  }

  /** Makes room for a row of up to `n` bytes. Call only between rows. */
  reserve(n: number): void {
    if (this.buf.length - this.pos >= n) return;
    if (this.pos > 0) {
      this.full.push(this.buf.subarray(0, this.pos));
      this.done += this.pos;
    }
    this.buf = Buffer.allocUnsafe(Math.max(n, Math.min(MAX_CHUNK, this.buf.length * 2)));
    this.pos = 0;
  }

  /** Writes a row already rendered as TabSeparated text. */
  writeText(line: string): void {
    if (this.format !== 'TabSeparated') throw new Error(`insert-body: a text line in a ${this.format} body`);
    const n = Buffer.byteLength(line);
    this.reserve(n);
    this.buf.write(line, this.pos);
    this.pos += n;
  }

  /** Writes a decoded record's row (the object path: row-encoder.ts, row-binary.ts). */
  writeRecord(type: EventType, record: Record<string, unknown>, offset: number): void {
    if (this.format === 'TabSeparated') {
      this.writeText(rowEncoderFor(type).encode({ topic: this.topic, partition: this.partition, rows: [{ offset, record, bytes: 0 }] }));
      return;
    }
    const w = new BinaryWriter(256);
    rowBinaryCodecFor(type).writeRow(w, record, this.tail, offset);
    const row = w.take();
    this.reserve(row.length);
    this.buf.set(row, this.pos);
    this.pos += row.length;
  }

  /** Closes the row just written: its offset and its event time (epoch ms, NaN when unknown). */
  endRow(offset: number, timestamp: number): void {
    this.ends.push(this.length);
    this.offsets.push(offset);
    this.timestamps.push(timestamp);
  }

  finish(): EncodedRows {
    const last = this.buf.subarray(0, this.pos);
    return {
      topic: this.topic,
      partition: this.partition,
      format: this.format,
      body: this.full.length === 0 ? last : Buffer.concat([...this.full, last], this.length),
      count: this.ends.length,
      ends: this.ends,
      offsets: this.offsets,
      timestamps: this.timestamps,
    };
  }
}

/** Rows `from` (inclusive) to `to` (exclusive) of `rows`, sharing their memory. */
export function sliceRows(rows: EncodedRows, from: number, to: number): EncodedRows {
  const start = from === 0 ? 0 : rows.ends[from - 1]!;
  return {
    topic: rows.topic,
    partition: rows.partition,
    format: rows.format,
    body: rows.body.subarray(start, to === 0 ? 0 : rows.ends[to - 1]!),
    count: to - from,
    ends: rows.ends.slice(from, to).map((e) => e - start),
    offsets: rows.offsets.slice(from, to),
    timestamps: rows.timestamps.slice(from, to),
  };
}

/** Decoded rows (from a dead-letter job) as a TabSeparated insert body, through the row encoder. */
export function encodeRecords(encoder: RowEncoder, timestampField: string, batch: InsertBatch): EncodedRows {
  const body = Buffer.from(encoder.encode(batch), 'utf8');
  // Every line ends in a raw newline; newlines inside values are escaped ("\n" as two bytes).
  const ends: number[] = [];
  for (let at = body.indexOf(10); at >= 0; at = body.indexOf(10, at + 1)) ends.push(at + 1);
  return {
    topic: batch.topic,
    partition: batch.partition,
    format: 'TabSeparated',
    body,
    count: batch.rows.length,
    ends,
    offsets: batch.rows.map((r) => r.offset),
    timestamps: batch.rows.map((r) => (typeof r.record[timestampField] === 'number' ? (r.record[timestampField] as number) : Number.NaN)),
  };
}
