import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { CommandFailure, EXIT_CODES, EXIT_OK, parseCommandLine, registerSecret, runCommand, UsageError } from '../lib/cli.js';
import { loadConfig, type Config } from '../lib/config.js';
import { QueryInputError } from '../sql/queries.js';
import { checkParams, NAMED_QUERIES, runNamedQuery } from '../sql/query-registry.js';
import { formatJson, formatTable, withIsoTimes } from './query-format.js';

export { UsageError };

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
 * Every argument and value is checked before anything is probed or opened.
 * Exit codes: 0 rows printed, 2 bad input (unknown helper, flag or value: one line), 1 anything
 * else (no worker at an explicit --worker, ClickHouse unreachable, the query failed: one line).
 */

type Flags = Record<string, string>;

export function usage(): string {
  const lines = [
    'usage: npm run query -- <helper> [--flag value ...] [--format table|json] [--worker <url>]',
    '  --format table|json  a table for reading (default), or JSON with every number at full precision',
    '  --worker <url>       a running worker (its METRICS_PORT); default QUERY_WORKER_URL, else http://127.0.0.1:<METRICS_PORT>;',
    '                       with no worker there, ClickHouse is opened directly (CLICKHOUSE_URL or the embedded engine at CHDB_PATH);',
    '                       QUERY_TOKEN (or QUERY_TOKEN_FILE) is sent as the bearer token of a worker that requires one',
    '  -h, --help           this text',
    '  A value starting with "-" is written --flag=-value.',
    '',
    'helpers:',
  ];
  for (const [name, h] of Object.entries(NAMED_QUERIES)) {
    const flags = [...h.required.map((r) => `--${r} <value>`), ...(h.optional ?? []).map((o) => `[--${o} <value>]`)].join(' ');
    lines.push(`  ${name} ${flags}`, `      ${h.summary}`);
  }
  lines.push('', EXIT_CODES);
  return lines.join('\n');
}

export interface ParsedArgs {
  helper: string;
  flags: Flags;
  format: 'table' | 'json';
  /** --worker, when given. */
  worker?: string;
}

/** Parses `<helper> --flag value ...` (node:util parseArgs, strict); throws UsageError for anything unknown, repeated or missing. */
export function parseQueryArgs(argv: readonly string[]): ParsedArgs {
  const [helper, ...rest] = argv;
  if (!helper || helper.startsWith('-')) throw new UsageError('missing helper name');
  const spec = Object.hasOwn(NAMED_QUERIES, helper) ? NAMED_QUERIES[helper] : undefined;
  if (!spec) throw new UsageError(`unknown helper ${JSON.stringify(helper)} (known: ${Object.keys(NAMED_QUERIES).join(', ')})`);
  const names = [...spec.required, ...(spec.optional ?? []), 'format', 'worker'];
  const options = Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseCommandLine(rest, options, false));
  } catch (err) {
    const m = /^unknown option (--?[^\s=]+)/.exec((err as Error).message);
    if (m) throw new UsageError(`unknown flag ${m[1]} for ${helper} (allowed: ${names.map((a) => `--${a}`).join(', ')})`);
    throw err;
  }
  const flags: Flags = {};
  for (const [name, value] of Object.entries(values)) if (typeof value === 'string') flags[name] = value;
  for (const r of spec.required) if (!(r in flags)) throw new UsageError(`${helper} needs --${r}`);
  const format = flags.format ?? 'table';
  if (format !== 'table' && format !== 'json') throw new UsageError(`--format must be table or json, got ${JSON.stringify(format)}`);
  const worker = flags.worker;
  if (worker !== undefined) checkWorkerUrl('--worker', worker);
  delete flags.format;
  delete flags.worker;
  return { helper, flags, format, ...(worker === undefined ? {} : { worker }) };
}

