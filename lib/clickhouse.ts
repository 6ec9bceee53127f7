import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection, type ChdbConnection } from 'chdb/connection';
import type { Config } from './config.js';

/**
 * The one ClickHouse client factory. With `url` set it talks to that server over HTTP;
 * otherwise to the embedded chDB engine at `dataPath`, where rows survive restarts.
 * The embedded engine belongs to one process per data directory: run several
 * consumer-group members in that process (`consumer.concurrency`), or set CLICKHOUSE_URL
 * to run workers as separate processes.
 *
 * The database is created when missing and made the client's current database, so
 * unqualified table names (as in the seed documents' SQL) resolve to our tables.
 */
export async function openClickHouse(config: Config['clickhouse']): Promise<ClickHouseClient> {
  if (config.url) {
    const bootstrap = createClient({ url: config.url, request_timeout: config.requestTimeoutMs });
    try {
      await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.database}` });
    } finally {
      await bootstrap.close();
    }
    return createClient({
      url: config.url,
      database: config.database,
      request_timeout: config.requestTimeoutMs,
      compression: { request: false, response: true },
    });
  }
  const path = resolve(config.dataPath);
  mkdirSync(path, { recursive: true });
  const connection = createChdbConnection({ path });
  const client = createClient({
    connection,
    request_timeout: config.requestTimeoutMs,
  } as Parameters<typeof createClient>[0]);
  // chdb/connection ignores the client's `database` option; USE is kept by its session.
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.database}` });
  await client.command({ query: `USE ${config.database}` });
  embedded.set(client, { connection, database: config.database, repeats: Promise.resolve() });
  return client;
}

const embedded = new WeakMap<ClickHouseClient, { connection: ChdbConnection; database: string; repeats: Promise<void> }>();

/** Text formats the embedded engine takes as a raw buffer (no copy into a query string). */
export type RawInsert = (params: {
  table: string;
  columns: readonly string[];
  format: 'TabSeparated';
  body: Buffer;
  settings: Record<string, string | number>;
  /** The insert may repeat an earlier one (same token): find out whether ClickHouse dropped it (see below). */
  mayRepeat?: boolean;
}) => Promise<RawInsertSummary>;

/**
 * What the engine reports of a raw insert: `rowsWritten`, its written-rows progress (it
 * includes rows written by materialized views), and `deduplicated`, known only for an insert
 * passed with `mayRepeat`.
 */
export interface RawInsertSummary {
  readonly rowsWritten: number;
  readonly deduplicated?: boolean;
}

/**
 * Beware on the embedded engine: chdb/connection applies a call's `clickhouse_settings` as
 * session-level SETs that stay in force for later statements of that client (an
 * insert_deduplication_token would make later inserts look like repeats). The worker passes
 * insert settings only through the raw insert below, where they belong to one insert.
 *
 * For a client on the embedded engine: chDB's raw insert, which hands the buffer to the engine
 * without copying it into a query string (the @clickhouse/client path does): about 1.5x the
 * rows/s in the benchmark. Settings go with each insert. Undefined for a ClickHouse server.
 */
export function rawInsertOf(client: ClickHouseClient): RawInsert | undefined {
  const e = embedded.get(client);
  if (!e) return undefined;
  const insert = async (table: string, columns: readonly string[], format: 'TabSeparated', body: Buffer, settings: Record<string, string | number>) =>
    (await e.connection.chdb.rawInsert({ table: `${e.database}.${table}`, columns, format, values: body, settings })).rowsWritten;
  return async ({ table, columns, format, body, settings, mayRepeat }) => {
    if (!mayRepeat) return { rowsWritten: await insert(table, columns, format, body, settings) };
    // chDB's rowsWritten counts the rows of an insert ClickHouse dropped as a repeat of its
    // token as written (verified: the same token twice reports the same rowsWritten, the table
    // holds the rows once). The engine's DuplicatedInsertedBlocks event counter does move, so
    // an insert that may repeat (a re-formed range, a retry) reads it around the insert. Such
    // inserts run one at a time, so the counter's move is theirs: an insert that cannot repeat
    // (a fresh token) never adds to it. They are rare (after a crash, rebalance or failure).
    const run = e.repeats.then(async () => {
      const before = await duplicatedBlocks(e.connection);
      const rowsWritten = await insert(table, columns, format, body, settings);
      return { rowsWritten, deduplicated: (await duplicatedBlocks(e.connection)) > before };
    });
    e.repeats = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
}

async function duplicatedBlocks(connection: ChdbConnection): Promise<number> {
  const text = (await connection.chdb.queryAsync("SELECT value FROM system.events WHERE event = 'DuplicatedInsertedBlocks'", { format: 'TSV' })).text();
  return Number(text.trim() || 0);
}

