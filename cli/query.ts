import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { openClickHouse } from '../lib/clickhouse.js';
import { loadConfig, type Config } from '../lib/config.js';
import { describeClickHouse } from '../consumers/query-endpoint.js';
import { QueryInputError } from '../sql/queries.js';
import { checkParams, NAMED_QUERIES, runNamedQuery } from '../sql/query-registry.js';
import { formatJson, formatTable, withIsoTimes } from './query-format.js';

/**
 * `npm run query -- <helper> [--flag value ...] [--format table|json] [--worker <url>]`
 * Runs one named helper (sql/query-registry.ts) and prints the rows.
 *
 * Where it runs: the embedded engine belongs to one process per data directory, so while a
 * worker runs, the query goes through that worker's read-only query endpoint
 * (consumers/query-endpoint.ts) on its metrics port. The worker is looked for at
 * --worker / QUERY_WORKER_URL, else at http://127.0.0.1:<METRICS_PORT>; when none answers,
 * the CLI opens ClickHouse itself as configured (CLICKHOUSE_URL or the embedded engine at
 * CHDB_PATH). It says on stderr which one it used, so stdout stays the result alone.
 * Exit codes: 0 rows printed, 2 bad input (unknown helper, flag or value) with the usage text,
 * 1 anything else (no worker at an explicit --worker, query failed).
 */

type Flags = Record<string, string>;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function usage(): string {
  const lines = [
    'usage: npm run query -- <helper> [--flag value ...] [--format table|json] [--worker <url>]',
    '  --worker <url>  a running worker (its METRICS_PORT); default QUERY_WORKER_URL, else http://127.0.0.1:<METRICS_PORT>',
    '',
    'helpers:',
  ];
  for (const [name, h] of Object.entries(NAMED_QUERIES)) {
    const flags = [...h.required.map((r) => `--${r} <value>`), ...(h.optional ?? []).map((o) => `[--${o} <value>]`)].join(' ');
    lines.push(`  ${name} ${flags}`, `      ${h.summary}`);
  }
  return lines.join('\n');
}

export interface ParsedArgs {
  helper: string;
  flags: Flags;
  format: 'table' | 'json';
  /** --worker, when given. */
  worker?: string;
}

/** Parses `<helper> --flag value ...`; throws UsageError for anything unknown, repeated or missing. */
export function parseQueryArgs(argv: readonly string[]): ParsedArgs {
  const [helper, ...rest] = argv;
  if (!helper || helper.startsWith('--')) throw new UsageError('missing helper name');
  const spec = Object.hasOwn(NAMED_QUERIES, helper) ? NAMED_QUERIES[helper] : undefined;
  if (!spec) throw new UsageError(`unknown helper ${JSON.stringify(helper)}`);
  const allowed = new Set([...spec.required, ...(spec.optional ?? []), 'format', 'worker']);
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
  const worker = flags.worker;
  delete flags.format;
  delete flags.worker;
  return { helper, flags, format, ...(worker === undefined ? {} : { worker }) };
}

/** Where a query runs: a worker's query endpoint, or ClickHouse opened by this process. */
export type QueryTarget = { kind: 'worker'; url: string; clickhouse: string } | { kind: 'direct'; note: string };

/** Thrown for a target the user named that cannot be used. */
export class TargetError extends Error {
  override readonly name = 'TargetError';
}

/**
 * Finds the worker to query through: `explicit` (--worker / QUERY_WORKER_URL) must answer;
 * otherwise the local worker on `metricsPort` is used when it serves the query endpoint, and
 * ClickHouse is opened directly when nothing answers there.
 */
export async function resolveTarget(explicit: string | undefined, metricsPort: number, timeoutMs = 2_000): Promise<QueryTarget> {
  const url = (explicit ?? `http://127.0.0.1:${metricsPort}`).replace(/\/+$/, '');
  if (explicit === undefined && metricsPort === 0) return { kind: 'direct', note: 'METRICS_PORT is 0: no worker to look for' };
  let res: Response;
  try {
    res = await fetch(`${url}/query`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    if (explicit !== undefined) throw new TargetError(`no worker answers at ${url} (${(err as Error).cause ?? (err as Error).message})`);
    return { kind: 'direct', note: `no worker answered at ${url}` };
  }
  const body = (await res.json().catch(() => undefined)) as { clickhouse?: string; helpers?: unknown } | undefined;
  if (res.ok && body?.helpers && typeof body.clickhouse === 'string') return { kind: 'worker', url, clickhouse: body.clickhouse };
  const what = `${url} answers (HTTP ${res.status}) but serves no query endpoint (a worker with QUERY_ENDPOINT=false, or another program)`;
  if (explicit !== undefined) throw new TargetError(what);
  return { kind: 'direct', note: what };
}

/** Runs a helper through a worker's endpoint; a 503 (the worker's query slots are busy) is retried. */
async function viaWorker(url: string, helper: string, flags: Flags): Promise<unknown> {
  const target = `${url}/query/${encodeURIComponent(helper)}?${new URLSearchParams(flags)}`;
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(target, { signal: AbortSignal.timeout(120_000) });
    const body = (await res.json().catch(() => ({ error: `HTTP ${res.status} without a JSON body` }))) as { result?: unknown; error?: string };
    if (res.ok) return body.result;
    if (res.status === 503 && attempt < 5) {
      await new Promise((r) => setTimeout(r, 500 * attempt));
      continue;
    }
    // 400 / 404: the worker refused the input, as the local check would have.
    if (res.status === 400 || res.status === 404) throw new QueryInputError(body.error ?? `HTTP ${res.status}`);
    throw new Error(`worker at ${url}: ${body.error ?? `HTTP ${res.status}`}`);
  }
}

async function direct(config: Readonly<Config>, helper: string, flags: Flags): Promise<unknown> {
  let client;
  try {
    client = await openClickHouse(config.clickhouse);
  } catch (err) {
    // chDB reports the lock of a data directory held by another process ("Cannot lock file
    // …/status") on stderr and throws only a generic connection error.
    if ((err as { code?: string }).code === 'CHDB_CONNECTION') {
      throw new TargetError(
        `could not open the embedded engine at ${config.clickhouse.dataPath}: another process (a worker?) most likely owns it; query through it with --worker http://<host>:<its METRICS_PORT>`,
      );
    }
    throw err;
  }
  try {
    return await runNamedQuery(client, helper, flags);
  } finally {
    await client.close();
  }
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseQueryArgs(argv);
    checkParams(parsed.helper, parsed.flags);
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof QueryInputError)) throw err;
    console.error(`error: ${err.message}\n\n${usage()}`);
    return 2;
  }
  const config = loadConfig(env);
  try {
    const target = await resolveTarget(parsed.worker ?? (env.QUERY_WORKER_URL || undefined), config.metrics.port);
    let result: unknown;
    if (target.kind === 'worker') {
      console.error(`query: through the worker at ${target.url} (${target.clickhouse})`);
      result = await viaWorker(target.url, parsed.helper, parsed.flags);
    } else {
      console.error(`query: ${describeClickHouse(config.clickhouse)}, opened by this process (${target.note})`);
      result = await direct(config, parsed.helper, parsed.flags);
    }
    result = withIsoTimes(result, NAMED_QUERIES[parsed.helper]!.timeColumns);
    console.log(parsed.format === 'json' ? formatJson(result) : formatTable(result));
    return 0;
  } catch (err) {
    if (err instanceof QueryInputError || err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${usage()}`);
      return 2;
    }
    if (err instanceof TargetError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    throw err;
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