function checkWorkerUrl(what: string, url: string): void {
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new UsageError(`${what} must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
}

/** Thrown by the stand-in client of checkQueryValues when a helper got past its checks. */
const VALUES_OK = Symbol('values ok');

/**
 * Checks the values (UUIDs, hours, times, limits) as the helper does, without any ClickHouse:
 * the helper runs against a stand-in client that stops it at its first query. So a bad value is
 * refused before a worker is probed or the embedded engine is opened. Throws QueryInputError.
 */
export async function checkQueryValues(helper: string, flags: Flags): Promise<void> {
  checkParams(helper, flags);
  const standIn = new Proxy({}, { get: () => () => Promise.reject(VALUES_OK) }) as ClickHouseClient;
  try {
    await runNamedQuery(standIn, helper, flags);
  } catch (err) {
    if (err !== VALUES_OK) throw err;
  }
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
export async function resolveTarget(explicit: string | undefined, metricsPort: number, timeoutMs = 2_000, token?: string): Promise<QueryTarget> {
  const url = (explicit ?? `http://127.0.0.1:${metricsPort}`).replace(/\/+$/, '');
  if (explicit === undefined && metricsPort === 0) return { kind: 'direct', note: 'METRICS_PORT is 0: no worker to look for' };
  let res: Response;
  try {
    res = await fetch(`${url}/query`, { headers: authHeaders(token), signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    if (explicit !== undefined) throw new TargetError(`no worker answers at ${url} (${(err as Error).cause ?? (err as Error).message})`);
    return { kind: 'direct', note: `no worker answered at ${url}` };
  }
  // A worker that wants a token is the one meant, even when not named: opening its engine
  // directly would only fail on its lock.
  if (res.status === 401) throw new TargetError(`the worker at ${url} refused the request (HTTP 401): ${token ? 'QUERY_TOKEN is not its token' : 'it needs QUERY_TOKEN'}`);
  const body = (await res.json().catch(() => undefined)) as { clickhouse?: string; helpers?: unknown } | undefined;
  if (res.ok && body?.helpers && typeof body.clickhouse === 'string') return { kind: 'worker', url, clickhouse: body.clickhouse };
  const what = `${url} answers (HTTP ${res.status}) but serves no query endpoint (a worker with QUERY_ENDPOINT=false, or another program)`;
  if (explicit !== undefined) throw new TargetError(what);
  return { kind: 'direct', note: what };
}

/** The Authorization header of the query endpoint, when a token is configured (QUERY_TOKEN). */
function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Runs a helper through a worker's endpoint; a 503 (the worker's query slots are busy) is retried. */
async function viaWorker(url: string, helper: string, flags: Flags, token?: string): Promise<unknown> {
  const target = `${url}/query/${encodeURIComponent(helper)}?${new URLSearchParams(flags)}`;
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(target, { headers: authHeaders(token), signal: AbortSignal.timeout(120_000) });
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
  const { openClickHouse } = await import('../lib/clickhouse.js');
  const { describeClickHouse } = await import('../consumers/query-endpoint.js');
  let client;
  try {
    client = await openClickHouse(config.clickhouse, { quiet: true });
  } catch (err) {
    // chDB reports the lock of a data directory held by another process ("Cannot lock file
    // …/status") on stderr and throws only a generic connection error.
    if ((err as { code?: string }).code === 'CHDB_CONNECTION') {
      throw new TargetError(
        `could not open the embedded engine at ${config.clickhouse.dataPath}: another process (a worker?) most likely owns it; query through it with --worker http://<host>:<its METRICS_PORT>`,
      );
    }
    throw new TargetError(`cannot ${config.clickhouse.url ? 'reach' : 'open'} ${describeClickHouse(config.clickhouse)}: ${(err as Error).message}`);
  }
  try {
    return await runNamedQuery(client, helper, flags);
  } finally {
    await client.close();
  }
}

/**
 * Runs the command; returns the exit code, throws UsageError / ConfigError / QueryInputError
 * (exit 2) or a runtime error (exit 1) for runCommand to print in one line.
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseQueryArgs(argv);
  try {
    await checkQueryValues(parsed.helper, parsed.flags);
  } catch (err) {
    if (err instanceof QueryInputError) throw new UsageError(err.message);
    throw err;
  }
  const explicit = parsed.worker ?? (env.QUERY_WORKER_URL || undefined);
  if (parsed.worker === undefined && explicit !== undefined) checkWorkerUrl('QUERY_WORKER_URL', explicit);
  const config = loadConfig(env);
  registerSecret(config.clickhouse.password);
  registerSecret(config.metrics.queryToken);
  const { describeClickHouse } = await import('../consumers/query-endpoint.js');
  let result: unknown;
  try {
    const target = await resolveTarget(explicit, config.metrics.port, undefined, config.metrics.queryToken);
    if (target.kind === 'worker') {
      console.error(`query: through the worker at ${target.url} (${target.clickhouse})`);
      result = await viaWorker(target.url, parsed.helper, parsed.flags, config.metrics.queryToken);
    } else {
      console.error(`query: ${describeClickHouse(config.clickhouse)}, opened by this process (${target.note})`);
      result = await direct(config, parsed.helper, parsed.flags);
    }
  } catch (err) {
    // A worker that refuses the input (an older worker with other checks): still bad input.
    if (err instanceof QueryInputError) throw new UsageError(err.message);
    if (err instanceof TargetError) throw new CommandFailure(err.message);
    throw err;
  }
  result = withIsoTimes(result, NAMED_QUERIES[parsed.helper]!.timeColumns);
  console.log(parsed.format === 'json' ? formatJson(result) : formatTable(result));
  return EXIT_OK;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  await runCommand('query', usage(), (argv) => main(argv));
}
