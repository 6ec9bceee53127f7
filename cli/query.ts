import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { openClickHouse } from '../lib/clickhouse.js';
import { loadConfig } from '../lib/config.js';
import * as q from '../sql/queries.js';

/**
 * `npm run query -- <helper> [--flag value ...] [--format table|json]`
 * Runs one helper of sql/queries.ts against the configured ClickHouse and prints the rows.
 * Unknown helpers, unknown or missing flags exit with status 2 and the usage text.
 */

type Flags = Record<string, string>;

interface Helper {
  summary: string;
  required: readonly string[];
  optional?: readonly string[];
  run(client: ClickHouseClient, f: Flags): Promise<unknown>;
}

const num = (name: string, value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
};

export const HELPERS: Record<string, Helper> = {
  'cost-hourly': {
    summary: 'hourly cost of a customer between --start and --end (ISO times)',
    required: ['customer-id', 'start', 'end'],
    run: (c, f) => q.queryCostHourly(c, { customerId: f['customer-id']!, start: f.start!, end: f.end! }),
  },
  'performance-p95': {
    summary: 'p50/p95/p99 latency of a service over the last --hours',
    required: ['customer-id', 'service-id', 'hours'],
    run: (c, f) => q.queryPerformanceP95(c, { customerId: f['customer-id']!, serviceId: f['service-id']!, hours: num('hours', f.hours!) }),
  },
  'resource-utilization': {
    summary: 'GPU/CPU utilization of an instance over the last --hours',
    required: ['customer-id', 'instance-id', 'hours'],
    run: (c, f) => q.queryResourceUtilization(c, { customerId: f['customer-id']!, instanceId: f['instance-id']!, hours: num('hours', f.hours!) }),
  },
  'quality-trends': {
    summary: 'hourly quality and hallucinations of a service over the last --hours',
    required: ['customer-id', 'service-id', 'hours'],
    run: (c, f) => q.queryQualityTrends(c, { customerId: f['customer-id']!, serviceId: f['service-id']!, hours: num('hours', f.hours!) }),
  },
  'fitness-trajectory': {
    summary: 'best/average score per generation of a run',
    required: ['run-id'],
    run: (c, f) => q.queryFitnessTrajectory(c, f['run-id']!),
  },
  'top-individuals': {
    summary: 'fittest individuals of a run (--limit, default 10)',
    required: ['run-id'],
    optional: ['limit'],
    run: (c, f) => q.queryTopIndividuals(c, f['run-id']!, f.limit === undefined ? 10 : num('limit', f.limit)),
  },
  'mutation-effectiveness': {
    summary: 'fitness per mutation type of a run',
    required: ['run-id'],
    run: (c, f) => q.queryMutationEffectiveness(c, f['run-id']!),
  },
  lineage: {
    summary: 'ancestry of an individual back to its root (optionally within --run-id)',
    required: ['individual-id'],
    optional: ['run-id'],
    run: (c, f) => q.queryLineage(c, f['individual-id']!, f['run-id']),
  },
  'latest-pareto-front': {
    summary: 'members of the latest Pareto frontier of a run',
    required: ['run-id'],
    run: (c, f) => q.queryLatestParetoFront(c, f['run-id']!),
  },
  'llm-cost-by-model': {
    summary: 'LLM calls and cost per model (optionally between --start and --end)',
    required: [],
    optional: ['start', 'end'],
    run: (c, f) => q.queryLlmCostByModel(c, { start: f.start, end: f.end }),
  },
  'cost-breakdown': {
    summary: 'cost of a run by component',
    required: ['run-id'],
    run: (c, f) => q.queryCostBreakdown(c, f['run-id']!),
  },
};

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function usage(): string {
  const lines = ['usage: npm run query -- <helper> [--flag value ...] [--format table|json]', '', 'helpers:'];
  for (const [name, h] of Object.entries(HELPERS)) {
    const flags = [...h.required.map((r) => `--${r} <value>`), ...(h.optional ?? []).map((o) => `[--${o} <value>]`)].join(' ');
    lines.push(`  ${name} ${flags}`, `      ${h.summary}`);
  }
  return lines.join('\n');
}

export interface ParsedArgs {
  helper: string;
  flags: Flags;
  format: 'table' | 'json';
}

/** Parses `<helper> --flag value ...`; throws UsageError for anything unknown, repeated or missing. */
export function parseQueryArgs(argv: readonly string[]): ParsedArgs {
  const [helper, ...rest] = argv;
  if (!helper || helper.startsWith('--')) throw new UsageError('missing helper name');
  const spec = HELPERS[helper];
  if (!spec) throw new UsageError(`unknown helper ${JSON.stringify(helper)}`);
  const allowed = new Set([...spec.required, ...(spec.optional ?? []), 'format']);
  const flags: Flags = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else {
      value = rest[++i];
    }
    if (!allowed.has(name)) throw new UsageError(`unknown flag --${name} for ${helper} (allowed: ${[...allowed].map((a) => `--${a}`).join(', ')})`);
    if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
    if (name in flags) throw new UsageError(`--${name} given twice`);
    flags[name] = value;
  }
  for (const r of spec.required) if (!(r in flags)) throw new UsageError(`${helper} needs --${r}`);
  const format = flags.format ?? 'table';
  if (format !== 'table' && format !== 'json') throw new UsageError(`--format must be table or json, got ${JSON.stringify(format)}`);
  delete flags.format;
  return { helper, flags, format };
}

/** Renders rows (or one object) as an aligned text table. */
export function formatTable(result: unknown): string {
  const rows = (Array.isArray(result) ? result : [result]) as Array<Record<string, unknown>>;
  if (rows.length === 0) return '(no rows)';
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseQueryArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`error: ${err.message}\n\n${usage()}`);
    return 2;
  }
  const config = loadConfig();
  const client = await openClickHouse(config.clickhouse);
  try {
    const result = await HELPERS[parsed.helper]!.run(client, parsed.flags);
    console.log(parsed.format === 'json' ? JSON.stringify(result, null, 2) : formatTable(result));
    return 0;
  } catch (err) {
    if (err instanceof q.QueryInputError || err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${usage()}`);
      return 2;
    }
    throw err;
  } finally {
    await client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
