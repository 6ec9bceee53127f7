import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterEach, describe, expect, it } from 'vitest';
import { formatJson, formatTable, isoTime, readableNumber, withIsoTimes } from '../../cli/query-format.js';
import { parseQueryArgs, resolveTarget, TargetError, usage, UsageError } from '../../cli/query.js';
import { queryEndpoint } from '../../consumers/query-endpoint.js';
import { checkParams, NAMED_QUERIES, runNamedQuery } from '../../sql/query-registry.js';

describe('npm run query argument parsing', () => {
  it('parses a helper with its flags, format and worker', () => {
    expect(parseQueryArgs(['performance-p95', '--customer-id', 'c', '--service-id=s', '--hours', '24', '--format', 'json'])).toEqual({
      helper: 'performance-p95',
      flags: { 'customer-id': 'c', 'service-id': 's', hours: '24' },
      format: 'json',
    });
    expect(parseQueryArgs(['llm-cost-by-model']).format).toBe('table');
    expect(parseQueryArgs(['llm-cost-by-model', '--worker', 'http://h:1']).worker).toBe('http://h:1');
  });

  const bad: Array<[string[], RegExp]> = [
    [[], /missing helper/],
    [['nope'], /unknown helper "nope"/],
    [['lineage', '--individual-id', 'x', '--hours', '3'], /unknown flag --hours for lineage/],
    [['lineage'], /lineage needs --individual-id/],
    [['lineage', '--individual-id'], /--individual-id needs a value/],
    [['lineage', '--individual-id', 'a', '--individual-id', 'b'], /given twice/],
    [['lineage', '--individual-id', 'a', '--format', 'xml'], /--format must be table or json/],
    [['lineage', 'stray'], /unexpected argument/],
    [['constructor'], /unknown helper "constructor"/],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${JSON.stringify(argv)}`, () => {
      expect(() => parseQueryArgs(argv)).toThrow(UsageError);
      expect(() => parseQueryArgs(argv)).toThrow(message);
    });
  }

  it('usage lists every helper', () => {
    for (const name of Object.keys(NAMED_QUERIES)) expect(usage()).toContain(name);
    expect(Object.keys(NAMED_QUERIES)).toHaveLength(11);
  });
});

describe('readable output', () => {
  it('rounds fractional numbers for reading, keeps whole numbers exact', () => {
    expect(readableNumber(0.7849999999999999)).toBe('0.785');
    expect(readableNumber(27.000000000000004)).toBe('27');
    expect(readableNumber(196.62)).toBe('196.62');
    expect(readableNumber(0.000123456789)).toBe('0.000123457');
    expect(readableNumber(9_007_199_254_740_991)).toBe('9007199254740991');
    expect(readableNumber(Number.NaN)).toBe('NaN');
  });

  it('shows ClickHouse UTC DateTime text as ISO 8601, and nothing else', () => {
    expect(isoTime('2026-12-01 10:00:00')).toBe('2026-12-01T10:00:00Z');
    expect(isoTime('2026-12-01 10:00:00.123')).toBe('2026-12-01T10:00:00.123Z');
    expect(isoTime('run 2026-12-01 10:00:00')).toBe('run 2026-12-01 10:00:00');
    expect(isoTime(5)).toBe(5);
    const rows = [{ hour: '2026-12-01 10:00:00', note: '2026-12-01 10:00:00' }];
    expect(withIsoTimes(rows, ['hour'])).toEqual([{ hour: '2026-12-01T10:00:00Z', note: '2026-12-01 10:00:00' }]);
    expect(withIsoTimes({ hour: '2026-12-01 10:00:00' }, ['hour'])).toEqual({ hour: '2026-12-01T10:00:00Z' });
    expect(NAMED_QUERIES['cost-hourly']!.timeColumns).toEqual(['hour']);
  });

  it('a table has a header, a rule and one line per row; no index column; numbers rounded and right-aligned', () => {
    const text = formatTable([
      { model: 'gpt-4', calls: 8, total_cost: 0.7849999999999999, note: null },
      { model: 'llama-2-70b', calls: 16, total_cost: 27.000000000000004, note: { a: 1 } },
    ]);
    expect(text.split('\n')).toEqual([
      'model        calls  total_cost  note',
      '-----------  -----  ----------  -------',
      'gpt-4            8       0.785  null',
      'llama-2-70b     16          27  {"a":1}',
    ]);
    expect(text).not.toContain('(index)');
    expect(formatTable([])).toBe('(no rows)');
    expect(formatTable({ total_cost: 1.5 }).split('\n')).toEqual(['total_cost', '----------', '       1.5']);
  });

  it('JSON keeps every number at full precision', () => {
    const rows = [{ total_cost: 0.7849999999999999, n: 27.000000000000004 }];
    expect(JSON.parse(formatJson(rows))).toEqual(rows);
    expect(formatJson(rows)).toContain('0.7849999999999999');
  });
});

describe('named query parameters', () => {
  it('refuses unknown, missing and badly typed parameters before any query', async () => {
    expect(() => checkParams('nope', {})).toThrow(/unknown helper "nope"/);
    expect(() => checkParams('lineage', {})).toThrow(/lineage needs individual-id/);
    expect(() => checkParams('lineage', { 'individual-id': 'a', sql: 'DROP TABLE x' })).toThrow(/unknown parameter sql for lineage/);
    const noClient = {} as ClickHouseClient; // a query reaching the client would throw a TypeError, not the message below
    await expect(runNamedQuery(noClient, 'top-individuals', { 'run-id': 'r', limit: 'ten' })).rejects.toThrow(/limit must be a number/);
    await expect(runNamedQuery(noClient, 'performance-p95', { 'customer-id': 'x', 'service-id': 'y', hours: '1' })).rejects.toThrow(/customerId must be a UUID/);
  });
});

describe('query endpoint (routes, errors, concurrency) over a fake client', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** A ClickHouse client whose queries answer `rows` after `release()` is called. */
  function fakeClient(rows: unknown[]) {
    const seen: Array<{ query: string; params: unknown }> = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const client = {
      query: async (p: { query: string; query_params: unknown }) => {
        seen.push({ query: p.query, params: p.query_params });
        await gate;
        return { json: async () => rows };
      },
    } as unknown as ClickHouseClient;
    return { client, seen, release };
  }

  async function serve(client: ClickHouseClient, maxConcurrent = 2): Promise<string> {
    const handler = queryEndpoint(client, { describe: 'fake engine', maxConcurrent });
    server = createServer((req, res) => {
      if (!handler(req, res)) {
        res.writeHead(404);
        res.end('other route');
      }
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('lists the helpers, runs one with bound parameters, and maps bad input to 400/404/405', async () => {
    const fake = fakeClient([{ generation: 0, best_score: 0.7849999999999999 }]);
    fake.release();
    const url = await serve(fake.client);
    const list = await (await fetch(`${url}/query`)).json();
    expect(list.clickhouse).toBe('fake engine');
    expect(Object.keys(list.helpers)).toEqual(Object.keys(NAMED_QUERIES));

    const ok = await fetch(`${url}/query/fitness-trajectory?run-id=${encodeURIComponent("run' OR 1=1")}`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ helper: 'fitness-trajectory', clickhouse: 'fake engine', result: [{ generation: 0, best_score: 0.7849999999999999 }] });
    // The value reached ClickHouse as a bound parameter; the SQL text is the helper's own.
    expect(fake.seen[0]!.params).toEqual({ runId: "run' OR 1=1" });
    expect(fake.seen[0]!.query).not.toContain('OR 1=1');

    const cases: Array<[string, RequestInit | undefined, number, RegExp]> = [
      ['/query/nope', undefined, 404, /unknown helper "nope"/],
      ['/query/lineage', undefined, 400, /lineage needs individual-id/],
      ['/query/lineage?individual-id=a&individual-id=b', undefined, 400, /given twice/],
      ['/query/lineage?individual-id=a&query=SELECT%201', undefined, 400, /unknown parameter query/],
      ['/query/top-individuals?run-id=r&limit=0', undefined, 400, /limit must be a whole number/],
      ['/query/fitness-trajectory?run-id=r', { method: 'POST', body: 'SELECT 1' }, 405, /read-only/],
    ];
    for (const [path, init, status, message] of cases) {
      const res = await fetch(`${url}${path}`, init);
      expect(res.status, path).toBe(status);
      expect((await res.json()).error, path).toMatch(message);
    }
    expect(fake.seen).toHaveLength(1); // none of the refused requests queried
    expect(await (await fetch(`${url}/metrics`)).text()).toBe('other route');
  });

  it('answers 503 beyond maxConcurrent running queries, and takes queries again once they finish', async () => {
    const fake = fakeClient([]);
    const url = await serve(fake.client, 1);
    const first = fetch(`${url}/query/fitness-trajectory?run-id=a`);
    while (fake.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    const busy = await fetch(`${url}/query/fitness-trajectory?run-id=b`);
    expect(busy.status).toBe(503);
    fake.release();
    expect((await first).status).toBe(200);
    expect((await fetch(`${url}/query/fitness-trajectory?run-id=c`)).status).toBe(200);
  });

  it('the CLI finds a worker serving the endpoint, falls back when none answers, and refuses an explicit URL that is not one', async () => {
    const fake = fakeClient([]);
    const url = await serve(fake.client);
    const port = Number(new URL(url).port);
    expect(await resolveTarget(undefined, port)).toEqual({ kind: 'worker', url, clickhouse: 'fake engine' });
    expect(await resolveTarget(`${url}/`, 1)).toEqual({ kind: 'worker', url, clickhouse: 'fake engine' });
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    expect(await resolveTarget(undefined, port)).toMatchObject({ kind: 'direct', note: `no worker answered at ${url}` });
    await expect(resolveTarget(url, 1)).rejects.toThrow(TargetError);

    server = createServer((_req, res) => {
      res.writeHead(404);
      res.end('not found');
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
    expect(await resolveTarget(undefined, port)).toMatchObject({ kind: 'direct', note: expect.stringMatching(/serves no query endpoint/) });
    await expect(resolveTarget(url, 1)).rejects.toThrow(/serves no query endpoint/);
  });
});
