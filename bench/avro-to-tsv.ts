import { createAvroToTsv, createAvroTranscoder } from '../consumers/avro-to-tsv.js';
import { createRowBinaryCodec } from '../consumers/row-binary.js';
import { InsertBody } from '../consumers/insert-body.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';

/**
 * Messages → insert body, the JS side of the worker's decode stage measured alone, both ways:
 * - direct: consumers/avro-to-tsv.ts, Avro bytes straight into the TabSeparated body (the
 *   worker's path since this benchmark showed it 2.4x faster);
 * - object path: avsc decode + checks into one object per row, then row-encoder.ts's text (the
 *   worker's path before, and still its fallback for messages the direct path is not sure of).
 */
export interface TranscodeFigures {
  rows: number;
  batchRows: number;
  /** The worker's former path (its fallback now): decode + check into objects, TSV text from the objects, text to a Buffer. */
  objectPath: { seconds: number; rowsPerSec: number };
  /** The worker's path: createAvroToTsv, message bytes straight into the body (InsertBody). */
  direct: { seconds: number; rowsPerSec: number };
  /** The worker's path on the embedded engine: the same messages straight into RowBinary bodies. */
  directRowBinary: { seconds: number; rowsPerSec: number };
  /** The two bodies of the first batch are byte-identical, in each format (checked before timing; else the step fails). */
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
  const transcodeOne = createAvroToTsv(type);
  if (!transcodeOne) throw new Error(`avro-to-tsv: no direct path for ${type.name}`);
  const transcode = (values: readonly Buffer[], first: number, t: string, partition: number): Buffer => {
    const body = new InsertBody(t, partition);
    for (let k = 0; k < values.length; k++) body.endRow(first + k, transcodeOne(values[k]!, first + k, body));
    return body.finish().body;
  };
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
  const toRowBinary = createAvroTranscoder(type, 'RowBinary')!;
  const transcodeBinary = (values: readonly Buffer[], f: number): Buffer => {
    const body = new InsertBody(topic, 0, 0, 'RowBinary');
    for (let k = 0; k < values.length; k++) body.endRow(f + k, toRowBinary(values[k]!, f + k, body));
    return body.finish().body;
  };
  const codec = createRowBinaryCodec(type);
  const binaryObjectWay = Buffer.from(codec.encode({ topic, partition: 0, rows: first.map((value, k) => ({ offset: k, record: opts.decode(value), bytes: value.length })) }));
  if (!binaryObjectWay.equals(transcodeBinary(first, 0))) throw new Error('avro-to-tsv: the RowBinary body differs from row-binary.ts\'s');
  const objectPath = time(objectWay);
  const direct = time((values, f) => transcode(values, f, topic, 0));
  const directRowBinary = time(transcodeBinary);
  return { rows: total, batchRows, objectPath, direct, directRowBinary, identical: true };
}
