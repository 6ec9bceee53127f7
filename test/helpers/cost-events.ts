import type { CostMetricInput } from '@kafka-clickhouse-ingest/producer';

const customers = ['123e4567-e89b-12d3-a456-426614174000', '223e4567-e89b-12d3-a456-426614174001', '323e4567-e89b-12d3-a456-426614174002', '423e4567-e89b-12d3-a456-426614174003'];

/** Deterministic cost events; instance_id `i-<n>` is unique per event, so duplicates are countable. */
export function costEvents(n: number, start = 0, time = Date.UTC(2026, 10, 1)): CostMetricInput[] {
  return Array.from({ length: n }, (_, k) => {
    const i = start + k;
    return {
      timestamp: time + i * 1_000,
      customer_id: customers[i % customers.length]!,
      cloud_provider: ['aws', 'gcp', 'azure'][i % 3]!,
      service_name: 'ec2',
      instance_id: `i-${i}`,
      instance_type: 'm5.xlarge',
      region: 'us-east-1',
      cost_per_hour: Math.round((0.1 + (i % 97) / 100) * 1e6) / 1e6,
      utilization_percent: (i % 1000) / 10,
      is_spot: i % 2,
      is_reserved: i % 5 === 0 ? 1 : 0,
    };
  });
}
