import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { EvolutionLogger, IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { sampleEvents } from '../fixtures/events.js';
import { countRows, queryRows, testConfig, waitFor } from '../helpers/stack.js';

const TIME_FIELDS = ['timestamp', 'start_time', 'end_time', 'event_time'];

/** Sample events moved to the last hour, so no table TTL can remove them during the test. */
function recent(typeName: string, n: number): Record<string, any>[] {
  const now = Date.now();
  return sampleEvents(typeName, n, 7).map((e, i) => {
    const out: Record<string, unknown> = { ...e };
    for (const f of TIME_FIELDS) if (typeof out[f] === 'number') out[f] = now - 3_600_000 + i * 1_000;
    return out;
  });
}

describe('every emit…/log… call round-trips through the real broker into its table', () => {
  const config = testConfig();
  let worker: IngestWorker;
  let sdk: IngestProducer;
  let logger: EvolutionLogger;
  const n = 30;

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
    const opts = { brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix };
    sdk = await IngestProducer.connect(opts);
    logger = await EvolutionLogger.connect(opts);
  });
  afterAll(async () => {
    await sdk?.close();
    await logger?.close();
    await worker?.stop();
  });

  const metricCalls: Record<string, (events: any[]) => Promise<void>> = {
    cost_metrics: (e) => sdk.emitCostMetrics(e),
    performance_metrics: (e) => sdk.emitPerformanceMetrics(e),
    resource_metrics: (e) => sdk.emitResourceMetrics(e),
    quality_metrics: (e) => sdk.emitQualityMetrics(e),
  };

  it.each(Object.keys(metricCalls))('%s: every event lands once with its values', async (name) => {
    const type = eventTypes.find((t) => t.name === name)!;
    const events = recent(name, n);
    await metricCalls[name]!(events);
    await waitFor(`${n} rows in ${type.table}`, async () => (await countRows(worker.clickhouse, type.table)) === n);
    // Compare every non-time field of every event with what was stored (order-independent).
    const fields = type.fieldNames.filter((f) => !TIME_FIELDS.includes(f));
    const stored = await queryRows<Record<string, unknown>>(worker.clickhouse, `SELECT ${fields.map((f) => `toString(${f}) AS ${f}`).join(', ')}, toUnixTimestamp64Milli(timestamp) AS ts FROM ${type.table}`);
    const key = (r: Record<string, unknown>) => JSON.stringify(fields.map((f) => String(r[f])));
    const norm = (v: unknown) => (typeof v === 'number' ? String(v) : v);
    const expected = events.map((e) => key(Object.fromEntries(fields.map((f) => [f, norm(e[f])]))));
    expect(stored.map(key).sort()).toEqual(expected.sort());
    expect(stored.map((r) => Number(r.ts)).sort()).toEqual(events.map((e) => e.timestamp).sort());
  });

  it('text survives exactly: tabs, newlines, backslashes, CR, NUL, quotes, unicode', async () => {
    const nasty = 'line1\nline2\ttab \\ backslash \r cr \u0000 nul "quotes" \'single\' ünïcödé 🚀 \\N not null';
    const id = '0b7f6c1e-4c8e-4a57-9a3c-2d1f0e9b8a77';
    await logger.logLlmInteraction({ id, model: 'm\tx', messages: [{ role: 'user', content: nasty }], response: nasty, cost: 0.5, execution_time: 1.25, metadata: { note: nasty } } as any);
    const [row] = await waitFor('the row', async () => {
      const rows = await queryRows<Record<string, string>>(worker.clickhouse, 'SELECT model, response, messages, metadata FROM llm_logs WHERE id = {id:UUID}', { id });
      return rows.length === 1 ? rows : undefined;
    });
    expect(row!.response).toBe(nasty);
    expect(row!.model).toBe('m\tx');
    expect(JSON.parse(row!.messages!)).toEqual([{ role: 'user', content: nasty }]);
    expect(JSON.parse(row!.metadata!)).toEqual({ note: nasty });
  });

  it('evolution logger: runs (with an update), generations, individuals, pareto fronts, lineages, LLM logs and agent actions all land', async () => {
    const run = recent('evolution_runs', 1)[0]!;
    await logger.logEvolutionRun({ run_id: run.run_id, task_name: 'circle_packing', config: { evolution: { num_generations: 3 } }, population_size: 4, cluster_type: 'local', database_path: '/tmp/x.db' });
    const gens = recent('generations', 3).map((g, i) => ({ ...g, run_id: run.run_id, generation: i }));
    const inds: Record<string, any>[] = recent('individuals', 12).map((x, i) => ({ ...x, run_id: run.run_id, generation: i % 3, individual_id: `ind_${i}` }));
    const lineages = recent('code_lineages', 12).map((x, i) => ({ ...x, run_id: run.run_id, child_id: `ind_${i}`, parent_id: i < 4 ? '' : `ind_${i - 4}` }));
    const llm = recent('llm_logs', n);
    const actions = recent('agent_actions', n);
    await Promise.all([
      ...gens.map((g) => logger.logGeneration(g as any)),
      ...inds.map((x) => logger.logIndividual(x as any)),
      ...lineages.map((x) => logger.logLineage(x as any)),
      logger.logParetoFront({ run_id: run.run_id, generation: 2, members: inds.slice(0, 3).map((x) => ({ individual_id: x.individual_id, fitness_score: x.fitness_score, combined_score: x.combined_score, metrics: { accuracy: x.fitness_score } })) }),
      ...llm.map((x) => logger.logLlmInteraction(x as any)),
      ...actions.map((x) => logger.logAgentAction(x as any)),
    ]);
    await logger.updateEvolutionRun({ run_id: run.run_id, status: 'completed', total_generations: 3 });
    const expected: Record<string, number> = { generations: 3, individuals: 12, code_lineages: 12, pareto_fronts: 3, llm_logs: n + 1, agent_actions: n };
    for (const [table, count] of Object.entries(expected)) {
      await waitFor(`${count} rows in ${table}`, async () => (await countRows(worker.clickhouse, table)) === count);
    }
    const runs = await waitFor('the run completed', async () => {
      const rows = await queryRows<{ run_id: string; status: string; total_generations: number; task_name: string }>(
        worker.clickhouse,
        'SELECT run_id, status, total_generations, task_name FROM evolution_runs',
      );
      return rows.length === 1 && rows[0]!.status === 'completed' ? rows : undefined;
    });
    expect(runs).toEqual([{ run_id: run.run_id, status: 'completed', total_generations: 3, task_name: 'circle_packing' }]);
    // task_name was filled from logEvolutionRun, so the seed's "Total costs by run" groups correctly.
    const [g] = await queryRows<{ t: string }>(worker.clickhouse, 'SELECT any(task_name) AS t FROM generations');
    expect(g!.t).toBe('circle_packing');
    const [m] = await queryRows<{ ids: number }>(worker.clickhouse, 'SELECT uniqExact(id) AS ids FROM llm_logs');
    expect(Number(m!.ids)).toBe(n + 1);
  });
});
