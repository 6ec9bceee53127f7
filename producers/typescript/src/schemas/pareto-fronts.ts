import { defineEventType } from './event-type.js';

/** One member of the Pareto frontier of one generation. Table `pareto_fronts`, kept forever. */
export const paretoFronts = defineEventType({
  name: 'pareto_fronts',
  table: 'pareto_fronts',
  partitionKey: 'run_id',
  timestampField: 'timestamp',
  jsonFields: ['metrics'],
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'ParetoFrontMember',
    namespace: 'io.ingest.evolution',
    doc: 'One non-dominated individual of the Pareto frontier snapshot of one generation.',
    fields: [
      { name: 'run_id', type: 'string', doc: 'Links to `evolution_runs.run_id`.' },
      { name: 'generation', type: 'int', doc: 'Which generation this Pareto snapshot is from.' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When this Pareto frontier was computed, epoch milliseconds (UTC).' },
      { name: 'individual_id', type: 'string', doc: 'ID of an individual on the Pareto frontier (links to `individuals`).' },
      { name: 'fitness_score', type: 'double', doc: 'Primary objective score.' },
      { name: 'combined_score', type: 'double', doc: 'Combined multi-objective score.' },
      { name: 'metrics', type: 'string', default: '{}', doc: 'JSON of all metrics (for plotting trade-offs).' },
    ],
  },
});
