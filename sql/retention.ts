import type { ClickHouseClient } from '@clickhouse/client';

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
 * The day count is interpolated into the DDL (ALTER does not take query parameters); it is
 * checked to be an integer first, so nothing else can reach the statement.
 * ClickHouse applies a new TTL to existing parts in a background mutation
 * (materialize_ttl_after_modify); rows past it disappear at the next merge, not immediately.
 */
export async function applyRetention(client: ClickHouseClient, opts: RetentionOptions): Promise<void> {
  const plan: Array<[table: string, days: number]> = [
    ['llm_logs', checkDays('llmLogsDays', opts.llmLogsDays)],
    ['agent_actions', checkDays('agentActionsDays', opts.agentActionsDays)],
  ];
  for (const [table, days] of plan) {
    if (days > 0) {
      await client.command({ query: `ALTER TABLE ${table} MODIFY TTL toDateTime(timestamp) + INTERVAL ${days} DAY` });
    } else if (await hasTtl(client, table)) {
      // REMOVE TTL fails on a table without one, so only issue it when there is a TTL to remove.
      await client.command({ query: `ALTER TABLE ${table} REMOVE TTL` });
    }
  }
}

function checkDays(name: string, value: unknown): number {
  if (value === undefined || value === 0) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DAYS) {
    throw new RetentionError(`${name} must be a whole number of days from 0 (keep forever) to ${MAX_DAYS}, got ${String(value)}`);
  }
  return value;
}

async function hasTtl(client: ClickHouseClient, table: string): Promise<boolean> {
  const result = await client.query({
    query: 'SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
    query_params: { table },
    format: 'JSONEachRow',
  });
  const rows = await result.json<{ engine_full: string }>();
  if (rows.length === 0) throw new RetentionError(`table ${table} does not exist; run the migrations first`);
  return / TTL /.test(rows[0]!.engine_full);
}
