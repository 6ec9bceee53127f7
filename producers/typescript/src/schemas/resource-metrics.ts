import { defineEventType } from './event-type.js';

/** GPU/CPU/memory/network utilization of one GPU of an instance. Table `resource_metrics_ts`, 90-day retention. */
export const resourceMetrics = defineEventType({
  name: 'resource_metrics',
  table: 'resource_metrics_ts',
  partitionKey: 'customer_id',
  timestampField: 'timestamp',
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'ResourceMetric',
    namespace: 'io.ingest.metrics',
    doc: 'Utilization sample of one GPU of one instance (1-minute granularity, 90-day retention).',
    fields: [
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When the sample was taken, epoch milliseconds (UTC).' },
      { name: 'customer_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Customer UUID (foreign key to PostgreSQL customers).' },
      { name: 'instance_id', type: 'string', doc: 'Provider instance identifier, e.g. "i-gpu-001".' },
      { name: 'instance_type', type: 'string', doc: 'Instance type, e.g. "p4d.24xlarge".' },
      { name: 'gpu_index', type: 'int', doc: 'Index of the GPU on the instance (0-based).' },
      { name: 'gpu_utilization', type: 'double', doc: 'GPU utilization, 0-100.' },
      { name: 'gpu_memory_used_mb', type: 'double', doc: 'GPU memory in use, MB.' },
      { name: 'gpu_memory_total_mb', type: 'double', doc: 'GPU memory capacity, MB.' },
      { name: 'gpu_temperature', type: 'double', doc: 'GPU temperature, degrees Celsius.' },
      { name: 'cpu_utilization', type: 'double', doc: 'Instance CPU utilization, 0-100.' },
      { name: 'memory_used_gb', type: 'double', doc: 'Instance memory in use, GB.' },
      { name: 'memory_total_gb', type: 'double', doc: 'Instance memory capacity, GB.' },
      { name: 'network_rx_mbps', type: 'double', doc: 'Network receive rate, Mbit/s.' },
      { name: 'network_tx_mbps', type: 'double', doc: 'Network transmit rate, Mbit/s.' },
    ],
  },
});
