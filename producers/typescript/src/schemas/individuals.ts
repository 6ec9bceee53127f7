import { defineEventType } from './event-type.js';

/** One evaluated code variant. Table `individuals`, kept forever. */
export const individuals = defineEventType({
  name: 'individuals',
  table: 'individuals',
  partitionKey: 'run_id',
  timestampField: 'timestamp',
  jsonFields: ['metrics'],
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'Individual',
    namespace: 'io.ingest.evolution',
    doc: 'Detailed information about one code variant evaluated during evolution.',
    fields: [
      { name: 'run_id', type: 'string', doc: 'Links to `evolution_runs.run_id`.' },
      { name: 'individual_id', type: 'string', doc: 'Unique identifier for this code variant (e.g., "ind_gen5_123").' },
      { name: 'generation', type: 'int', doc: 'Which generation this individual belongs to.' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When this individual was evaluated, epoch milliseconds (UTC).' },
      { name: 'parent_id', type: 'string', default: '', doc: 'ID of the parent individual (empty string for initial population).' },
      { name: 'mutation_type', type: 'string', doc: 'How this individual was created: "init" (initial), "mutate" (single parent), "crossover" (two parents).' },
      { name: 'fitness_score', type: 'double', doc: 'Primary objective score (e.g., accuracy, solution quality).' },
      { name: 'combined_score', type: 'double', doc: 'Multi-objective combined score (if using Pareto optimization).' },
      { name: 'metrics', type: 'string', default: '{}', doc: 'JSON of all evaluation metrics: {"accuracy": 0.95, "size": 1024, "speed": 2.5}.' },
      { name: 'is_pareto', type: 'boolean', default: false, doc: 'Whether this individual is on the Pareto frontier for this generation.' },
      { name: 'api_cost', type: 'double', default: 0, doc: 'Cost to generate this individual (LLM mutation/crossover cost).' },
      { name: 'embed_cost', type: 'double', default: 0, doc: 'Cost to compute embeddings for this individual.' },
      { name: 'novelty_cost', type: 'double', default: 0, doc: 'Cost to compute novelty score (if using novelty search).' },
      { name: 'code_hash', type: 'string', default: '', doc: 'SHA-256 hash of the code (for detecting duplicates).' },
      { name: 'code_size', type: 'int', default: 0, doc: 'Size of code in bytes.' },
    ],
  },
});
