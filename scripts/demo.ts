/**
 * The main job, for a first look: a worker consuming every event type into ClickHouse, a real
 * Prometheus scraping it with the project's scrape config and alert rules, demo events of every
 * type flowing through the real Kafka broker, then a report of what landed and where to look.
 * Keeps streaming with a live view until Ctrl-C or SIGTERM (or, with --once, checks that
 * Prometheus has the worker's lag series and exits); either way it stops what it started.
 *   --once       report, check Prometheus, exit (0 only if every table got rows)
 *   --per-type   the live view adds a line per event type
 * Configuration comes from the environment like the worker's (docs/configuration.md), plus
 * PROMETHEUS_PORT (default 9090; 0 picks a free port).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { formatTable, withIsoTimes } from '../cli/query-format.js';
import { IngestWorker } from '../consumers/worker.js';
import { ConfigError, loadConfig, type Config } from '../lib/config.js';
import { topicName } from '../lib/kafka.js';
import { EvolutionLogger, IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { queryCostHourly, queryFitnessTrajectory, queryLlmCostByModel, queryPerformanceP95 } from '../sql/queries.js';
import { formatLive, LiveView, readSnapshot, type LiveSnapshot } from './live-view.js';
import { PrometheusServer, prometheusBinary, readYaml } from './prometheus-server.js';
import { redactUrl } from '../lib/secrets.js';

const once = process.argv.includes('--once');
const perType = process.argv.includes('--per-type');
// --registry is acted on by scripts/demo.sh (SCHEMA_REGISTRY_URL, INGEST_PRODUCER_WIRE_FORMAT).
const unknownArgs = process.argv.slice(2).filter((a) => a !== '--once' && a !== '--per-type' && a !== '--registry');
if (unknownArgs.length > 0) {
  console.error(`demo: unknown argument(s) ${unknownArgs.join(' ')}; usage: scripts/demo.sh [--once] [--per-type] [--registry]`);
  process.exit(2);
}
const promPort = Number(process.env.PROMETHEUS_PORT ?? 9090);
if (!Number.isInteger(promPort) || promPort < 0 || promPort > 65_535) {
  console.error(`demo: PROMETHEUS_PORT must be a port number (0 picks a free one), got ${JSON.stringify(process.env.PROMETHEUS_PORT)}`);
  process.exit(2);
}
let config: Readonly<Config>;
try {
  // The live view and Prometheus show lag; read it every second, not every 5 s, unless told otherwise.
  // The query endpoint is on (unless QUERY_ENDPOINT says otherwise), so `npm run query` works
  // while the demo's worker owns the embedded engine; without a QUERY_TOKEN it may only listen
  // on loopback, so the demo binds there unless METRICS_HOST is set.
  const env = process.env;
  const metrics = {
    ...(env.LAG_INTERVAL_MS ? {} : { lagIntervalMs: 1_000 }),
    ...(env.QUERY_ENDPOINT ? {} : { queryEndpoint: true }),
    ...(env.METRICS_HOST ? {} : { host: '127.0.0.1' }),
  };
  config = loadConfig(env, { consumer: { createTopics: true }, metrics });
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}

/** Fails early, with a clear message, when something (another Prometheus?) holds the port. */
async function portFree(port: number): Promise<boolean> {
  if (port === 0) return true;
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

const customers = [randomUUID(), randomUUID(), randomUUID()];
const services = [randomUUID(), randomUUID()];
const models = ['llama-2-70b', 'gpt-4', 'claude-3-5-sonnet'];
let tick = 0;

function metricsBatch(now: number) {
  tick++;
  const cost = customers.flatMap((customer_id, c) =>
    ['i-1001', 'i-1002'].map((instance_id, k) => ({
      timestamp: now, customer_id, cloud_provider: ['aws', 'gcp', 'azure'][c]!, service_name: 'ec2', instance_id, instance_type: k ? 'p4d.24xlarge' : 'm5.xlarge',
      region: 'us-east-1', cost_per_hour: k ? 32.77 : 0.192, utilization_percent: 40 + ((tick * 7 + k * 13) % 55), is_spot: k, is_reserved: 0,
    })),
  );
  const perf = Array.from({ length: 20 }, (_, i) => ({
    timestamp: now - i * 10, customer_id: customers[i % 3]!, service_id: services[i % 2]!, service_type: 'vllm', model_name: models[i % 3]!, request_id: randomUUID(),
    latency_ms: 80 + ((tick * 31 + i * 17) % 400), throughput_tokens_per_sec: 120 + (i % 10), gpu_utilization: 70 + (i % 25), kv_cache_utilization: 60 + (i % 30),
    batch_size: 8, prompt_tokens: 150, completion_tokens: 300, total_tokens: 450,
  }));
  const resource = customers.map((customer_id, c) => ({
    timestamp: now, customer_id, instance_id: `i-gpu-00${c}`, instance_type: 'p4d.24xlarge', gpu_index: 0, gpu_utilization: 50 + ((tick * 3 + c * 11) % 50), gpu_memory_used_mb: 38_400,
    gpu_memory_total_mb: 40_960, gpu_temperature: 72, cpu_utilization: 45.2, memory_used_gb: 120.5, memory_total_gb: 1152, network_rx_mbps: 1250, network_tx_mbps: 850,
  }));
  const quality = Array.from({ length: 10 }, (_, i) => ({
    timestamp: now - i * 10, customer_id: customers[i % 3]!, service_id: services[i % 2]!, request_id: randomUUID(), model_name: models[i % 3]!,
    relevance_score: 0.9, coherence_score: 0.95, factuality_score: 0.88, hallucination_detected: i % 7 === 0 ? 1 : 0, toxicity_score: 0.02,
    overall_quality_score: 0.8 + (i % 20) / 100, prompt_hash: `h${i}`, latency_ms: 1250,
  }));
  return { cost, perf, resource, quality };
}

async function evolutionRun(logger: EvolutionLogger, runId: string): Promise<void> {
  await logger.logEvolutionRun({ run_id: runId, task_name: 'circle_packing', config: { evolution: { num_generations: 5, pop_size: 8 } }, population_size: 8, cluster_type: 'local', database_path: `results/${runId}.db` });
  let best = 0.5;
  for (let g = 0; g < 5; g++) {
    const scores = Array.from({ length: 8 }, (_, i) => Math.min(0.99, best + ((i * 37 + g * 11) % 20) / 200));
    const calls: Promise<void>[] = [];
    scores.forEach((fitness_score, i) => {
      const id = `ind_gen${g}_${i}`;
      const parent_id = g === 0 ? '' : `ind_gen${g - 1}_${(i + 3) % 8}`;
      const mutation_type = g === 0 ? 'init' : i % 3 === 0 ? 'crossover' : 'mutate';
      calls.push(logger.logIndividual({ run_id: runId, individual_id: id, generation: g, parent_id, mutation_type, fitness_score, combined_score: fitness_score * 0.95, metrics: { accuracy: fitness_score, size: 512 + i * 64 }, is_pareto: i < 2, api_cost: 0.05, embed_cost: 0.001, novelty_cost: 0.002, code_hash: `h${g}${i}`, code_size: 1024 }));
      calls.push(logger.logLineage({ run_id: runId, child_id: id, parent_id, generation: g, mutation_type, fitness_delta: g === 0 ? 0 : fitness_score - best, edit_summary: 'demo edit' }));
      calls.push(logger.logLlmInteraction({ model: models[i % 3]!, messages: [{ role: 'user', content: `Improve ${parent_id || 'the seed program'}` }], response: 'Here is an improved version…', cost: 0.01 + i / 1000, execution_time: 1.5 + i / 10, metadata: { task: 'circle_packing', generation: g }, run_id: runId }));
    });
    calls.push(logger.logParetoFront({ run_id: runId, generation: g, members: scores.slice(0, 2).map((s, i) => ({ individual_id: `ind_gen${g}_${i}`, fitness_score: s, combined_score: s * 0.95, metrics: { accuracy: s } })) }));
    calls.push(logger.logAgentAction({ action_type: 'job_completed', details: { generation: g }, metadata: { cluster: 'local' }, run_id: runId }));
    await Promise.all(calls);
    best = Math.max(...scores);
    await logger.logGeneration({ run_id: runId, generation: g, num_individuals: 8, best_score: best, avg_score: scores.reduce((a, b) => a + b, 0) / 8, pareto_size: 2, total_cost: 0.45 });
  }
  await logger.updateEvolutionRun({ run_id: runId, status: 'completed', total_generations: 5 });
}

try {
  prometheusBinary();
} catch (err) {
  console.error(`demo: ${(err as Error).message}`);
  process.exit(1);
}
if (!(await portFree(promPort))) {
  console.error(`demo: 127.0.0.1:${promPort} is in use (another Prometheus?); stop it or set PROMETHEUS_PORT`);
  process.exit(1);
}

const worker = await IngestWorker.start(config);
let prom: PrometheusServer | undefined;
// Whatever ends this process (an error included), the Prometheus child must not outlive it.
process.on('exit', () => prom?.killNow());
try {
  prom = await PrometheusServer.start({ workerTarget: new URL(worker.metricsUrl).host, interval: '2s', port: promPort });
} catch (err) {
  console.error(`demo: Prometheus did not start: ${(err as Error).message}`);
  await worker.stop();
  process.exit(1);
}
const opts = { brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix };
const sdk = await IngestProducer.connect(opts);
const logger = await EvolutionLogger.connect(opts);
if (sdk.events.wireFormat === 'confluent') console.log(`wire format: Confluent (00 | schema id | Avro), schemas registered in ${config.schemaRegistry.url}`);
const runId = `run_demo_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;

async function emitRound(): Promise<void> {
  const b = metricsBatch(Date.now());
  await Promise.all([sdk.emitCostMetrics(b.cost), sdk.emitPerformanceMetrics(b.perf), sdk.emitResourceMetrics(b.resource), sdk.emitQualityMetrics(b.quality)]);
}

let stopping: Promise<void> | undefined;
/** Stops what the demo started: producers (flushed), worker (flushed and committed), Prometheus. */
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await sdk.close().catch((err) => console.error('demo: producer close failed', err));
    await logger.close().catch((err) => console.error('demo: logger close failed', err));
    await worker.stop().catch((err) => console.error('demo: worker stop failed', err));
    await prom?.stop().catch((err) => console.error('demo: Prometheus stop failed', err));
  })();
  return stopping;
}

console.log('demo: emitting events of every type through Kafka…');
for (let i = 0; i < 5; i++) await emitRound();
await evolutionRun(logger, runId);
await new Promise((r) => setTimeout(r, config.batch.maxWaitMs + 1_500));

const counts: Array<{ table: string; rows: number }> = [];
for (const t of eventTypes) {
  const rs = await worker.clickhouse.query({ query: `SELECT count() AS n FROM ${t.table}`, format: 'JSONEachRow' });
  counts.push({ table: t.table, rows: Number(((await rs.json()) as Array<{ n: number }>)[0]?.n ?? 0) });
}
const where = config.clickhouse.url ? `ClickHouse at ${redactUrl(config.clickhouse.url)}` : `embedded chDB at ${config.clickhouse.dataPath}`;
console.log(`\nrows landed per table (ClickHouse database ${config.clickhouse.database}, ${where}):`);
console.log(formatTable(counts));
const hourly = await queryCostHourly(worker.clickhouse, { customerId: customers[0]!, start: new Date(Date.now() - 86_400_000), end: new Date(Date.now() + 3_600_000) });
console.log(`\nqueryCostHourly (customer ${customers[0]}):`);
console.log(formatTable(withIsoTimes(hourly, ['hour'])));
console.log('\nqueryPerformanceP95:');
console.log(formatTable(await queryPerformanceP95(worker.clickhouse, { customerId: customers[0]!, serviceId: services[0]!, hours: 24 })));
console.log(`\nqueryFitnessTrajectory (${runId}):`);
console.log(formatTable(await queryFitnessTrajectory(worker.clickhouse, runId)));
console.log('\nqueryLlmCostByModel:');
console.log(formatTable(await queryLlmCostByModel(worker.clickhouse)));

/**
 * The page of Prometheus' web UI that answers: Debian's package ships only the classic UI
 * (/graph redirects to /classic/graph, /alerts is a 404 there), upstream 2.x builds serve both.
 */
async function uiPage(page: string): Promise<string> {
  for (const path of [`/${page}`, `/classic/${page}`]) {
    const ok = await fetch(`${prom!.url}${path}`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.ok, () => false);
    if (ok) return `${prom!.url}${path}`;
  }
  return `${prom!.url}/${page}`;
}
const lagExpr = 'sum by (topic) (ingest_consumer_lag_messages{job="ingest-workers"})';
const graph = `${await uiPage('graph')}?${new URLSearchParams({ 'g0.expr': lagExpr, 'g0.tab': '0', 'g0.range_input': '15m' })}`;
const alertsPage = await uiPage('alerts');
const portEnv = config.metrics.port === 9464 ? '' : `METRICS_PORT=${new URL(worker.metricsUrl).port} `;
console.log(`
where to look:
  ingest lag  ${graph}
  alerts      ${alertsPage}   (rules: deploy/prometheus/alerts.yml; Prometheus API: ${prom.url}/api/v1/)
  metrics     ${worker.metricsUrl}/metrics   (health: /healthz, readiness: /readyz)
  dashboards  deploy/grafana/dashboards/*.json
  dead letters  npm run dlq -- list
  queries     ${portEnv}npm run query -- fitness-trajectory --run-id ${runId}
              (while the demo runs, through the worker's query endpoint ${worker.metricsUrl}/query)
`);

/** Waits until Prometheus has scraped a lag series for every topic and loaded the project's alert rules. */
async function prometheusHasLag(timeoutMs: number): Promise<string> {
  const topics = eventTypes.map((t) => topicName(config.kafka, t.name));
  const groups = ((readYaml(join(import.meta.dirname, '..', 'deploy/prometheus/alerts.yml')) as { groups?: Array<{ name: string }> }).groups ?? []).map((g) => g.name);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const series = await prom!.query(`${lagExpr.replace('sum by (topic) ', 'count by (topic) ')}`);
      const seen = new Set(series.map((s) => s.metric.topic));
      const missing = topics.filter((t) => !seen.has(t));
      const loaded = await prom!.ruleGroups();
      const broken = loaded.flatMap((g) => g.rules.filter((r) => r.health === 'err').map((r) => `${r.name}: ${r.lastError}`));
      const absent = groups.filter((g) => !loaded.some((l) => l.name === g));
      if (missing.length === 0 && absent.length === 0 && broken.length === 0) {
        return `Prometheus has ingest_consumer_lag_messages for all ${topics.length} topics and ${loaded.reduce((n, g) => n + g.rules.length, 0)} rules of ${groups.length} groups loaded`;
      }
      last = [missing.length ? `no lag series yet for ${missing.join(', ')}` : '', absent.length ? `rule groups not loaded: ${absent.join(', ')}` : '', broken.join('; ')].filter(Boolean).join('; ');
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`after ${timeoutMs} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

if (once) {
  let ok = true;
  try {
    console.log(`demo: ${await prometheusHasLag(60_000)}`);
  } catch (err) {
    console.error(`demo: Prometheus check failed: ${(err as Error).message}`);
    ok = false;
  }
  await stopAll();
  const missing = counts.filter((c) => c.rows === 0);
  if (missing.length > 0) {
    console.error(`demo: no rows in ${missing.map((c) => c.table).join(', ')}`);
    ok = false;
  }
  process.exit(ok ? 0 : 1);
}

const view = new LiveView(process.stdout, { logEveryMs: 5_000 });
const types = eventTypes.map((t) => ({ name: t.name, table: t.table, topic: topicName(config.kafka, t.name) }));
console.log(`streaming demo metrics every second; ${view.tty ? 'the line below is live' : 'a status line every 5 s'}${perType ? ', per event type' : ' (--per-type: per event type)'}; Ctrl-C stops the producer, the worker and Prometheus cleanly.`);
const emitter = setInterval(() => void emitRound().catch((err) => console.error('emit failed', err)), 1_000);
// rows/s over the last few seconds, not since start: the oldest of a short window of snapshots.
const history: LiveSnapshot[] = [];
const viewer = setInterval(() => {
  void readSnapshot(worker.metrics, Date.now()).then((snap) => {
    history.push(snap);
    if (history.length > 6) history.shift();
    view.show(formatLive(history.length > 1 ? history[0] : undefined, snap, types, { perType }));
  });
}, 1_000);
worker.onFatal((err) => {
  view.done();
  console.error('demo: the worker stopped on a fatal error', err);
  clearInterval(emitter);
  clearInterval(viewer);
  void stopAll().finally(() => process.exit(1));
});
const stop = (signal: string) => {
  clearInterval(emitter);
  clearInterval(viewer);
  view.done();
  console.log(`demo: ${signal}: stopping the producer, the worker and Prometheus…`);
  void stopAll().then(() => {
    console.log('demo: stopped');
    process.exit(0);
  });
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
// The terminal closed: without a handler Node dies at once and Prometheus would outlive it.
process.on('SIGHUP', () => stop('SIGHUP'));
