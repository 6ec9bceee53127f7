import { defineEventType } from './event-type.js';

/** Quality scores of one LLM response. Table `quality_metrics_ts`, 30-day retention. */
export const qualityMetrics = defineEventType({
  name: 'quality_metrics',
  table: 'quality_metrics_ts',
  partitionKey: 'customer_id',
  timestampField: 'timestamp',
  bounds: { hallucination_detected: [0, 1] },
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'QualityMetric',
    namespace: 'io.ingest.metrics',
    doc: 'Quality scores of one LLM response (per-request, 30-day retention).',
    fields: [
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When the response was scored, epoch milliseconds (UTC).' },
      { name: 'customer_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Customer UUID (foreign key to PostgreSQL customers).' },
      { name: 'service_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Serving deployment UUID (foreign key to PostgreSQL services).' },
      { name: 'request_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'UUID of the scored request.' },
      { name: 'model_name', type: 'string', doc: 'Model that produced the response, e.g. "gpt-4".' },
      { name: 'relevance_score', type: 'double', doc: 'Relevance of the response to the prompt, 0-1.' },
      { name: 'coherence_score', type: 'double', doc: 'Coherence of the response, 0-1.' },
      { name: 'factuality_score', type: 'double', doc: 'Factual accuracy of the response, 0-1.' },
      { name: 'hallucination_detected', type: 'int', doc: '1 when a hallucination was detected, else 0.' },
      { name: 'toxicity_score', type: 'double', doc: 'Toxicity of the response, 0-1 (lower is better).' },
      { name: 'overall_quality_score', type: 'double', doc: 'Combined quality score, 0-1.' },
      { name: 'prompt_hash', type: 'string', doc: 'Hash of the prompt, to group repeated prompts without storing them.' },
      { name: 'latency_ms', type: 'double', doc: 'Latency of the request in milliseconds.' },
    ],
  },
});
