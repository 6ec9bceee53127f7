import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { EvolutionLogger, IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { sampleEvents } from '../fixtures/events.js';
import { expectSameRows } from '../helpers/compare-rows.js';
import { countRows, queryRows, testConfig, waitFor } from '../helpers/stack.js';

/**
 * The Python SDK end to end: the same calls made through the TS SDK and then through the Python
 * SDK (producers/python, spawned with Debian's /usr/bin/python3) land through one worker, and
 * every table holds, row by row, the same rows from each (values, Kafka topic and partition;
 * only the offsets differ). 3 partitions, so a partitioner that is not the Java client's shows.
 */
const PYTHON = process.env.INGEST_PYTHON ?? '/usr/bin/python3';
const RUNNER = join(import.meta.dirname, '../../producers/python/tests/produce_calls.py');
const N = 9;

interface Call {
  method: string;
  events?: Record<string, unknown>[];
  kwargs?: Record<string, unknown>;
}

/** The calls, with every auto field given (ids, times), so both SDKs send the same events. */
function makeCalls(): { calls: Call[]; rows: Record<string, number> } {
  const base = Date.now() - 3_600_000;
  const at = (i: number) => base + i * 1_000 + 0.4; // fractional ms: both SDKs round
  const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const with_ = (name: string, f: (e: Record<string, unknown>, i: number) => Record<string, unknown>) => sampleEvents(name, N, 11).map((e, i) => f({ ...e }, i));
  const calls: Call[] = [];
  for (const name of ['cost_metrics', 'performance_metrics', 'resource_metrics', 'quality_metrics']) {
    calls.push({ method: `insert_${name}`, events: with_(name, (e, i) => ({ ...e, timestamp: at(i) })) });
  }
  for (const [i, r] of sampleEvents('evolution_runs', 3, 11).entries()) {
    calls.push({ method: 'log_evolution_run', kwargs: { run_id: r.run_id, task_name: r.task_name, config: { evolution: { num_generations: 3, mutation_rate: 0.000025, tags: ['ünï', '🚀'] } }, population_size: r.population_size, cluster_type: r.cluster_type, database_path: r.database_path, start_time: at(i) } });
    calls.push({ method: 'update_evolution_run', kwargs: { run_id: r.run_id, status: 'completed', total_generations: 3, end_time: at(i + 100) } });
  }
  for (const e of with_('generations', (e, i) => ({ ...e, timestamp: at(i), task_name: undefined }))) calls.push({ method: 'log_generation', kwargs: JSON.parse(JSON.stringify(e)) });
  for (const e of with_('individuals', (e, i) => ({ ...e, timestamp: at(i), metrics: { ...(e.metrics as object), ratio: 1 / 3, big: 1e21, one: 1 } }))) calls.push({ method: 'log_individual', kwargs: e });
  for (const e of with_('code_lineages', (e, i) => ({ ...e, timestamp: at(i) }))) calls.push({ method: 'log_lineage', kwargs: e });
  for (const e of with_('llm_logs', (e, i) => ({ ...e, id: uuid(i), timestamp: at(i), response: `tab\tnl\nquote" ünïcödé 🚀 ${i}` }))) calls.push({ method: 'log_llm_interaction', kwargs: e });
  for (const e of with_('agent_actions', (e, i) => ({ ...e, id: uuid(100 + i), timestamp: at(i) }))) calls.push({ method: 'log_agent_action', kwargs: e });
  const members = sampleEvents('pareto_fronts', 4, 11).map(({ individual_id, fitness_score, combined_score, metrics }) => ({ individual_id, fitness_score, combined_score, metrics }));
  calls.push({ method: 'log_pareto_front', kwargs: { run_id: 'run_sample_0', generation: 2, timestamp: at(0), members } });
  const rows = { cost_metrics_ts: N, performance_metrics_ts: N, resource_metrics_ts: N, quality_metrics_ts: N, evolution_run_updates: 6, generations: N, individuals: N, code_lineages: N, llm_logs: N, agent_actions: N, pareto_fronts: 4 };
  return { calls, rows };
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

describe('Python SDK: the same calls as the TS SDK give the same rows', () => {
  const config = testConfig({ kafka: { topicPartitions: 3 } });
  let worker: IngestWorker;

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
  });
  afterAll(async () => {
    await worker?.stop();
  });

  it('every table, row by row, with the same Kafka partition', async () => {
    const { calls, rows } = makeCalls();
    expect(Object.keys(rows).sort()).toEqual(eventTypes.map((t) => t.table).sort());

    // 1. The TS SDK.
    const opts = { brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix };
    const sdk = await IngestProducer.connect(opts);
    const logger = await EvolutionLogger.connect(opts);
    try {
      for (const call of calls) {
        if (call.events) await (sdk as any)[camel(call.method.replace('insert_', 'emit_'))](call.events);
        else await (logger as any)[camel(call.method)](call.kwargs);
      }
    } finally {
      await sdk.close();
      await logger.close();
    }
    for (const [table, n] of Object.entries(rows)) await waitFor(`${n} TS rows in ${table}`, async () => (await countRows(worker.clickhouse, table)) === n, 90_000);
    const tsRows: Record<string, Record<string, unknown>[]> = {};
    for (const table of Object.keys(rows)) tsRows[table] = await queryRows(worker.clickhouse, `SELECT * FROM ${table}`);

    // 2. The Python SDK, the same calls.
    const file = join(mkdtempSync(join(tmpdir(), 'py-sdk-')), 'calls.json');
    writeFileSync(file, JSON.stringify(calls));
    const py = spawnSync(PYTHON, [RUNNER, file], {
      env: { ...process.env, KAFKA_BROKERS: config.kafka.brokers.join(','), KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(py.status, `python exited ${py.status}: ${py.stderr}`).toBe(0);
    const total = Object.values(rows).reduce((a, b) => a + b, 0);
    expect(JSON.parse(py.stdout.trim().split('\n').at(-1)!)).toEqual({ acknowledged: total });
    for (const [table, n] of Object.entries(rows)) await waitFor(`${n} Python rows in ${table}`, async () => (await countRows(worker.clickhouse, table)) === 2 * n, 90_000);

    // 3. Row by row: the rows that are not the TS SDK's are the Python SDK's; all but the offset
    // equal, and a run event's event_time, which is when the SDK sent it (no call sets it).
    const dropOffset = ({ _kafka_offset, event_time, ...rest }: Record<string, unknown>) => rest;
    for (const table of Object.keys(rows)) {
      const seen = new Set(tsRows[table]!.map((r) => `${r._kafka_partition}/${r._kafka_offset}`));
      const all = await queryRows<Record<string, unknown>>(worker.clickhouse, `SELECT * FROM ${table}`);
      const pyRows = all.filter((r) => !seen.has(`${r._kafka_partition}/${r._kafka_offset}`));
      expect(pyRows, table).toHaveLength(rows[table]!);
      expectSameRows(pyRows.map(dropOffset), tsRows[table]!.map(dropOffset), `${table}: Python rows vs TS rows`);
    }
    // The keys spread over the partitions, so an equal partition is not luck.
    const parts = await queryRows<{ n: string }>(worker.clickhouse, 'SELECT uniqExact(_kafka_partition) AS n FROM llm_logs');
    expect(Number(parts[0]!.n)).toBeGreaterThanOrEqual(2);
    // The run's update won over its start in the view, from either SDK's events.
    const runs = await queryRows<{ status: string }>(worker.clickhouse, 'SELECT status FROM evolution_runs');
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
  });
});
