import type { ClickHouseClient } from '@clickhouse/client';
import { openClickHouse } from '../../lib/clickhouse.js';
import { queryRows } from './stack.js';

/** A client on `database` of the embedded engine at `dataPath`. */
export function openDb(dataPath: string, database: string): Promise<ClickHouseClient> {
  return openClickHouse({ dataPath, database, requestTimeoutMs: 120_000 });
}

/**
 * A client whose `command` calls are recorded (query text), so a test can count the statements
 * a runner issued. Everything else goes to the real client.
 */
export function recordingClient(inner: ClickHouseClient): { client: ClickHouseClient; commands: string[] } {
  const commands: string[] = [];
  const client = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'command') {
        return (params: Parameters<ClickHouseClient['command']>[0]) => {
          commands.push(params.query);
          return target.command(params);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { client, commands };
}

/** Tables, engines, create statements and columns of the client's current database (database name replaced by DB). */
export async function schemaOf(client: ClickHouseClient): Promise<{ tables: unknown[]; columns: unknown[] }> {
  const tables = await queryRows(
    client,
    `SELECT name, engine, replaceRegexpAll(create_table_query, concat('\\\\b', currentDatabase(), '\\\\.'), 'DB.') AS ddl
     FROM system.tables WHERE database = currentDatabase() ORDER BY name`,
  );
  const columns = await queryRows(
    client,
    'SELECT table, name, type, default_kind, default_expression, compression_codec, position FROM system.columns WHERE database = currentDatabase() ORDER BY table, position',
  );
  return { tables, columns };
}

/** Every row of evolution_run_updates and of the evolution_runs view, in a fixed order. */
export async function evolutionRowsOf(client: ClickHouseClient): Promise<{ updates: unknown[]; runs: unknown[] }> {
  const updates = await queryRows(client, 'SELECT * FROM evolution_run_updates ORDER BY run_id, event_time, _kafka_offset, status');
  const runs = await queryRows(client, 'SELECT * FROM evolution_runs ORDER BY run_id');
  return { updates, runs };
}

/**
 * Rows as a worker of the release before 0008 writes them: into evolution_run_events, one row per
 * run (run-<i>, Kafka offset offsetBase + i): odd runs completed, even runs still running, with
 * NULLs where nothing is known yet. One row per run, because that table is a CoalescingMergeTree:
 * rows of one run in one insert are coalesced on insert (optimize_on_insert).
 */
export async function insertLegacyRuns(client: ClickHouseClient, from: number, count: number, offsetBase = 0): Promise<void> {
  const values: string[] = [];
  for (let i = from; i < from + count; i++) {
    const done = i % 2 === 1;
    values.push(
      `('run-${i}', '2026-01-01 00:01:00.000', '2026-01-01 00:00:00.000', ${done ? "'2026-01-01 00:01:00.000'" : 'NULL'}, 'task', '{}', '${done ? 'completed' : 'running'}', ${done ? 5 : 'NULL'}, 10, NULL, '/db', 'ingest.evolution_runs', 0, ${offsetBase + i})`,
    );
  }
  await client.command({
    query: `INSERT INTO evolution_run_events (run_id, event_time, start_time, end_time, task_name, config, status, total_generations, population_size, cluster_type, database_path, _kafka_topic, _kafka_partition, _kafka_offset) VALUES ${values.join(', ')}`,
  });
}
