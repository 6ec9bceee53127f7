import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { prometheusBinary, readYaml } from '../helpers/prometheus.js';
import { uniqueId, waitFor } from '../helpers/stack.js';

/**
 * The main job as its users watch it, run as they run it (scripts/demo.ts in its own process, its
 * stdout a pipe): its Prometheus scrapes the worker's lag series and has the project's alert rules
 * loaded (read back through Prometheus' HTTP API); the live view falls back to plain log lines;
 * `npm run query` works while the demo's worker owns the embedded engine, through the worker's
 * query endpoint, and says so; SIGTERM stops the worker and Prometheus.
 */
const root = join(import.meta.dirname, '..', '..');
const id = uniqueId('demo');
const chdbPath = mkdtempSync(join(tmpdir(), 'ingest-demo-chdb-'));
let demo: ChildProcess | undefined;
let out = '';
let exited: Promise<number | null>;

const env = {
  ...process.env,
  KAFKA_TOPIC_PREFIX: `${id}.`,
  INGEST_GROUP_ID: `${id}-group`,
  DLQ_QUEUE_PREFIX: id,
  CHDB_PATH: chdbPath,
  METRICS_PORT: '0',
  METRICS_HOST: '127.0.0.1',
  PROMETHEUS_PORT: '0',
  BATCH_MAX_WAIT_MS: '300',
  // The demo's own default (scripts/demo.sh): what a user sees on the first screen.
  LOG_LEVEL: 'warn',
};

/** `npm run query -- …` as a user types it (tsx cli/query.ts), with the demo's data directory. */
function query(args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/query.ts', ...args], { cwd: root, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const urlAfter = (label: RegExp) => {
  const m = new RegExp(`${label.source}\\s+(http://127\\.0\\.0\\.1:\\d+)`).exec(out);
  return m?.[1];
};

beforeAll(async () => {
  prometheusBinary(); // fails first, with the install hint, when the package is missing
  demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  demo.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  exited = new Promise((r) => demo!.once('exit', (code) => r(code)));
  await waitFor('the demo to print where to look and start streaming', async () => /streaming demo metrics/.test(out) || (demo!.exitCode !== null ? Promise.reject(new Error(out)) : false), 240_000, 250);
}, 300_000);

afterAll(async () => {
  if (demo && demo.exitCode === null) {
    demo.kill('SIGKILL');
    await exited;
  }
  rmSync(chdbPath, { recursive: true, force: true });
});

