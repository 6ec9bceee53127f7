import { describe, expect, it } from 'vitest';
import { EvolutionLogger } from '@kafka-clickhouse-ingest/producer';
import { EventValidationError } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { CapturingSink } from '../fixtures/rows.js';

/** The logger against a capturing sink that validates exactly as EventProducer.emit does. */
function setup() {
  const sink = new CapturingSink();
  sink.now = 1_700_000_000_000;
  return { sink, logger: new EvolutionLogger(sink) };
}

const run = { run_id: 'run_1', task_name: 'circle_packing', config: { evolution: { pop_size: 20 } }, population_size: 20, cluster_type: 'local', database_path: 'results/x.db' };

describe('EvolutionLogger', () => {
  it('logEvolutionRun writes a full start event: running, 0 generations, config as JSON, start_time now', async () => {
    const { sink, logger } = setup();
    await logger.logEvolutionRun({ ...run, start_time: new Date(1_600_000_000_000) });
    expect(sink.records('evolution_runs')).toEqual([
      { ...run, config: '{"evolution":{"pop_size":20}}', run_id: 'run_1', event_time: sink.now, start_time: 1_600_000_000_000, end_time: null, status: 'running', total_generations: 0 },
    ]);
  });

  it('updateEvolutionRun carries only status, total_generations and end_time (null = unchanged)', async () => {
    const { sink, logger } = setup();
    await logger.updateEvolutionRun({ run_id: 'run_1', status: 'completed', total_generations: 10, end_time: 1_700_000_100_000 });
    await logger.updateEvolutionRun({ run_id: 'run_1', status: 'paused', total_generations: 3 });
    const [done, paused] = sink.records('evolution_runs');
    expect(done).toMatchObject({ status: 'completed', total_generations: 10, end_time: 1_700_000_100_000, start_time: null, task_name: null, config: null, population_size: null, cluster_type: null, database_path: null });
    expect(paused).toMatchObject({ status: 'paused', end_time: null });
  });

  it('a completed or failed run without end_time ends now', async () => {
    const { sink, logger } = setup();
    const before = Date.now();
    await logger.updateEvolutionRun({ run_id: 'r', status: 'failed', total_generations: 2 });
    expect(sink.records('evolution_runs')[0]!.end_time as number).toBeGreaterThanOrEqual(before);
  });

  it('logGeneration fills task_name from the run, or takes an explicit one', async () => {
    const { sink, logger } = setup();
    const gen = { generation: 5, num_individuals: 20, best_score: 0.95, avg_score: 0.82, pareto_size: 3, total_cost: 1.25 };
    await logger.logGeneration({ run_id: 'unknown_run', ...gen });
    await logger.logEvolutionRun(run);
    await logger.logGeneration({ run_id: 'run_1', ...gen });
    await logger.logGeneration({ run_id: 'run_1', ...gen, task_name: 'other' });
    expect(sink.records('generations').map((g) => g.task_name)).toEqual(['', 'circle_packing', 'other']);
    expect(sink.records('generations')[0]).toMatchObject({ ...gen, metadata: '{}', timestamp: sink.now });
  });

  it('logParetoFront writes one row per member with the same run, generation and timestamp', async () => {
    const { sink, logger } = setup();
    await logger.logParetoFront({
      run_id: 'run_1',
      generation: 5,
      timestamp: 1_650_000_000_000,
      members: [
        { individual_id: 'a', fitness_score: 0.95, combined_score: 0.85, metrics: { accuracy: 0.95 } },
        { individual_id: 'b', fitness_score: 0.9, combined_score: 0.88 },
      ],
    });
    expect(sink.records('pareto_fronts')).toEqual([
      { run_id: 'run_1', generation: 5, timestamp: 1_650_000_000_000, individual_id: 'a', fitness_score: 0.95, combined_score: 0.85, metrics: '{"accuracy":0.95}' },
      { run_id: 'run_1', generation: 5, timestamp: 1_650_000_000_000, individual_id: 'b', fitness_score: 0.9, combined_score: 0.88, metrics: '{}' },
    ]);
  });

  it('seed example calls (log_individual, log_lineage, log_llm_interaction) work with their defaults', async () => {
    const { sink, logger } = setup();
    await logger.logIndividual({ run_id: 'run_12345', individual_id: 'ind_001', generation: 5, parent_id: 'ind_parent', mutation_type: 'mutate', fitness_score: 0.95, combined_score: 0.9, metrics: { accuracy: 0.95, size: 1024 }, is_pareto: true, api_cost: 0.05 });
    await logger.logLineage({ run_id: 'run_12345', child_id: 'ind_001', parent_id: 'ind_parent', generation: 5, mutation_type: 'mutate', fitness_delta: 0.05, edit_summary: 'Optimized loop algorithm' });
    await logger.logLlmInteraction({ model: 'claude-3-5-sonnet-20241022', messages: [{ role: 'user', content: '...' }], response: '...', cost: 0.01, execution_time: 2.5 });
    await logger.logAgentAction({ action_type: 'job_submitted', details: { job_id: 'job_123' } });
    expect(sink.records('individuals')[0]).toMatchObject({ embed_cost: 0, novelty_cost: 0, code_hash: '', code_size: 0, metrics: '{"accuracy":0.95,"size":1024}' });
    expect(sink.records('llm_logs')[0]).toMatchObject({ run_id: null, metadata: '{}', messages: '[{"role":"user","content":"..."}]' });
    expect(sink.records('llm_logs')[0]!.id).toMatch(/^[0-9a-f]{8}-/);
    expect(sink.records('agent_actions')[0]).toMatchObject({ action_type: 'job_submitted', metadata: '{}', run_id: null });
  });

  it('bad values reject with the event type and field named, and nothing is recorded', async () => {
    const { sink, logger } = setup();
    await expect(logger.logIndividual({ run_id: 'r', individual_id: 'i', generation: 1.5, mutation_type: 'mutate', fitness_score: 1, combined_score: 1 })).rejects.toThrow(/^individuals\[0\]\.generation: expected a 32-bit integer/);
    await expect(logger.logLineage({ run_id: 'r', child_id: 'c', generation: 1, mutation_type: 'm', fitness_delta: Number.NaN })).rejects.toThrow(/^code_lineages\[0\]\.fitness_delta/);
    await expect(logger.logEvolutionRun({ ...run, config: 'not json' })).rejects.toThrow(EventValidationError);
    await expect(logger.logEvolutionRun({ ...run, population_size: 'twenty' as unknown as number })).rejects.toThrow(/^evolution_runs\[0\]\.population_size/);
    await expect(logger.logParetoFront({ run_id: 'r', generation: 1, members: undefined as never })).rejects.toThrow(/pareto_fronts\.members/);
    expect(sink.batches).toEqual([]);
  });
});
