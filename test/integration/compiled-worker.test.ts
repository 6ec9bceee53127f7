import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { openClickHouse } from '../../lib/clickhouse.js';
import { COST_EVENTS_START, costEvents } from '../helpers/cost-events.js';
import { readDockerfile } from '../helpers/dockerfile.js';
import { auditCostRows, testConfig, uniqueId, waitFor } from '../helpers/stack.js';

/**
 * The worker and the commands as the image runs them: compiled (npm run build → dist/) and
 * started with plain node, from another directory than the repository. The devDependencies are
 * blocked (test/fixtures/block-modules.mjs), as they are absent from the image, so a stray
 * import of tsx, vitest or typescript fails here as it would there.
 */
const root = join(import.meta.dirname, '../..');
const blockModules = join(root, 'test/fixtures/block-modules.mjs');
const DEV_ONLY = 'tsx,vitest,typescript';
const run = promisify(execFile);

/** The environment of a compiled process: this one's, without a loader another tool may have put in NODE_OPTIONS. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _, ...rest } = process.env;
  return { ...rest, LOG_LEVEL: process.env.CHILD_LOG_LEVEL ?? 'warn', ...env };
}

interface Child {
  proc: ChildProcess;
  output: () => string;
  /** The worker's /metrics base URL, once it printed it. */
  metricsUrl: Promise<string>;
  exit: Promise<number | null>;
}

function startCompiledWorker(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', blockModules, join(root, 'dist/consumers/main.js')], {
    cwd: mkdtempSync(join(tmpdir(), 'ingest-cwd-')),
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const metricsUrl = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', () => {
      const m = /metrics at (\S+)\/metrics/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exit.then((code) => reject(new Error(`worker exited (${code}) before starting: ${out}`)));
  });
  metricsUrl.catch(() => undefined);
  return { proc, output: () => out, metricsUrl, exit };
}

async function rowsInserted(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^ingest_rows_inserted_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

const children: Child[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.proc.kill('SIGKILL');
});

beforeAll(() => {
  execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
}, 300_000);

