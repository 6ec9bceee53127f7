import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { rawInsertOf } from '../lib/clickhouse.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { rowEncoderFor } from './row-encoder.js';
import { encodeRecords, type BodyFormat } from './insert-body.js';
import { decodedRows } from './letter-rows.js';
import { rowBinaryCodecFor, rowBinaryHeader } from './row-binary.js';
import { clickHouseCodeOf, RetriableError } from '../lib/errors.js';
import type { EncodedRows, InsertBatch } from './types.js';

/**
 * Inserts encoded rows into one table with a deduplication token; resolves with the rows
 * ClickHouse wrote (0 when it dropped the insert as a repeat of the same token), throws what
 * ClickHouse threw.
 */
export type RowInserter = (table: string, rows: EncodedRows, token: string) => Promise<number>;

/** Inserts decoded rows (dead-letter jobs): encodes them, then inserts through `insert`. */
export type RecordInserter = (table: string, rows: InsertBatch, token: string) => Promise<void>;

/**
 * Encoded rows whose insert may repeat an earlier one with the same token (a re-formed range,
 * a retry after a failure that may have landed, a bisection's halves), marked by InsertStage for
 * the inserter: on the embedded engine, finding out whether ClickHouse dropped a repeat costs
 * two queries and one-at-a-time inserts (see rawInsertOf), so only these pay it. A side table
 * rather than a parameter, so the rows carry the mark through any RowInserter wrapper.
 */
export const mayRepeat = new WeakSet<EncodedRows>();

/**
 * Rows of this insert that ClickHouse wrote, from the engine's written-rows count. That count
 * includes rows the tables' materialized views wrote (X-ClickHouse-Summary and chDB's
 * rowsWritten both do), hence the cap at the rows sent: a repeated token writes 0 rows to the
 * table and to its views, a new one writes at least `sent`. Unknown (no summary): `sent`.
 */
export function writtenRows(sent: number, reported: number | string | undefined): number {
  const n = Number(reported);
  return reported === undefined || !Number.isFinite(n) ? sent : Math.max(0, Math.min(sent, n));
}

/**
 * The body format the worker writes for `client`: RowBinary on the embedded engine, whose raw
 * insert takes it (lib/clickhouse.ts) and parses it for a half to two thirds of TabSeparated's
 * CPU (BENCHMARKS.md); TabSeparated for a ClickHouse server, since @clickhouse/client sends raw
 * bodies in text formats only.
 */
export function bodyFormatOf(client: ClickHouseClient): BodyFormat {
  return rawInsertOf(client) ? 'RowBinary' : 'TabSeparated';
}

/**
 * Inserts bodies (see insert-body.ts; TabSeparated, or RowBinary on the embedded engine) into the
 * tables of the given event types, with the batch's deduplication token. Works the same against
 * a ClickHouse server and embedded chDB.
 */
