import type { ClickHouseClient } from '@clickhouse/client';
import { renderStatement, storageName, type TableLayout } from './ddl.js';

/** Days to keep rows of the log tables; 0 or undefined keeps them forever (no TTL). */
export interface RetentionOptions {
  llmLogsDays?: number;
  agentActionsDays?: number;
}

export class RetentionError extends Error {
  override readonly name = 'RetentionError';
}

/** Largest accepted retention: 100 years. */
const MAX_DAYS = 36_500;

/**
 * Sets (MODIFY TTL) or removes (REMOVE TTL) the row TTL of `llm_logs` and `agent_actions`, as
 * evolution-tables.md ("Data Retention") suggests. The evolution tables themselves are kept forever.
 * Validates every number before issuing any statement, so a bad option changes nothing.
 * Issues an ALTER only when the table's current TTL (system.tables engine_full) differs from the
 * wanted one: every worker calls this at start, and a MODIFY TTL is not free (it is a metadata
 * change on every replica and, with materialize_ttl_after_modify, a mutation rewriting parts).
 * The day count is interpolated into the DDL (ALTER does not take query parameters); it is
 * checked to be an integer first, so nothing else can reach the statement.
 * ClickHouse applies a new TTL to existing parts in a background mutation
 * (materialize_ttl_after_modify); rows past it disappear at the next merge, not immediately.
 * In a cluster layout the ALTER runs ON CLUSTER on the tables that store the rows (sql/ddl.ts).
 */
export async function applyRetention(client: ClickHouseClient, opts: RetentionOptions, layout: TableLayout = { kind: 'single', database: '' }): Promise<void> {
  const plan: Array<[table: string, days: number]> = [
    ['llm_logs', checkDays('llmLogsDays', opts.llmLogsDays)],
    ['agent_actions', checkDays('agentActionsDays', opts.agentActionsDays)],
  ];
  for (const [table, days] of plan) {
    const current = await currentTtl(client, storageName(table, layout));
    // engine_full shows the TTL as ClickHouse normalises it: INTERVAL n DAY becomes toIntervalDay(n).
    const wanted = days > 0 ? `toDateTime(timestamp) + toIntervalDay(${days})` : null;
    if (current === wanted) continue;
    // REMOVE TTL fails on a table without one, so it is only issued when there is a TTL to remove.
    const alter = wanted ? `ALTER TABLE ${table} MODIFY TTL toDateTime(timestamp) + INTERVAL ${days} DAY` : `ALTER TABLE ${table} REMOVE TTL`;
    for (const query of renderStatement(alter, layout)) await client.command({ query });
  }
}

function checkDays(name: string, value: unknown): number {
  if (value === undefined || value === 0) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DAYS) {
    throw new RetentionError(`${name} must be a whole number of days from 0 (keep forever) to ${MAX_DAYS}, got ${String(value)}`);
  }
  return value;
}

/** The table's row TTL expression as engine_full shows it, or null when it has none. */
async function currentTtl(client: ClickHouseClient, table: string): Promise<string | null> {
  const result = await client.query({
    query: 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
    query_params: { table },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ engine_full: string }>();
  if (rows.length === 0) throw new RetentionError(`table ${table} does not exist; run the migrations first`);
  return / TTL (.*?)(?: SETTINGS |$)/.exec(rows[0]!.engine_full)?.[1]?.trim() ?? null;
}
