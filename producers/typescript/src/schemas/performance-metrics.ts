import { defineEventType } from './event-type.js';

/** LLM serving latency and throughput, one event per request. Table `performance_metrics_ts`, 30-day retention. */
export const performanceMetrics = defineEventType({
  name: 'performance_metrics',
  table: 'performance_metrics_ts',
  partitionKey: 'customer_id',
  timestampField: 'timestamp',
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'PerformanceMetric',
    namespace: 'io.ingest.metrics',
    doc: 'Latency and throughput of one LLM inference request (per-request, 30-day retention).',
    fields: [
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When the request was served, epoch milliseconds (UTC).' },
      { name: 'customer_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Customer UUID (foreign key to PostgreSQL customers).' },
      { name: 'service_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Serving deployment UUID (foreign key to PostgreSQL services).' },
      { name: 'service_type', type: 'string', doc: 'Serving engine, e.g. "vllm".' },
      { name: 'model_name', type: 'string', doc: 'Model served, e.g. "llama-2-70b".' },
      { name: 'request_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'UUID of the inference request.' },
      { name: 'latency_ms', type: 'double', doc: 'End-to-end request latency in milliseconds.' },
      { name: 'throughput_tokens_per_sec', type: 'double', doc: 'Generation throughput in tokens per second.' },
      { name: 'gpu_utilization', type: 'double', doc: 'GPU utilization during the request, 0-100.' },
      { name: 'kv_cache_utilization', type: 'double', doc: 'KV-cache utilization during the request, 0-100.' },
      { name: 'batch_size', type: 'int', doc: 'Batch size the request was served in.' },
      { name: 'prompt_tokens', type: 'int', doc: 'Tokens in the prompt.' },
      { name: 'completion_tokens', type: 'int', doc: 'Tokens generated.' },
      { name: 'total_tokens', type: 'int', doc: 'prompt_tokens + completion_tokens.' },
    ],
  },
});
