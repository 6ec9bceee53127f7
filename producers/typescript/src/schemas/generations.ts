import { defineEventType } from './event-type.js';

/** Aggregate statistics of one generation of an evolution run. Table `generations`, kept forever. */
export const generations = defineEventType({
  name: 'generations',
  table: 'generations',
  partitionKey: 'run_id',
  timestampField: 'timestamp',
  jsonFields: ['metadata'],
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'Generation',
    namespace: 'io.ingest.evolution',
    doc: 'Aggregate statistics for one generation within an evolution run.',
    fields: [
      { name: 'run_id', type: 'string', doc: 'Links to `evolution_runs.run_id`.' },
      { name: 'generation', type: 'int', doc: 'Generation number (0 = initial population, 1+ = evolved).' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When this generation completed evaluation, epoch milliseconds (UTC).' },
      { name: 'task_name', type: 'string', default: '', doc: 'Task of the run (copied from the run, so costs can be grouped by run and task without a join).' },
      { name: 'num_individuals', type: 'int', doc: 'How many individuals were evaluated in this generation.' },
      { name: 'best_score', type: 'double', doc: 'Highest fitness score achieved in this generation.' },
      { name: 'avg_score', type: 'double', doc: 'Mean fitness score across all individuals.' },
      { name: 'pareto_size', type: 'int', doc: 'Number of individuals on the Pareto frontier (for multi-objective).' },
      { name: 'total_cost', type: 'double', doc: 'Total API cost (USD) spent on this generation (LLM + embeddings + novelty).' },
      { name: 'metadata', type: 'string', default: '{}', doc: 'JSON with additional stats: median score, std dev, elite count, etc.' },
    ],
  },
});
