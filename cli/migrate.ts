import { openClickHouse } from '../lib/clickhouse.js';
import { loadConfig } from '../lib/config.js';
import { layoutOf } from '../sql/ddl.js';
import { migrate } from '../sql/migrate.js';
import { applyRetention } from '../sql/retention.js';

/** `npm run migrate`: applies pending sql/migrations to the configured ClickHouse (CLICKHOUSE_URL or chDB at CHDB_PATH). */
async function main(): Promise<void> {
  const config = loadConfig();
  const client = await openClickHouse(config.clickhouse);
  try {
    const layout = layoutOf(config.clickhouse);
    const result = await migrate(client, undefined, { layout });
    if (result.lock.tookOverFrom) console.log(`took the migration lock over from ${result.lock.tookOverFrom} (its lease had expired)`);
    else if (result.lock.waitedMs > 1_000) console.log(`waited ${Math.round(result.lock.waitedMs / 1000)} s for another runner's migrations`);
    for (const name of result.skipped) console.log(`skipped  ${name} (already applied)`);
    for (const name of result.applied) console.log(`applied  ${name}`);
    console.log(`${result.applied.length} applied, ${result.skipped.length} already applied`);
    await applyRetention(client, config.retention, layout);
    console.log(`layout: ${layout.kind}${layout.cluster ? ` (cluster ${layout.cluster})` : ''}`);
    const keep = (days: number) => (days > 0 ? `${days} days` : 'forever');
    console.log(`retention: llm_logs ${keep(config.retention.llmLogsDays)}, agent_actions ${keep(config.retention.agentActionsDays)}`);
  } finally {
    await client.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
