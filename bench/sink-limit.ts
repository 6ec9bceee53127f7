import { bodyFormatOf, clickHouseInserter } from '../consumers/clickhouse-inserter.js';
import { toLetterRows } from '../consumers/letter-rows.js';
import type { InsertBatch } from '../consumers/types.js';
import { batchToken, type DecodedRow } from '../consumers/types.js';
import { decodeMessage } from '../consumers/decode-stage.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { createRowEncoder } from '../consumers/row-encoder.js';
import { createRowBinaryCodec } from '../consumers/row-binary.js';
import { binaryInsertAt, openClickHouse } from '../lib/clickhouse.js';
import type { BenchClickHouse } from './bench-clickhouse.js';
import { round } from './common.js';

/**
 * Sink limit: the rows the worker inserts (decoded from the same encoded events, with the same
 * `_kafka_*` columns), inserted straight into the same engine and table layout (the project's
 * migrations, so the hourly rollup view runs too), in batches of the worker's batch.maxRows, with
 * insert.concurrency batches in flight, each with its deduplication token. No Kafka.
 *
 * Variants:
 * - workerInserter: the worker's own `clickHouseInserter`, in the format the worker sends on
 *   this engine (RowBinary from consumers/row-binary.ts on the embedded engine, TabSeparated
 *   from consumers/row-encoder.ts on a server). This is "the sink limit".
 * - rawTabSeparated / rawRowBinary / rawJsonEachRow: the body serialised beforehand (row
 *   encoder / RowBinary codec / one JSON.stringify per row) and handed to chDB's raw insert: the
 *   engine alone (parse, write parts, run the views), per format. RowBinary goes through the
 *   worker's binary raw insert (lib/clickhouse.ts), since chDB's JS raw insert takes text only.
 * - serialise: the JS side alone, rows/s of the row encoder and of JSON.stringify per row.
 * The insert rows are built once per distinct batch outside the timed region (decode is measured
 * by decodeLimit) and reused with fresh offsets' tokens.
 */
export interface RateFigures {
  seconds: number;
  rowsPerSec: number;
}

export interface SinkFigures {
  rows: number;
  batchRows: number;
  concurrency: number;
  /** Through the worker's inserter, in the body format the worker uses on this engine. */
  workerInserter: RateFigures & { counted: number; format: string };
  rawTabSeparated: (RateFigures & { counted: number }) | null;
  rawJsonEachRow: (RateFigures & { counted: number }) | null;
  rawRowBinary: (RateFigures & { counted: number; bytesPerRow: number }) | null;
  serialise: { tabSeparated: RateFigures & { mbPerSec: number }; jsonEachRow: RateFigures & { mbPerSec: number } };
}

const TOPIC = 'bench.sink';

export function buildBatches(encoded: readonly Buffer[], batchRows: number): InsertBatch[] {
  const lookup = new SchemaLookup([costMetrics]);
  const batches: InsertBatch[] = [];
  // Whole batches only, cycling the pool when it is not a multiple of the batch size.
  const rowsToBuild = Math.ceil(Math.max(encoded.length, batchRows) / batchRows) * batchRows;
  for (let first = 0; first < rowsToBuild; first += batchRows) {
    const rows: DecodedRow[] = [];
    for (let i = first; i < Math.min(rowsToBuild, first + batchRows); i++) {
      const value = encoded[i % encoded.length]!;
      rows.push({ offset: i, record: decodeMessage(lookup, costMetrics, value), bytes: value.length });
    }
    batches.push({ topic: TOPIC, partition: 0, rows });
  }
  return batches;
}

