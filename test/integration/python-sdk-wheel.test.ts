import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { countRows, createTopics, queryRows, testConfig, uniqueId, waitFor } from '../helpers/stack.js';

/**
 * The Python SDK as a user gets it: the wheel is built from producers/python, installed into a
 * fresh virtual environment (over Debian's /usr/bin/python3 with --system-site-packages, for its
 * confluent-kafka and avro: PyPI is not reachable here, hence --no-deps), and the
 * specification's own example scripts (test/fixtures/spec-python, verbatim) run with only their
 * import lines changed (producers/python/tests/run_spec_example.py), against the real broker and
 * a real worker with embedded chDB. Nothing closes or flushes: the events leave at exit.
 *
 *  1. Inserts land: the four metrics rows with the example's values; ping() is true.
 *  2. The evolution example (plus the lifecycle's pareto front, agent action and run update)
 *     lands in all seven evolution tables.
 *  3. The metrics example runs again, its inserts on topics no worker reads, so its queries see
 *     exactly the rows of step 1: through the worker's query endpoint (QUERY_WORKER_URL) and
 *     through ClickHouse's HTTP interface (CLICKHOUSE_URL, here a stand-in that hands the SQL and
 *     its bound parameters to the worker's engine). Every query_* result equals the package's
 *     own SQL run directly on the worker's engine, and the lines the example prints are what
 *     that SQL gives.
 */
const PYTHON = process.env.INGEST_PYTHON ?? '/usr/bin/python3';
const REPO = join(import.meta.dirname, '../..');
const RUNNER = join(REPO, 'producers/python/tests/run_spec_example.py');
const EXAMPLES = join(REPO, 'test/fixtures/spec-python');
const CUSTOMER = '123e4567-e89b-12d3-a456-426614174000';
const SERVICE = '456e7890-e89b-12d3-a456-426614174000';

type Json = Record<string, any>;
interface Run {
  stdout: string;
  stderr: string;
  results: { call: string; args: unknown[]; kwargs: Json; result: any }[];
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000, env: opts.env ?? process.env, cwd: opts.cwd });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/**
 * ClickHouse's HTTP interface, as much of it as the SDK uses: GET /ping, and POST / with the SQL
 * as the body, `param_<name>` query parameters bound to its `{name:Type}` placeholders, and
 * `default_format`. The statement runs on the worker's engine (chDB has no server of its own).
 */
