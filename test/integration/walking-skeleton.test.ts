import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { IngestProducer, type CostMetricInput } from '@kafka-clickhouse-ingest/producer';
import { EventValidationError } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { costEvents } from '../helpers/cost-events.js';
import { countRows, queryRows, testConfig, waitFor } from '../helpers/stack.js';

describe('walking skeleton: SDK → Kafka → worker → ClickHouse', () => {
  const config = testConfig();
  let producer: IngestProducer;
  let worker: IngestWorker | undefined;

  beforeAll(async () => {
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, lingerMs: 2 });
  });
  afterAll(async () => {
    await worker?.stop();
    await producer?.close();
  });

  it('delivers N events as exactly N rows with the same values', async () => {
    // scripts/test.sh runs this file once per producer client.
    expect(producer.events.client).toBe(process.env.INGEST_PRODUCER_CLIENT || 'platformatic');
    worker = await IngestWorker.start(config);
    const events = costEvents(2_500, 0);
    await producer.emitCostMetrics(events);
    await waitFor('2500 rows', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) === 2_500);
    const rows = await queryRows<Record<string, unknown>>(
      worker.clickhouse,
      `SELECT toUnixTimestamp64Milli(timestamp) AS timestamp, toString(customer_id) AS customer_id, cloud_provider, service_name, instance_id,
              instance_type, region, cost_per_hour, utilization_percent, is_spot, is_reserved
       FROM cost_metrics_ts ORDER BY instance_id`,
    );
    const expected = [...events].sort((a, b) => (a.instance_id < b.instance_id ? -1 : 1)).map((e) => ({ ...e, timestamp: String(e.timestamp) }));
    expect(rows.map((r) => ({ ...r, timestamp: String(r.timestamp) }))).toEqual(expected);
    // The SDK's own metrics, for the host app to serve.
    const sent = await producer.metrics.eventsSent.get();
    expect(sent.values.find((v) => v.labels.event_type === 'cost_metrics')?.value).toBe(2_500);
    const latency = await producer.metrics.sendLatency.get();
    expect(latency.values.find((v) => v.metricName === 'ingest_producer_send_latency_seconds_count')?.value).toBeGreaterThan(0);
  });

  it('loses nothing and duplicates nothing across a worker stop and restart', async () => {
    await worker!.stop();
    worker = undefined;
    await producer.emitCostMetrics(costEvents(1_500, 2_500));
    worker = await IngestWorker.start(config);
    await waitFor('4000 rows', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) >= 4_000);
    // Let any late duplicate land before counting.
    await new Promise((r) => setTimeout(r, 1_000));
    const [stats] = await queryRows<{ n: string; distinct_ids: string; distinct_offsets: string }>(
      worker.clickhouse,
      `SELECT count() AS n, uniqExact(instance_id) AS distinct_ids, uniqExact(_kafka_partition, _kafka_offset) AS distinct_offsets FROM cost_metrics_ts`,
    );
    // 64-bit counts come back as strings from a server and as numbers from chDB.
    expect({ n: Number(stats!.n), ids: Number(stats!.distinct_ids), offsets: Number(stats!.distinct_offsets) }).toEqual({ n: 4_000, ids: 4_000, offsets: 4_000 });
  });

  it('close() sends what was emitted and not yet awaited: nothing is dropped', async () => {
    const other = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, lingerMs: 10_000 });
    const pending = other.emitCostMetrics(costEvents(300, 4_000)); // held by the long linger
    await other.close();
    await pending;
    await waitFor('4300 rows', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) === 4_300);
    await expect(other.emitCostMetrics(costEvents(1, 0))).rejects.toThrow(/closed/);
  });

  it('splits a call larger than the broker takes in one record batch into requests, delivered whole and in order', async () => {
    // One key, no compression: 12,000 events are ~2 MB on one partition, twice the broker's
    // default message.max.bytes. Sent as one request, the broker would refuse the batch.
    const other = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, compression: 'none' });
    const customer = '523e4567-e89b-12d3-a456-426614174005';
    const events = costEvents(12_000, 10_000).map((e) => ({ ...e, customer_id: customer }));
    try {
      await other.emitCostMetrics(events);
    } finally {
      await other.close();
    }
    await waitFor('the 12000 rows of the large call', async () => (await countRows(worker!.clickhouse, `cost_metrics_ts WHERE customer_id = '${customer}'`)) === 12_000);
    const rows = await queryRows<{ instance_id: string }>(worker!.clickhouse, `SELECT instance_id FROM cost_metrics_ts WHERE customer_id = '${customer}' ORDER BY _kafka_offset`);
    expect(rows.map((r) => r.instance_id)).toEqual(events.map((e) => e.instance_id));
  });

  it('refuses invalid input with an error naming the field, and sends nothing', async () => {
    const good = costEvents(1, 9_000)[0]!;
    const { cost_per_hour: _omit, ...missing } = good;
    await expect(producer.emitCostMetrics([good, missing as CostMetricInput])).rejects.toThrow(/cost_metrics\[1\]\.cost_per_hour: is required/);
    await expect(producer.emitCostMetrics([{ ...good, region: 42 as unknown as string }])).rejects.toThrow(/cost_metrics\[0\]\.region: expected a string, got 42/);
    await expect(producer.emitCostMetrics([{ ...good, utilization_percent: Number.NaN }])).rejects.toThrow(/utilization_percent: expected a finite number, got NaN/);
    await expect(producer.emitCostMetrics([{ ...good, customer_id: 'not-a-uuid' }])).rejects.toThrow(EventValidationError);
    await expect(producer.emitCostMetrics([{ ...good, colour: 'red' } as CostMetricInput])).rejects.toThrow(/colour: unknown field/);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await countRows(worker!.clickhouse, 'cost_metrics_ts')).toBe(16_300);
  });
});
