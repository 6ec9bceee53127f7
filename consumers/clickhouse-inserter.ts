import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { rawInsertOf } from '../lib/clickhouse.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { rowEncoderFor } from './row-encoder.js';
import { encodeRecords, type BodyFormat } from './insert-body.js';
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
  const raw = rawInsertOf(client);
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
      const summary = await raw({ table, columns, format: rows.format, body, settings, mayRepeat: mayRepeat.has(rows) });
      return summary.deduplicated ? 0 : writtenRows(rows.count, summary.rowsWritten);
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
