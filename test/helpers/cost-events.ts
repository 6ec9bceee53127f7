import type { CostMetricInput } from '@kafka-clickhouse-ingest/producer';

const customers = ['123e4567-e89b-12d3-a456-426614174000', '223e4567-e89b-12d3-a456-426614174001', '323e4567-e89b-12d3-a456-426614174002', '423e4567-e89b-12d3-a456-426614174003'];

/**
 * Where the events' times start by default: 00:00 UTC yesterday, fixed when the module loads. A
 * fixed calendar date would pass out of cost_metrics_ts's 90-day TTL one day and ClickHouse would
 * drop the rows within seconds of their insert; a day back keeps 20,000 events (1 s apart) in the past.
 */
export const COST_EVENTS_START = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000;

/** Deterministic cost events; instance_id `i-<n>` is unique per event, so duplicates are countable. */
export function costEvents(n: number, start = 0, time = COST_EVENTS_START): CostMetricInput[] {
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
