import { defineEventType } from './event-type.js';

/** Cloud costs per instance, hourly granularity. Table `cost_metrics_ts`, 90-day retention. */
export const costMetrics = defineEventType({
  name: 'cost_metrics',
  table: 'cost_metrics_ts',
  partitionKey: 'customer_id',
  timestampField: 'timestamp',
  bounds: { is_spot: [0, 1], is_reserved: [0, 1] },
  autoFields: { timestamp: 'now' },
  schema: {
    type: 'record',
    name: 'CostMetric',
    namespace: 'io.ingest.metrics',
    doc: 'Cloud cost of one instance at one point in time (1-hour granularity, 90-day retention).',
    fields: [
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'When the cost was observed, epoch milliseconds (UTC).' },
      { name: 'customer_id', type: { type: 'string', logicalType: 'uuid' }, doc: 'Customer UUID (foreign key to PostgreSQL customers).' },
      { name: 'cloud_provider', type: 'string', doc: 'Cloud provider, e.g. "aws", "gcp", "azure".' },
      { name: 'service_name', type: 'string', doc: 'Cloud service, e.g. "ec2".' },
      { name: 'instance_id', type: 'string', doc: 'Provider instance identifier, e.g. "i-1234567".' },
      { name: 'instance_type', type: 'string', doc: 'Instance type, e.g. "m5.xlarge".' },
      { name: 'region', type: 'string', doc: 'Provider region, e.g. "us-east-1".' },
      { name: 'cost_per_hour', type: 'double', doc: 'Cost in USD per hour.' },
      { name: 'utilization_percent', type: 'double', doc: 'Instance utilization, 0-100.' },
      { name: 'is_spot', type: 'int', doc: '1 when the instance is a spot instance, else 0.' },
      { name: 'is_reserved', type: 'int', doc: '1 when the instance is reserved, else 0.' },
    ],
  },
});