/** Runs `fn(batchIndex, firstRow, n)` for every batch of `total` rows, `concurrency` at a time. */
export async function forEachBatch(total: number, batchRows: number, concurrency: number, fn: (k: number, first: number, n: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const first = next;
        next += batchRows;
        if (first >= total) return;
        await fn(first / batchRows, first, Math.min(batchRows, total - first));
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

function timeSerialise(batches: readonly InsertBatch[], encode: (batch: InsertBatch) => string): { bodies: Buffer[]; figures: RateFigures & { mbPerSec: number } } {
  const started = performance.now();
  const texts = batches.map(encode);
  const seconds = (performance.now() - started) / 1000;
  const rows = batches.reduce((n, b) => n + b.rows.length, 0);
  const bytes = texts.reduce((n, t) => n + t.length, 0);
  return { bodies: texts.map((t) => Buffer.from(t)), figures: { seconds: round(seconds, 3), rowsPerSec: Math.round(rows / seconds), mbPerSec: round(bytes / 1e6 / seconds, 1) } };
}

export async function sinkLimit(opts: { ch: BenchClickHouse; id: string; encodedPool: readonly Buffer[]; total: number; batchRows: number; concurrency: number }): Promise<SinkFigures> {
  const { ch, total, batchRows, concurrency } = opts;
  const batches = buildBatches(opts.encodedPool, batchRows);
  const rowsOf = (k: number, n: number): InsertBatch => {
    const b = batches[k % batches.length]!;
    return n === b.rows.length ? b : { ...b, rows: b.rows.slice(0, n) };
  };
  const token = (first: number, n: number) => batchToken({ topic: TOPIC, partition: 0, firstOffset: first, lastOffset: first + n - 1, firstTimestamp: 0, lastTimestamp: 0 });
  const encoder = createRowEncoder(costMetrics);
  const tsv = timeSerialise(batches, (rows) => encoder.encode(rows));
  const json = timeSerialise(batches, (batch) => {
    let body = '';
    for (const row of toLetterRows(batch)) body += `${JSON.stringify(row)}\n`;
    return body;
  });

  const dbWorker = `${opts.id}_sink_worker`;
  const fresh = await ch.freshDatabase(dbWorker);
  // The worker's own client factory on the embedded engine (a session of its own at the bench's
  // data directory, which chDB allows), so the inserter takes the worker's raw-insert path and
  // body format. Before 2026-12-06 this step inserted through the bench's @clickhouse/client
  // connection (TabSeparated copied into a query string), slower than the worker's path.
  const client = ch.dataPath ? await openClickHouse({ dataPath: ch.dataPath, database: dbWorker, requestTimeoutMs: 120_000 }, { quiet: true }) : fresh;
  // Decoded rows in, as an application without Kafka has them: the row encoder's text as the
  // body, then the worker's inserter. Only the body is filled in: the inserter reads nothing else
  // (the per-row offsets and times of EncodedRows serve the worker's dead-letter path).
  // In the worker's format for this engine (RowBinary embedded, TabSeparated on a server).
  const inserter = clickHouseInserter(client, [costMetrics]);
  const format = bodyFormatOf(client);
  const codec = createRowBinaryCodec(costMetrics);
  const insert = (batch: InsertBatch, tok: string) =>
    inserter('cost_metrics_ts', { topic: batch.topic, partition: batch.partition, format, body: format === 'RowBinary' ? codec.encode(batch) : Buffer.from(encoder.encode(batch), 'utf8'), count: batch.rows.length, ends: [], offsets: [], timestamps: [] }, tok);
  const workerSeconds = await forEachBatch(total, batchRows, concurrency, (k, first, n) => insert(rowsOf(k, n), token(first, n)).then(() => undefined));
  const workerCounted = await ch.count(`${dbWorker}.cost_metrics_ts`);
  if (client !== fresh) await client.close();
  if (workerCounted !== total) throw new Error(`sink limit (worker inserter): expected ${total} rows, counted ${workerCounted}`);

  const raw = async (name: string, format: 'TabSeparated' | 'JSONEachRow', bodies: Buffer[], serialise: (batch: InsertBatch) => string, columns?: readonly string[]) => {
    if (!ch.connection) return null;
    const db = `${opts.id}_sink_${name}`;
    await ch.freshDatabase(db);
    const chdb = ch.connection.chdb;
    const seconds = await forEachBatch(total, batchRows, concurrency, async (k, first, n) => {
      const b = batches[k % batches.length]!;
      await chdb.rawInsert({
        table: `${db}.cost_metrics_ts`,
        values: n === b.rows.length ? bodies[k % bodies.length]! : Buffer.from(serialise({ ...b, rows: b.rows.slice(0, n) })),
        format,
        columns,
        // Explicit per insert: chdb/connection applies clickhouse_settings as session-level SET,
        // so the last client insert's token could otherwise still be in force here.
        settings: { insert_deduplicate: 1, insert_deduplication_token: token(first, n), deduplicate_blocks_in_dependent_materialized_views: 1, async_insert: 0 },
      });
    });
    const counted = await ch.count(`${db}.cost_metrics_ts`);
    if (counted !== total) throw new Error(`sink limit (raw ${format}): expected ${total} rows, counted ${counted}`);
    return { seconds: round(seconds, 2), rowsPerSec: Math.round(total / seconds), counted };
  };
  const rawTabSeparated = await raw('raw_tsv', 'TabSeparated', tsv.bodies, (rows) => encoder.encode(rows), encoder.columns);
  const rawRowBinary = await rawBinary(opts.id, ch, batches, { total, batchRows, concurrency, token });
  const rawJsonEachRow = await raw('raw_json', 'JSONEachRow', json.bodies, (batch) => toLetterRows(batch).map((r) => JSON.stringify(r)).join('\n'));

  return {
    rows: total,
    batchRows,
    concurrency,
    workerInserter: { seconds: round(workerSeconds, 2), rowsPerSec: Math.round(total / workerSeconds), counted: workerCounted, format },
    rawTabSeparated,
    rawJsonEachRow,
    rawRowBinary,
    serialise: { tabSeparated: tsv.figures, jsonEachRow: json.figures },
  };
}

/** The engine alone on RowBinary bodies made beforehand from the same rows, through the worker's binary raw insert. */
export async function rawBinary(id: string, ch: BenchClickHouse, batches: readonly InsertBatch[], o: { total: number; batchRows: number; concurrency: number; token: (first: number, n: number) => string }) {
  if (!ch.connection || !ch.dataPath) return null;
  const codec = createRowBinaryCodec(costMetrics);
  const bodies = batches.map((b) => Buffer.from(codec.encode(b)));
  const db = `${id}_sink_raw_rowbinary`;
  await ch.freshDatabase(db);
  const insert = binaryInsertAt(ch.dataPath);
  const seconds = await forEachBatch(o.total, o.batchRows, o.concurrency, async (k, first, n) => {
    const b = batches[k % batches.length]!;
    const body = n === b.rows.length ? bodies[k % bodies.length]! : codec.encode({ ...b, rows: b.rows.slice(0, n) });
    await insert(`${db}.cost_metrics_ts`, codec.columns, body, { insert_deduplicate: 1, insert_deduplication_token: o.token(first, n), deduplicate_blocks_in_dependent_materialized_views: 1, async_insert: 0 });
  });
  const counted = await ch.count(`${db}.cost_metrics_ts`);
  if (counted !== o.total) throw new Error(`sink limit (raw RowBinary): expected ${o.total} rows, counted ${counted}`);
  return { seconds: round(seconds, 2), rowsPerSec: Math.round(o.total / seconds), counted, bytesPerRow: round(bodies.reduce((n, b) => n + b.length, 0) / batches.reduce((n, b) => n + b.rows.length, 0), 1) };
}

/**
 * Decode limit: single-object header + avsc decode + validation (decodeMessage, exactly the
 * worker's decode stage minus batching) over `total` messages cycled from the encoded pool;
 * and avsc's decode alone.
 */
export function decodeLimit(encodedPool: readonly Buffer[], total: number) {
  const lookup = new SchemaLookup([costMetrics]);
  let t0 = performance.now();
  for (let i = 0; i < total; i++) decodeMessage(lookup, costMetrics, encodedPool[i % encodedPool.length]!);
  const full = (performance.now() - t0) / 1000;
  const entry = lookup.get(costMetrics.fingerprint.toString('hex'))!;
  t0 = performance.now();
  for (let i = 0; i < total; i++) entry.decode(encodedPool[i % encodedPool.length]!);
  const avscOnly = (performance.now() - t0) / 1000;
  return {
    messages: total,
    decodeAndValidate: { seconds: round(full, 3), rowsPerSec: Math.round(total / full) },
    avscOnly: { seconds: round(avscOnly, 3), rowsPerSec: Math.round(total / avscOnly) },
  };
}