describe('the compiled commands', () => {
  it.each([
    ['worker', 'dist/consumers/main.js'],
    ['migrate', 'dist/cli/migrate.js'],
    ['query', 'dist/cli/query.js'],
    ['dlq', 'dist/cli/dlq.js'],
    ['schemas:export', 'dist/cli/export-schemas.js'],
  ])('%s runs from dist with plain node: --help exits 0', async (name, script) => {
    const { stdout } = await run(process.execPath, ['--import', blockModules, join(root, script), '--help'], {
      cwd: tmpdir(),
      env: childEnv({ BLOCKED_MODULES: `${DEV_ONLY},chdb` }),
    });
    expect(stdout).toMatch(new RegExp(`^usage: npm run ${name}\\b`));
  });

  it('the Dockerfile copies what the build produced and runs a compiled file', () => {
    const steps = readDockerfile(join(root, 'Dockerfile'));
    const fromBuild = steps.filter((s) => s.keyword === 'COPY' && s.flags.from === 'build').map((s) => s.args[0]!);
    expect(fromBuild).toEqual(expect.arrayContaining(['/app/dist', '/app/producers/typescript/dist']));
    for (const src of fromBuild) expect(existsSync(join(root, src.replace(/^\/app\//, ''))), src).toBe(true);
    const cmd = steps.find((s) => s.stage === 'runtime' && s.keyword === 'CMD')!;
    expect(existsSync(join(root, cmd.args.at(-1)!))).toBe(true);
  });
});

describe('the compiled worker on the embedded engine', () => {
  const id = uniqueId('img');
  const dataPath = mkdtempSync(join(tmpdir(), 'ingest-compiled-'));
  const config = testConfig({ clickhouse: { dataPath } }, id);
  const env = {
    BLOCKED_MODULES: DEV_ONLY,
    KAFKA_BROKERS: config.kafka.brokers.join(','),
    REDIS_URL: config.redis.url,
    KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix,
    INGEST_GROUP_ID: config.consumer.groupId,
    INGEST_EVENT_TYPES: 'cost_metrics',
    CHDB_PATH: dataPath,
    CLICKHOUSE_DATABASE: config.clickhouse.database,
    DLQ_QUEUE_PREFIX: config.deadLetter.queuePrefix,
    METRICS_PORT: '0',
    METRICS_HOST: '127.0.0.1',
    // The query command reads through the worker's query endpoint (off by default; loopback here).
    QUERY_ENDPOINT: 'true',
    BATCH_MAX_ROWS: '500',
    BATCH_MAX_WAIT_MS: '100',
  };

  it('lands the SDK\'s events, answers the query command and the image\'s healthcheck, and exits 0 on SIGTERM', async () => {
    const child = startCompiledWorker(env);
    children.push(child);
    const url = await child.metricsUrl;
    const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    const events = costEvents(1_000);
    try {
      await producer.emitCostMetrics(events);
    } finally {
      await producer.close();
    }
    await waitFor('1000 rows inserted', async () => (await rowsInserted(url)) === 1_000, 90_000, 200);

    // The compiled query command, through the worker's query endpoint (the engine is the worker's).
    const customer = events[0]!.customer_id;
    const { stdout } = await run(
      process.execPath,
      ['--import', blockModules, join(root, 'dist/cli/query.js'), 'cost-hourly', '--customer-id', customer, '--start', new Date(COST_EVENTS_START - 86_400_000).toISOString(), '--end', new Date(COST_EVENTS_START + 2 * 86_400_000).toISOString(), '--worker', url, '--format', 'json'],
      { cwd: tmpdir(), env: childEnv({ BLOCKED_MODULES: `${DEV_ONLY},chdb` }) },
    );
    const hourly = JSON.parse(stdout) as Array<{ samples: number | string; total_cost: number | string }>;
    const mine = events.filter((e) => e.customer_id === customer);
    expect(hourly.reduce((a, r) => a + Number(r.samples), 0)).toBe(mine.length);
    expect(hourly.reduce((a, r) => a + Number(r.total_cost), 0)).toBeCloseTo(mine.reduce((a, e) => a + e.cost_per_hour, 0), 3);

    // The image's HEALTHCHECK, as written in the Dockerfile, against this worker's port; and against no worker.
    const health = readDockerfile(join(root, 'Dockerfile')).find((s) => s.keyword === 'HEALTHCHECK')!.args;
    const port = new URL(url).port;
    const probe = (p: string) => run(process.execPath, health.slice(1), { env: childEnv({ METRICS_PORT: p }) }).then(() => 0, (e: { code: number }) => e.code);
    expect(await probe(port)).toBe(0);
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    expect(await probe(String(closed))).toBe(1);

    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    expect(child.output()).not.toMatch(/blocked module/);
    const ch = await openClickHouse(config.clickhouse);
    try {
      expect(await auditCostRows(ch)).toEqual({ n: 1_000, offsets: 1_000, ids: 1_000 });
    } finally {
      await ch.close();
    }
  }, 240_000);
});

describe('the compiled worker on a ClickHouse server never loads chdb', () => {
  // No ClickHouse server runs here: an HTTP endpoint stands in for one and records the queries.
  // It answers every one with an empty result, so the worker goes as far as its migrations
  // (it waits there for a migration lock the empty answers never grant): past the client
  // factory, which is where chdb used to be imported.
  let server: Server;
  const queries: string[] = [];
  let chUrl: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        queries.push(`${decodeURIComponent(req.url ?? '')} ${body}`); // the database is in the URL, the SQL in either
        res.writeHead(200, { 'content-type': 'text/plain', 'x-clickhouse-summary': '{}' });
        res.end('');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    chUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const env = (id: string, extra: Record<string, string>) => ({
    BLOCKED_MODULES: `${DEV_ONLY},chdb`,
    KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6380',
    KAFKA_TOPIC_PREFIX: `${id}.`,
    INGEST_GROUP_ID: `${id}-group`,
    INGEST_EVENT_TYPES: 'cost_metrics',
    DLQ_QUEUE_PREFIX: id,
    METRICS_PORT: '0',
    METRICS_HOST: '127.0.0.1',
    ...extra,
  });

  it('with CLICKHOUSE_URL set, it starts where chdb cannot load', async () => {
    const id = uniqueId('nochdb');
    const child = startCompiledWorker(env(id, { CLICKHOUSE_URL: `${chUrl}/${id}` }));
    children.push(child);
    await Promise.race([
      waitFor('the worker at its migrations on the server', async () => queries.some((q) => q.includes(`database=${id}`) && /schema_migrations/.test(q)), 60_000, 100),
      child.exit.then((code) => {
        throw new Error(`the worker exited (${code}): ${child.output()}`);
      }),
    ]);
    expect(queries.some((q) => q.includes(`CREATE DATABASE IF NOT EXISTS ${id}`))).toBe(true);
    expect(child.output()).not.toMatch(/blocked module|chdb/i);
    expect(child.proc.exitCode).toBe(null);
  }, 120_000);

  it('without CLICKHOUSE_URL, the same worker does load chdb (and fails here, where it is blocked)', async () => {
    const id = uniqueId('chdb');
    const child = startCompiledWorker(env(id, { CHDB_PATH: mkdtempSync(join(tmpdir(), 'ingest-blocked-')) }));
    children.push(child);
    expect(await child.exit).toBe(1);
    expect(child.output()).toMatch(/blocked module \(block-modules\.mjs\): import of chdb\/connection/);
  }, 120_000);
});
