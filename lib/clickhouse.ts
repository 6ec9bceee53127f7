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
  embedded.set(client, { connection, database: config.database });
  return client;
}

const embedded = new WeakMap<ClickHouseClient, { connection: ChdbConnection; database: string }>();

/** Text formats the embedded engine takes as a raw buffer (no copy into a query string). */
export type RawInsert = (params: { table: string; columns: readonly string[]; format: 'TabSeparated'; body: Buffer; settings: Record<string, string | number> }) => Promise<RawInsertSummary>;

/**
 * What the engine reports of a raw insert. `rowsWritten` is its written-rows progress, the
 * same figure as a server's X-ClickHouse-Summary `written_rows`: 0 for an insert dropped as a
 * repeat of its deduplication token, and it includes rows written by materialized views.
 */
export interface RawInsertSummary {
  readonly rowsWritten: number;
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
  return async ({ table, columns, format, body, settings }) => {
    const summary = await e.connection.chdb.rawInsert({ table: `${e.database}.${table}`, columns, format, values: body, settings });
    return { rowsWritten: summary.rowsWritten };
  };
}

