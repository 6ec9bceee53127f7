import { CommandFailure, EXIT_CODES, EXIT_OK, parseCommandLine, registerSecret, runCommand } from '../lib/cli.js';
import { loadConfig } from '../lib/config.js';

/**
 * `npm run migrate`: applies pending sql/migrations to the configured ClickHouse (CLICKHOUSE_URL
 * or chDB at CHDB_PATH), then the retention settings. The worker runs the same at start.
 */
export const USAGE = `usage: npm run migrate
  Applies the pending migrations (sql/migrations) and the retention settings to the configured
  ClickHouse: CLICKHOUSE_URL, or the embedded engine at CHDB_PATH (default ./data/chdb, created
  when missing). Safe to run again and from several places at once (a lease-based lock).
  Configuration from the environment, as the worker: docs/configuration.md.
  -h, --help  this text
${EXIT_CODES}`;

await runCommand('migrate', USAGE, async (argv) => {
  parseCommandLine(argv, {}, false);
  const config = loadConfig();
  registerSecret(config.clickhouse.password);
  // Loaded after the arguments and the configuration are checked.
  const { openClickHouse } = await import('../lib/clickhouse.js');
  const { describeClickHouse } = await import('../consumers/query-endpoint.js');
  const { layoutOf } = await import('../sql/ddl.js');
  const { migrate } = await import('../sql/migrate.js');
  const { applyRetention } = await import('../sql/retention.js');
  let client;
  try {
    client = await openClickHouse(config.clickhouse, { quiet: true });
  } catch (err) {
    throw new CommandFailure(`cannot ${config.clickhouse.url ? 'reach' : 'open'} ${describeClickHouse(config.clickhouse)}: ${(err as Error).message}`);
  }
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
    await client.close().catch(() => undefined);
  }
  return EXIT_OK;
});
