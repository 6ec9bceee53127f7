import { defineEventType } from './event-type.js';

/** One parent → child edge of the evolutionary tree. Table `code_lineages`, kept forever. */
export const codeLineages = defineEventType({
  name: 'code_lineages',
  table: 'code_lineages',
  partitionKey: 'run_id',
  timestampField: 'timestamp',
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'CodeLineage',
    namespace: 'io.ingest.evolution',
    doc: 'Parent-child relationship between two code variants.',
    fields: [
      { name: 'run_id', type: 'string', doc: 'Links to `evolution_runs.run_id`.' },
      { name: 'child_id', type: 'string', doc: 'ID of the child individual (links to `individuals.individual_id`).' },
      { name: 'parent_id', type: 'string', default: '', doc: 'ID of the parent individual (empty for initial population).' },
      { name: 'generation', type: 'int', doc: 'Generation in which the child was created.' },
      { name: 'mutation_type', type: 'string', doc: 'How the child was created: "init", "mutate", "crossover".' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When this lineage relationship was created, epoch milliseconds (UTC).' },
      { name: 'fitness_delta', type: 'double', doc: 'Change in fitness from parent to child (child_fitness - parent_fitness).' },
      { name: 'edit_summary', type: 'string', default: '', doc: 'Human-readable description of what changed (from LLM summary).' },
    ],
  },
});
