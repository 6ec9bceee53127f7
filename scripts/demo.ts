/**
 * The main job, for a first look: a worker consuming every event type into ClickHouse,
 * demo events of every type flowing through the real Kafka broker, then a report of what
 * landed and where to look. Keeps streaming until Ctrl-C (or exits after the report with --once).
 * Configuration comes from the environment like the worker's (docs/configuration.md).
 */
import { randomUUID } from 'node:crypto';
import { IngestWorker } from '../consumers/worker.js';
import { ConfigError, loadConfig } from '../lib/config.js';
import { EvolutionLogger } from '../producers/evolution-logger.js';
import { IngestProducer } from '../producers/ingest-producer.js';
import { eventTypes } from '../schemas/index.js';
import { queryCostHourly, queryFitnessTrajectory, queryLlmCostByModel, queryPerformanceP95 } from '../sql/queries.js';
import { redactUrl } from '../lib/secrets.js';

const once = process.argv.includes('--once');
let config;
try {
  config = loadConfig(process.env, { consumer: { createTopics: true } });
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
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

const worker = await IngestWorker.start(config);
const opts = { brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix };
const sdk = await IngestProducer.connect(opts);
const logger = await EvolutionLogger.connect(opts);
const runId = `run_demo_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;

async function emitRound(): Promise<void> {
  const b = metricsBatch(Date.now());
  await Promise.all([sdk.emitCostMetrics(b.cost), sdk.emitPerformanceMetrics(b.perf), sdk.emitResourceMetrics(b.resource), sdk.emitQualityMetrics(b.quality)]);
}

console.log('demo: emitting events of every type through Kafka…');
for (let i = 0; i < 5; i++) await emitRound();
await evolutionRun(logger, runId);
await new Promise((r) => setTimeout(r, config.batch.maxWaitMs + 1_500));

const counts: Record<string, number> = {};
for (const t of eventTypes) {
  const rs = await worker.clickhouse.query({ query: `SELECT count() AS n FROM ${t.table}`, format: 'JSONEachRow' });
  counts[t.table] = Number(((await rs.json()) as Array<{ n: number }>)[0]?.n ?? 0);
}
console.log('\nrows landed per table (ClickHouse database %s, %s):', config.clickhouse.database, (config.clickhouse.url ? redactUrl(config.clickhouse.url) : undefined) ?? `embedded chDB at ${config.clickhouse.dataPath}`);
console.table(counts);
const hourly = await queryCostHourly(worker.clickhouse, { customerId: customers[0]!, start: new Date(Date.now() - 86_400_000), end: new Date(Date.now() + 3_600_000) });
console.log('queryCostHourly (customer %s):', customers[0]);
console.table(hourly);
console.log('queryPerformanceP95:', await queryPerformanceP95(worker.clickhouse, { customerId: customers[0]!, serviceId: services[0]!, hours: 24 }));
console.log('queryFitnessTrajectory (%s):', runId);
console.table(await queryFitnessTrajectory(worker.clickhouse, runId));
console.log('queryLlmCostByModel:');
console.table(await queryLlmCostByModel(worker.clickhouse));
console.log(`
where to look:
  metrics     ${worker.metricsUrl}/metrics   (health: /healthz, readiness: /readyz)
  Prometheus  scrape config deploy/prometheus/prometheus.yml, alerts deploy/prometheus/alerts.yml
  dashboards  deploy/grafana/dashboards/*.json
  dead letters  npm run dlq -- list
  queries     stop the demo, then: npm run query -- fitness-trajectory --run-id ${runId}
              (the embedded engine belongs to one process; with CLICKHOUSE_URL you can query while it runs)
`);

if (once) {
  await sdk.close();
  await logger.close();
  await worker.stop();
  const missing = Object.entries(counts).filter(([, n]) => n === 0);
  if (missing.length > 0) {
    console.error(`demo: no rows in ${missing.map(([t]) => t).join(', ')}`);
    process.exit(1);
  }
  process.exit(0);
}
console.log('streaming demo metrics every second; Ctrl-C stops the producer and the worker cleanly.');
const timer = setInterval(() => void emitRound().catch((err) => console.error('emit failed', err)), 1_000);
const stop = async () => {
  clearInterval(timer);
  await sdk.close();
  await logger.close();
  await worker.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