describe('scripts/demo.ts (the main job) while it streams', () => {
  it('its first screen has no stack trace: a broker starting up (coordinator loading, rebalancing) is not an error', () => {
    const firstScreen = out.slice(0, out.indexOf('streaming demo metrics'));
    expect(firstScreen.length).toBeGreaterThan(0);
    expect(firstScreen).not.toMatch(/"stack"|\n\s+at [^\n]+:\d+:\d+\)?\n/);
    expect(firstScreen).not.toMatch(/Crash: /);
  });

  it('prints Prometheus links that open: the ingest-lag graph by topic and the alerts page', async () => {
    const graph = /ingest lag\s+(\S+)/.exec(out)?.[1];
    const alerts = /alerts\s+(\S+)/.exec(out)?.[1];
    expect(graph).toBeDefined();
    const u = new URL(graph!);
    expect(u.pathname).toMatch(/^(\/classic)?\/graph$/); // Debian's package serves only the classic UI
    expect(u.searchParams.get('g0.expr')).toBe('sum by (topic) (ingest_consumer_lag_messages{job="ingest-workers"})');
    expect(alerts).toMatch(new RegExp(`^${u.origin}(/classic)?/alerts$`));
    for (const link of [graph!, alerts!]) expect((await fetch(link)).status, link).toBe(200);
    const names = (readYaml(join(root, 'deploy/prometheus/alerts.yml')) as { groups: Array<{ rules: Array<{ alert?: string }> }> }).groups.flatMap((g) => g.rules.map((r) => r.alert).filter(Boolean));
    const page = await (await fetch(alerts!)).text();
    expect(names.filter((n) => !page.includes(n!)), 'alerts missing from the alerts page').toEqual([]);
  });

  it("its Prometheus has the worker's lag series for every topic and the project's alert rules loaded", async () => {
    const prom = urlAfter(/alerts/)!;
    const api = async (path: string) => {
      const body = (await (await fetch(`${prom}/api/v1/${path}`)).json()) as { status: string; data: any };
      expect(body.status).toBe('success');
      return body.data;
    };
    const topics = eventTypes.map((t) => `${id}.${t.name}`).sort();
    const series = await waitFor(
      'lag series of every topic in Prometheus',
      async () => {
        const d = await api(`query?${new URLSearchParams({ query: `count by (topic) (ingest_consumer_lag_messages{job="ingest-workers", group="${id}-group"})` })}`);
        const got = (d.result as Array<{ metric: { topic: string } }>).map((r) => r.metric.topic).sort();
        return got.length === topics.length ? got : false;
      },
      90_000,
      500,
    );
    expect(series).toEqual(topics);
    const groups = ((readYaml(join(root, 'deploy/prometheus/alerts.yml')) as { groups: Array<{ name: string; rules: unknown[] }> }).groups);
    const rules = await api('rules');
    expect((rules.groups as Array<{ name: string }>).map((g) => g.name)).toEqual(groups.map((g) => g.name));
    const loaded = (rules.groups as Array<{ rules: Array<{ health: string; lastError?: string }> }>).flatMap((g) => g.rules);
    expect(loaded.length).toBe(groups.reduce((n, g) => n + g.rules.length, 0));
    expect(loaded.filter((r) => r.health === 'err')).toEqual([]);
    const targets = await api('targets');
    const worker = urlAfter(/metrics/)!;
    expect((targets.activeTargets as Array<{ scrapeUrl: string; labels: { job: string } }>).find((t) => t.labels.job === 'ingest-workers')?.scrapeUrl).toBe(`${worker}/metrics`);
  });

  it('stdout is not a terminal: the live view logs plain status lines (rows/s, lag, freshness, dead letters)', async () => {
    const line = await waitFor('a live status line', async () => /^live \d\d:\d\d:\d\d {2}landed [\d,.]+ rows\/s \([\d,]+ rows\) \| lag [\d,]+ msgs \| freshness .+ \| dead letters \d+ \(poison \d+\)$/m.exec(out)?.[0], 60_000, 250);
    expect(line).toBeDefined();
    expect(out).not.toMatch(/\x1b\[2K/);
  });

  it('npm run query works while the worker owns the embedded engine, through its query endpoint, and says so', async () => {
    const worker = urlAfter(/metrics/)!;
    const runId = /--run-id (run_demo_\d+)/.exec(out)![1]!;
    const table = query(['fitness-trajectory', '--run-id', runId, '--worker', worker]);
    expect(table.stderr).toContain(`query: through the worker at ${worker} (embedded chDB at ${chdbPath}, database ingest)`);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^generation\s+best_score\s+avg_score\s+pareto_size\s+total_cost$/);
    expect(lines).toHaveLength(2 + 5); // header, rule, 5 generations
    expect(table.stdout).not.toContain('(index)');

    // Found without --worker, from METRICS_PORT, as the demo's "where to look" says.
    const json = query(['llm-cost-by-model', '--format', 'json'], { METRICS_PORT: new URL(worker).port });
    expect(json.stderr).toContain(`through the worker at ${worker}`);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as Array<{ model: string; calls: number }>;
    expect(rows.reduce((n, r) => n + r.calls, 0)).toBe(5 * 8); // 5 generations × 8 LLM calls

    // The engine is the worker's: opening it directly is refused, and the CLI says how to get through.
    const direct = query(['llm-cost-by-model'], { METRICS_PORT: '1' });
    expect(direct.code).toBe(1);
    expect(direct.stderr).toMatch(/another process \(a worker\?\) most likely owns it; query through it with --worker/);

    const bad = query(['performance-p95', '--customer-id', 'x', '--service-id', 'y', '--hours', '1', '--worker', worker]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/customerId must be a UUID/);
    const res = await fetch(`${worker}/query/performance-p95?customer-id=00000000-0000-4000-8000-000000000000&service-id=00000000-0000-4000-8000-000000000000&hours=-1`);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/hours must be a finite number greater than 0/);
  });

  it('SIGTERM stops the producer, the worker and Prometheus, and the demo exits 0', async () => {
    const prom = urlAfter(/alerts/)!;
    const worker = urlAfter(/metrics/)!;
    demo!.kill('SIGTERM');
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 90_000))])).toBe(0);
    expect(out).toMatch(/demo: SIGTERM: stopping the producer, the worker and Prometheus…\ndemo: stopped/);
    const down = async (url: string) => fetch(url, { signal: AbortSignal.timeout(2_000) }).then(() => false, () => true);
    expect(await down(`${prom}/-/ready`)).toBe(true);
    expect(await down(`${worker}/healthz`)).toBe(true);
  }, 120_000);
});
