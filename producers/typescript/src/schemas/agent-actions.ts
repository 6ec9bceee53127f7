import { defineEventType } from './event-type.js';

/**
 * One system event (job submitted/completed/failed, archive updated, ...). Table `agent_actions`;
 * retention is configurable (sql/retention.ts). Like llm_logs, it gets an optional `run_id`
 * (not in the seed) and is keyed by `id`.
 */
export const agentActions = defineEventType({
  name: 'agent_actions',
  table: 'agent_actions',
  partitionKey: 'id',
  timestampField: 'timestamp',
  jsonFields: ['details', 'metadata'],
  autoFields: { id: 'uuid', timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'AgentAction',
    namespace: 'io.ingest.evolution',
    doc: 'Generic system event: job submissions, completions, errors, archive updates.',
    fields: [
      { name: 'id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Unique identifier for this action.' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When the action occurred (epoch ms, UTC).' },
      { name: 'action_type', type: 'string', doc: 'Type of action: "job_submitted", "job_completed", "job_failed", "archive_updated", etc.' },
      { name: 'details', type: 'string', default: '{}', doc: 'JSON with action-specific data (job_id, generation, parent_id, scores, etc.).' },
      { name: 'metadata', type: 'string', default: '{}', doc: 'JSON with additional context (configuration, environment info, etc.).' },
      { name: 'run_id', type: ['null', 'string'], default: null, doc: 'Evolution run the action belongs to (links to `evolution_runs.run_id`); null outside a run. Not in the seed schema.' },
    ],
  },
});
