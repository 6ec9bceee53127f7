import { defineEventType } from './event-type.js';

/**
 * One LLM API call. Table `llm_logs`; retention is configurable (sql/retention.ts).
 * The seed table has no run id (calls link to runs only "via metadata"); we add an optional
 * `run_id` so calls can be filtered per run without parsing JSON. It is nullable, so calls made
 * outside a run are fine. The Kafka key is `id`, not `run_id`: calls need no per-run order,
 * and keying run-less calls by a constant would put them all in one partition.
 */
export const llmLogs = defineEventType({
  name: 'llm_logs',
  table: 'llm_logs',
  partitionKey: 'id',
  timestampField: 'timestamp',
  jsonFields: ['messages', 'metadata'],
  autoFields: { id: 'uuid', timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'LlmLog',
    namespace: 'io.ingest.evolution',
    doc: 'One LLM API call made during evolution: prompt, response, cost and timing.',
    fields: [
      { name: 'id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Unique identifier for this LLM call.' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'Millisecond precision timestamp when call was made (epoch ms, UTC).' },
      { name: 'model', type: 'string', doc: 'LLM model name (e.g., "claude-3-5-sonnet-20241022", "gpt-4").' },
      { name: 'messages', type: 'string', doc: 'JSON-encoded array of messages sent to LLM. Format: [{"role": "user", "content": "..."}].' },
      { name: 'response', type: 'string', doc: 'Full text response from the LLM.' },
      { name: 'cost', type: 'double', doc: 'API cost in USD for this call (calculated from token usage).' },
      { name: 'execution_time', type: 'double', doc: 'Time in seconds from request to response.' },
      { name: 'metadata', type: 'string', default: '{}', doc: 'JSON with additional context: task name, generation number, mutation type, etc.' },
      { name: 'run_id', type: ['null', 'string'], default: null, doc: 'Evolution run the call belongs to (links to `evolution_runs.run_id`); null outside a run. Not in the seed schema.' },
    ],
  },
});
