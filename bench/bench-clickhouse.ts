import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection, type ChdbConnection } from 'chdb/connection';
import { openClickHouse } from '../lib/clickhouse.js';
import { migrate } from '../sql/migrate.js';

/**
 * The bench process's own ClickHouse, for the sink limit and the native Kafka engine.
 * Embedded: one chDB session on its own data directory (chDB binds one data path per process;
 * the workers run as child processes with theirs). With CLICKHOUSE_URL: that server.
 * The connection is built here rather than with lib/clickhouse.ts so the sink-limit step can
 * also reach chDB's raw insert (`connection.chdb.rawInsert`).
 */
export class BenchClickHouse {
  private constructor(
    readonly client: ClickHouseClient,
    readonly connection: ChdbConnection | undefined,
    private readonly url: string | undefined,
    /** The embedded engine's data directory (undefined with CLICKHOUSE_URL). */
    readonly dataPath?: string,
  ) {}

  static open(dataPath: string): BenchClickHouse {
    const url = process.env.CLICKHOUSE_URL;
    if (url) return new BenchClickHouse(createClient({ url }), undefined, url);
    mkdirSync(dataPath, { recursive: true });
    const connection = createChdbConnection({ path: dataPath });
    const client = createClient({ connection } as Parameters<typeof createClient>[0]);
    return new BenchClickHouse(client, connection, undefined, resolve(dataPath));
  }

  get embedded(): boolean {
    return this.connection !== undefined;
  }

  /**
   * A fresh database with the project's migrations applied (same table layout as the worker's),
   * and a client whose unqualified table names resolve to it.
   */
  async freshDatabase(database: string): Promise<ClickHouseClient> {
    if (this.url) {
      const client = await openClickHouse({ url: this.url, database, dataPath: '', requestTimeoutMs: 60_000 });
      await migrate(client);
      return client;
    }
    await this.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    await this.client.command({ query: `USE ${database}` });
    await migrate(this.client);
    return this.client;
  }

  async count(table: string): Promise<number> {
    const rs = await this.client.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' });
    const [row] = await rs.json<{ n: string }>();
    return Number(row?.n ?? 0);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
