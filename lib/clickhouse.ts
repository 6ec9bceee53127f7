import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
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
  const client = createClient({
    connection: createChdbConnection({ path }),
    request_timeout: config.requestTimeoutMs,
  } as Parameters<typeof createClient>[0]);
  // chdb/connection ignores the client's `database` option; USE is kept by its session.
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.database}` });
  await client.command({ query: `USE ${config.database}` });
  return client;
}

/** True when the client talks to the embedded engine (one process per data directory). */
export function isEmbedded(config: Config['clickhouse']): boolean {
  return !config.url;
}