export function clickHouseInserter(client: ClickHouseClient, eventTypes: readonly EventType[], extraSettings: Readonly<Record<string, number>> = {}): RowInserter {
  const columnsOf = new Map(eventTypes.map((t) => [t.table, rowEncoderFor(t).columns] as const));
  const typeOf = new Map(eventTypes.map((t) => [t.table, t] as const));
  const raw = rawInsertOf(client);
  /**
   * RowBinary carries no types, so a column whose type changed would be read from the wrong
   * bytes (a Float64 read as an Int64 is 8 bytes either way). So a RowBinary body goes with a
   * RowBinaryWithNamesAndTypes header naming each column with the table's exact type, which the
   * engine checks (INCORRECT_DATA on a mismatch, before any row), and only when every column's
   * type is the one the rows were written in (LowCardinality aside, the same bytes): else the
   * header is undefined and the rows go as TabSeparated. Read once per table from
   * system.columns, again after a mismatch, and every 30 s while a table is in the fallback.
   */
  const headers = new Map<string, { header: Promise<Buffer | undefined>; readAt: number; fallback?: boolean }>();
  const binaryHeader = (table: string, type: EventType): Promise<Buffer | undefined> => {
    const now = Date.now();
    let h = headers.get(table);
    // A table in the TabSeparated fallback is read again every 30 s, so a fixed table goes back to RowBinary.
    if (!h || (h.fallback && now - h.readAt > 30_000)) {
      const entry: { header: Promise<Buffer | undefined>; readAt: number; fallback?: boolean } = { header: tableColumnTypes(client, table).then((types) => rowBinaryHeader(rowBinaryCodecFor(type), types)), readAt: now };
      entry.header.then(
        (hd) => (entry.fallback = hd === undefined),
        () => headers.delete(table),
      );
      headers.set(table, (h = entry));
    }
    return h.header;
  };
  return async (table, rows, token) => {
    const columns = columnsOf.get(table);
    if (!columns) throw new Error(`no event type inserts into table ${table}`);
    const body = rows.body;
    const settings = {
      // Same token, same batch: ClickHouse ignores the repeat (needs the table's
      // non_replicated_deduplication_window, or replicated tables' default window).
      insert_deduplicate: 1,
      insert_deduplication_token: token,
      // The hourly rollups deduplicate with their source, each with its own window
      // (sql/migrations/0010): a retry after a failed view write lands in the rollup once.
      deduplicate_blocks_in_dependent_materialized_views: 1,
      // Make the insert synchronous and durable before we commit the offsets.
      async_insert: 0,
      // The worker validated every value; never let ClickHouse skip or default rows silently.
      input_format_allow_errors_num: 0,
      input_format_allow_errors_ratio: 0,
      // Sharded layout: DISTRIBUTED_INSERT_SETTINGS (sql/ddl.ts), so the insert returns only once
      // every shard has its rows and the offset commit after it covers nothing still queued.
      ...extraSettings,
    } as const;
    if (raw) {
      let sent = rows;
      let header: Buffer | undefined;
      if (rows.format === 'RowBinary') {
        const type = typeOf.get(table)!;
        header = await binaryHeader(table, type);
        // The table's columns are not the types the rows were written in (a migration changed
        // one): the rows go as TabSeparated, which the engine converts or refuses as data.
        if (!header) sent = encodeRecords(rowEncoderFor(type), type.timestampField, decodedRows(rows, type));
      }
      try {
        const summary = await raw({ table, columns, format: sent.format, body: sent.body, header, settings, mayRepeat: mayRepeat.has(rows) });
        return summary.deduplicated ? 0 : writtenRows(rows.count, summary.rowsWritten);
      } catch (err) {
        // "Type of 'x' must be …, not …": the table changed since its types were read. Read them
        // again at the next insert; this one is retried (the same rows, the same token).
        if (header && clickHouseCodeOf(err) === 117 && /while reading header/.test(String((err as Error).message))) {
          headers.delete(table);
          throw new RetriableError(`${table}: its column types changed; read again for the next attempt`, { cause: err });
        }
        throw err;
      }
    }
    if (rows.format !== 'TabSeparated') throw new Error(`a ${rows.format} body for a ClickHouse server, which takes TabSeparated here`);
    const result = await client.insert({
      table,
      columns: columns as [string, ...string[]],
      format: 'TabSeparated',
      values: new Readable({
        read() {
          this.push(body);
          this.push(null);
        },
      }),
      clickhouse_settings: { ...settings, input_format_allow_errors_num: '0' },
    });
    return writtenRows(rows.count, result.summary?.written_rows);
  };
}

/** Encodes decoded rows with the row encoder of their table before inserting them through `insert`. */
export function recordInserter(insert: RowInserter, eventTypes: readonly EventType[]): RecordInserter {
  const byTable = new Map(eventTypes.map((t) => [t.table, t] as const));
  return (table, rows, token) => {
    const type = byTable.get(table);
    if (!type) return Promise.reject(new Error(`no event type inserts into table ${table}`));
    return insert(table, encodeRecords(rowEncoderFor(type), type.timestampField, rows), token).then(() => undefined);
  };
}

/** Column name → type of a table of the client's current database. */
async function tableColumnTypes(client: ClickHouseClient, table: string): Promise<Map<string, string>> {
  const rs = await client.query({ query: 'SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String}', query_params: { table }, format: 'JSONEachRow' });
  return new Map((await rs.json<{ name: string; type: string }>()).map((c) => [c.name, c.type]));
}
