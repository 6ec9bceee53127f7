import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../lib/config.js';
import { QueryInputError } from '../sql/queries.js';
import { NAMED_QUERIES, runNamedQuery, UnknownQueryError } from '../sql/query-registry.js';
import { bearerTokenMatches } from './query-auth.js';

/**
 * A read-only query endpoint on the worker's HTTP port, so the data can be read while the
 * worker ingests: the embedded engine (chDB) belongs to the one process that opened its data
 * directory, and a second process is refused (`Cannot lock file …/status`).
 *
 *   GET /query                     → 200 { clickhouse, helpers: { name: { summary, required, optional } } }
 *   GET /query/<helper>?<param>=…  → 200 { helper, clickhouse, result }
 *
 * Only the named helpers of sql/query-registry.ts run, with parameters bound by the helper;
 * the request carries parameter values, never SQL. Errors are JSON `{ error }`: 400 for a bad
 * or repeated parameter, 404 for an unknown helper, 405 for a method other than GET/HEAD,
 * 503 when `maxConcurrent` queries already run (they share the engine with the inserts, so
 * readers cannot crowd out ingestion), 500 for a failed query. With a `token`, a request
 * without `Authorization: Bearer <token>` gets 401 before anything else is looked at (the
 * method, the helper): an unauthenticated caller learns nothing but that the endpoint exists.
 */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface QueryEndpointOptions {
  /** Where the worker's data is, shown to the caller (e.g. "embedded chDB at /data/chdb, database ingest"). */
  describe: string;
  /** Queries running at once; further requests get 503. Default 2. */
  maxConcurrent?: number;
  /** Bearer token every request must carry (QUERY_TOKEN); unset: no authentication (loopback only, lib/config.ts). */
  token?: string;
}

export function queryEndpoint(client: ClickHouseClient, opts: QueryEndpointOptions): RouteHandler {
  const maxConcurrent = opts.maxConcurrent ?? 2;
  let running = 0;
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://worker');
    if (url.pathname !== '/query' && !url.pathname.startsWith('/query/')) return false;
    if (opts.token !== undefined && !bearerTokenMatches(req, opts.token)) {
      res.setHeader('www-authenticate', 'Bearer realm="query"');
      send(res, 401, { error: 'the query endpoint needs Authorization: Bearer <QUERY_TOKEN>' });
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, { error: `${req.method} not allowed: the query endpoint is read-only (GET)` });
      return true;
    }
    const name = decodeURIComponent(url.pathname.slice('/query/'.length));
    if (url.pathname === '/query' || name === '') {
      const helpers = Object.fromEntries(Object.entries(NAMED_QUERIES).map(([n, h]) => [n, { summary: h.summary, required: h.required, optional: h.optional ?? [] }]));
      send(res, 200, { clickhouse: opts.describe, helpers });
      return true;
    }
    const params: Record<string, string> = {};
    for (const [key, value] of url.searchParams) {
      if (key in params) {
        send(res, 400, { error: `parameter ${key} given twice` });
        return true;
      }
      params[key] = value;
    }
    if (running >= maxConcurrent) {
      res.setHeader('retry-after', '1');
      send(res, 503, { error: `${running} queries already running; retry shortly` });
      return true;
    }
    running++;
    runNamedQuery(client, name, params)
      .then(
        (result) => send(res, 200, { helper: name, clickhouse: opts.describe, result }),
        (err: unknown) => {
          if (err instanceof UnknownQueryError) send(res, 404, { error: err.message });
          else if (err instanceof QueryInputError) send(res, 400, { error: err.message });
          else send(res, 500, { error: `query ${name} failed: ${err instanceof Error ? err.message : String(err)}` });
        },
      )
      .finally(() => running--);
    return true;
  };
}

/** Where the worker's tables are, for people: the server (without credentials) or the embedded engine's directory. */
export function describeClickHouse(c: Config['clickhouse']): string {
  if (c.url) {
    const u = new URL(c.url);
    return `ClickHouse server ${u.protocol}//${u.host}, database ${c.database}`;
  }
  return `embedded chDB at ${resolve(c.dataPath)}, database ${c.database}`;
}
