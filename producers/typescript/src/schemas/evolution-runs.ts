import { defineEventType } from './event-type.js';

/**
 * One evolution run (one `genesis_launch`). Every event is a start or an update of the run:
 * all fields but `run_id` and `event_time` are nullable with default null, so an update carries
 * only what changed (status, total_generations, end_time). The worker appends every event to
 * `evolution_run_updates`; the `evolution_runs` view picks, per run and column, the latest
 * non-null value by (event_time, Kafka offset), so queries see exactly one current row per run
 * whatever the insert order (a batch re-inserted from the dead-letter queue lands late).
 *
 * `config` is a JSON string, but it is not a `jsonFields` entry: the SDK would store an absent
 * (null) config as the JSON text "null", and that non-null value would overwrite the run's
 * config on every update. EvolutionLogger serialises config objects itself.
 */
export const evolutionRuns = defineEventType({
  name: 'evolution_runs',
  table: 'evolution_run_updates',
  partitionKey: 'run_id',
  timestampField: 'event_time',
  autoFields: { event_time: 'now' },
  schema: {
    type: 'record',
    name: 'EvolutionRun',
    namespace: 'io.ingest.evolution',
    doc: 'Start or update of one evolution run; null fields leave the current value unchanged.',
    fields: [
      { name: 'run_id', type: 'string', doc: 'Unique identifier for this evolution run (e.g., timestamp-based ID or UUID).' },
      { name: 'event_time', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When this start/update event was emitted, epoch milliseconds (UTC).' },
      { name: 'start_time', type: ['null', { type: 'long', logicalType: 'timestamp-millis' }], default: null, doc: 'When the evolution run started (set by the start event).' },
      { name: 'end_time', type: ['null', { type: 'long', logicalType: 'timestamp-millis' }], default: null, doc: 'When the run completed (reads as epoch 0 until completion).' },
      { name: 'task_name', type: ['null', 'string'], default: null, doc: 'Name of the task being evolved (e.g., "circle_packing", "mask_to_seg").' },
      { name: 'config', type: ['null', 'string'], default: null, doc: 'Full Hydra configuration as JSON (evolution params, LLM settings, etc.).' },
      { name: 'status', type: ['null', 'string'], default: null, doc: 'Current status: "running", "completed", "failed".' },
      { name: 'total_generations', type: ['null', 'int'], default: null, doc: 'Total number of generations completed (0 until run finishes).' },
      { name: 'population_size', type: ['null', 'int'], default: null, doc: 'Population size per generation (from config).' },
      { name: 'cluster_type', type: ['null', 'string'], default: null, doc: 'Execution environment: "local", "slurm", "e2b".' },
      { name: 'database_path', type: ['null', 'string'], default: null, doc: 'Path to the SQLite database file storing results.' },
    ],
  },
});