function clickhouseHttp(client: ClickHouseClient, seen: { sql: string; params: Record<string, string> }[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/ping') return void res.end('Ok.\n');
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      const params: Record<string, string> = {};
      for (const [k, v] of url.searchParams) if (k.startsWith('param_')) params[k.slice(6)] = v;
      seen.push({ sql: body, params });
      try {
        const rs = await client.query({ query: body, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
        res.end(await rs.text());
      } catch (err) {
        res.statusCode = 500;
        res.end(String(err));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

describe('Python SDK wheel in a fresh virtual environment runs the specification examples', () => {
  const config = testConfig({ kafka: { topicPartitions: 1 }, metrics: { queryEndpoint: true } });
  const tmp = mkdtempSync(join(tmpdir(), 'py-wheel-'));
  const venvPython = join(tmp, 'venv/bin/python');
  let worker: IngestWorker;
  let shim: { server: Server; url: string };
  const shimSeen: { sql: string; params: Record<string, string> }[] = [];
  let packageSql: Record<string, string>;

  const env = (extra: Record<string, string>): NodeJS.ProcessEnv => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KAFKA_|CLICKHOUSE_|QUERY_|INGEST_|METRICS_|PYTHON)/.test(k)));
    return { ...base, KAFKA_BROKERS: config.kafka.brokers.join(','), ...extra };
  };
  /** Runs an example asynchronously: the worker and the stand-in server answer it from this process. */
  const example = async (name: string, extra: Record<string, string>, ...flags: string[]): Promise<Run> => {
    const child = spawn(venvPython, [RUNNER, join(EXAMPLES, name), ...flags], { env: env(extra), cwd: tmp });
    const r = { stdout: '', stderr: '', status: null as number | null };
    child.stdout.on('data', (c) => (r.stdout += c));
    child.stderr.on('data', (c) => (r.stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    r.status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    expect(r.status, `${name} exited ${r.status}: ${r.stderr}`).toBe(0);
    expect(r.stderr).not.toMatch(/not delivered|Traceback/);
    const last = r.stdout.trim().split('\n').at(-1)!;
    expect(last.startsWith('RESULTS ')).toBe(true);
    return { stdout: r.stdout, stderr: r.stderr, results: JSON.parse(last.slice('RESULTS '.length)) };
  };

  beforeAll(async () => {
    // Build from a copy, so the source tree gets no build/ or egg-info.
    const src = join(tmp, 'src-copy');
    cpSync(join(REPO, 'producers/python'), src, { recursive: true, filter: (p) => !/(\/build|\.egg-info|__pycache__|\/tests)$/.test(p) });
    run(PYTHON, ['-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '-q', src, '-w', join(tmp, 'dist')]);
    const wheels = readdirSync(join(tmp, 'dist')).filter((f) => f.endsWith('.whl'));
    expect(wheels).toHaveLength(1);
    run(PYTHON, ['-m', 'venv', '--system-site-packages', join(tmp, 'venv')]);
    run(venvPython, ['-m', 'pip', 'install', '-q', '--no-deps', '--no-index', join(tmp, 'dist', wheels[0]!)]);
    packageSql = JSON.parse(run(venvPython, ['-c', 'import json, ingest_sdk.queries as q; print(json.dumps(q.SQL))'], { cwd: tmp }));
    worker = await IngestWorker.start(config);
    shim = await clickhouseHttp(worker.clickhouse, shimSeen);
  }, 300_000);
  afterAll(async () => {
    shim?.server.close();
    await worker?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('inserts land, ping is true, query_* equal the SQL run directly, the evolution calls fill all seven tables', async () => {
    const viaWorker = { KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix, QUERY_WORKER_URL: worker.metricsUrl };

    // 1. The metrics examples, consumed by the worker.
    const first = await example('metrics_client.py', viaWorker);
    expect(first.stdout).toContain('✅ ClickHouse connected!');
    expect(first.results.find((r) => r.call === 'ping')!.result).toBe(true);
    const check = await example('metrics_connection_check.py', viaWorker);
    expect(check.stdout).toContain('✅ ClickHouse connected');
    expect(check.stdout).not.toContain('❌');
    for (const table of ['cost_metrics_ts', 'performance_metrics_ts', 'resource_metrics_ts', 'quality_metrics_ts']) {
      await waitFor(`1 row in ${table}`, async () => (await countRows(worker.clickhouse, table)) === 1, 60_000);
    }
    const [cost] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM cost_metrics_ts');
    expect(cost).toMatchObject({ customer_id: CUSTOMER, cloud_provider: 'aws', instance_id: 'i-1234567', cost_per_hour: 0.192, utilization_percent: 45.5 });
    const [perf] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM performance_metrics_ts');
    expect(perf).toMatchObject({ service_id: SERVICE, model_name: 'llama-2-70b', latency_ms: 245.3, batch_size: 8, total_tokens: 450 });
    const [res] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM resource_metrics_ts');
    expect(res).toMatchObject({ instance_id: 'i-gpu-001', gpu_utilization: 92.5, gpu_memory_used_mb: 38400 });
    const [qual] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM quality_metrics_ts');
    expect(qual).toMatchObject({ model_name: 'gpt-4', overall_quality_score: 0.91, latency_ms: 1250 });

    // 2. The evolution example, then the lifecycle's remaining calls.
    await example('evolution_logging.py', { KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix }, '--lifecycle');
    const evolutionTables = { evolution_run_updates: 2, generations: 1, individuals: 1, pareto_fronts: 2, code_lineages: 1, llm_logs: 1, agent_actions: 1 };
    expect(Object.keys(evolutionTables).sort()).toEqual(eventTypes.map((t) => t.table).filter((t) => !t.endsWith('_ts')).sort());
    for (const [table, n] of Object.entries(evolutionTables)) {
      await waitFor(`${n} rows in ${table}`, async () => (await countRows(worker.clickhouse, table)) === n, 60_000);
    }
    const [runRow] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM evolution_runs');
    expect(runRow).toMatchObject({ run_id: 'run_12345', task_name: 'circle_packing', status: 'completed', total_generations: 10, population_size: 20, cluster_type: 'local' });
    expect(JSON.parse(runRow!.config)).toEqual({ evolution: { num_generations: 10, pop_size: 20 }, llm: { model: 'claude-3-5-sonnet' } });
    const [gen] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM generations');
    expect(gen).toMatchObject({ run_id: 'run_12345', generation: 5, task_name: 'circle_packing', best_score: 0.95, total_cost: 1.25 });
    const [ind] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM individuals');
    expect(ind).toMatchObject({ individual_id: 'ind_001', parent_id: 'ind_parent', is_pareto: true, api_cost: 0.05, metrics: '{"accuracy":0.95,"size":1024}' });
    const [lin] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM code_lineages');
    expect(lin).toMatchObject({ child_id: 'ind_001', fitness_delta: 0.05, edit_summary: 'Optimized loop algorithm' });
    const [llm] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM llm_logs');
    expect(llm).toMatchObject({ model: 'claude-3-5-sonnet-20241022', messages: '[{"role":"user","content":"..."}]', cost: 0.01, execution_time: 2.5 });
    const [act] = await queryRows<Json>(worker.clickhouse, 'SELECT * FROM agent_actions');
    expect(act).toMatchObject({ action_type: 'job_completed', run_id: 'run_12345' });

    // 3. The queries see exactly the rows of step 1: the second run's inserts go to topics no worker reads.
    const unread = uniqueId('unread');
    await createTopics({ ...config, kafka: { ...config.kafka, topicPrefix: `${unread}.` } }, ['cost_metrics', 'performance_metrics', 'resource_metrics', 'quality_metrics']);
    const throughWorker = await example('metrics_client.py', { KAFKA_TOPIC_PREFIX: `${unread}.`, QUERY_WORKER_URL: worker.metricsUrl });
    const throughHttp = await example('metrics_client.py', { KAFKA_TOPIC_PREFIX: `${unread}.`, CLICKHOUSE_URL: `${shim.url}/${config.clickhouse.database}`, QUERY_WORKER_URL: 'http://127.0.0.1:1' });
    expect(shimSeen.map((s) => s.sql).sort()).toEqual(Object.values(packageSql).sort());
    for (const s of shimSeen) expect(s.sql).not.toContain(CUSTOMER); // values are parameters, never SQL text

    // The package's SQL on the worker's engine, with the setting the SDK sends (counts as JSON numbers).
    const direct = async (name: string, params: Record<string, unknown>) =>
      (await worker.clickhouse.query({ query: packageSql[name]!, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<Json>();
    for (const r of [throughWorker, throughHttp]) {
      const got = Object.fromEntries(r.results.map((x) => [x.call, x]));
      expect(got.ping!.result).toBe(true);
      expect(r.stdout).toContain('✅ ClickHouse connected!');

      const costCall = got.query_cost_hourly!;
      const startMs = Date.parse(`${costCall.kwargs.start_date}`);
      const endMs = Date.parse(`${costCall.kwargs.end_date}`);
      // The example passes naive local datetimes; the runner's TZ is the test process's.
      const costRows = await direct('cost-hourly', { customerId: CUSTOMER, startMs, endMs });
      expect(costRows).toHaveLength(1);
      expect(costCall.result).toEqual(costRows.map((row) => ({ ...row, hour: `${String(row.hour).replace(' ', 'T')}+00:00` })));
      expect(r.stdout).toContain(`${String(costRows[0]!.hour)}+00:00: $${Number(costRows[0]!.total_cost).toFixed(2)}`);

      const [p] = await direct('performance-p95', { customerId: CUSTOMER, serviceId: SERVICE, seconds: 86_400 });
      expect(got.query_performance_p95!.result).toEqual({
        p50_latency_ms: p!.q[0], p95_latency_ms: p!.q[1], p99_latency_ms: p!.q[2], avg_latency_ms: p!.avg_latency_ms,
        max_latency_ms: p!.max_latency_ms, total_requests: p!.total_requests, total_tokens: p!.total_tokens, avg_throughput_tokens_per_sec: p!.avg_tp,
      });
      expect(p!.total_requests).toBe(1);
      expect(r.stdout).toContain(`P95 Latency: ${Number(p!.q[1]).toFixed(2)}ms\nTotal Requests: 1\n`);

      const [u] = await direct('resource-utilization', { customerId: CUSTOMER, instanceId: 'i-gpu-001', seconds: 86_400 });
      expect(got.query_resource_utilization!.result).toEqual(u);
      expect(r.stdout).toContain(`Avg GPU Util: ${Number(u!.avg_gpu_utilization).toFixed(1)}%\nMax GPU Util: ${Number(u!.max_gpu_utilization).toFixed(1)}%\n`);
      expect(u!.avg_gpu_utilization).toBe(92.5);

      const trends = await direct('quality-trends', { customerId: CUSTOMER, serviceId: SERVICE, seconds: 86_400 });
      expect(trends).toHaveLength(1);
      expect(got.query_quality_trends!.result).toEqual(trends.map((row) => ({ ...row, hour: `${String(row.hour).replace(' ', 'T')}+00:00` })));
      expect(r.stdout).toContain(`${String(trends[0]!.hour)}+00:00: Quality=${Number(trends[0]!.avg_quality).toFixed(2)}, Hallucinations=0`);
    }
    // Step 3's inserts were delivered (to the unread topics) and never reached the tables.
    expect(await countRows(worker.clickhouse, 'cost_metrics_ts')).toBe(1);
  });
});
