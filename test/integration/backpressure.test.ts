import { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowInserter } from '../../consumers/clickhouse-inserter.js';
import { IngestWorker } from '../../consumers/worker.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { sampleEvents } from '../fixtures/events.js';
import { costEvents } from '../helpers/cost-events.js';
import { countRows, createTopics, metricValue, testConfig, waitFor } from '../helpers/stack.js';

describe('backpressure: a slow table with a backlog, a small memory budget', () => {
  const budget = 1024 * 1024; // ~2,600 cost events at their estimated memory cost (memoryCost); the backlog is ~7.5x that
  const config = testConfig({
    memory: { maxBufferedBytes: budget },
    batch: { maxRows: 500, maxWaitMs: 100 },
    consumer: { eventTypes: ['cost_metrics', 'performance_metrics'] },
  });
  let worker: IngestWorker;
  let producer: IngestProducer;
  // cost_metrics_ts is slow (ClickHouse under load); performance_metrics_ts is not.
  const slow: (inner: RowInserter) => RowInserter = (inner) => async (table, rows, token) => {
    if (table === 'cost_metrics_ts') await new Promise((r) => setTimeout(r, 400));
    return inner(table, rows, token);
  };
  let maxBuffered = 0;
  let sawPaused = false;
  let sampler: NodeJS.Timeout;

  beforeAll(async () => {
    await createTopics(config, ['cost_metrics', 'performance_metrics']);
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    await producer.emitCostMetrics(costEvents(20_000)); // a backlog of ~8 MB estimated memory, ~7.5x the budget
    worker = await IngestWorker.start(config, { wrapInserter: slow });
    sampler = setInterval(async () => {
      const buffered = (await worker.metrics.bufferedBytes.get()).values[0]?.value ?? 0;
      const paused = (await worker.metrics.pausedPartitions.get()).values[0]?.value ?? 0;
      maxBuffered = Math.max(maxBuffered, buffered);
      if (paused > 0) sawPaused = true;
    }, 10);
  });
  afterAll(async () => {
    clearInterval(sampler);
    await producer?.close();
    await worker?.stop();
  });

  it('keeps memory bounded, pauses fetching, lets the fast table through, and loses nothing', async () => {
    await waitFor('cost rows start landing', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) > 0);
    const perf = sampleEvents('performance_metrics', 200, 3).map((e, i) => ({ ...e, timestamp: Date.now() - i }));
    const sentAt = Date.now();
    await producer.emitPerformanceMetrics(perf as never);
    await waitFor('fast table rows', async () => (await countRows(worker.clickhouse, 'performance_metrics_ts')) === 200, 30_000);
    const fastLatencyMs = Date.now() - sentAt;
    const costSoFar = await countRows(worker.clickhouse, 'cost_metrics_ts');
    console.info(`backpressure: fast table landed in ${fastLatencyMs} ms, with ${costSoFar} of 20000 cost rows in`);
    // The fast table was not queued behind the slow table's backlog.
    expect(costSoFar).toBeLessThan(20_000);
    expect(fastLatencyMs).toBeLessThan(15_000);

    // A rebalance while partitions are paused (another member joins the group, for a topic of its
    // own, and leaves): the pauses of the old generation must leave the gauge with it.
    await waitFor('a partition paused', async () => (await metricValue(worker, 'ingest_paused_partitions')) > 0, 30_000);
    const rebalancesBefore = await metricValue(worker, 'ingest_rebalances_total');
    const other = new Kafka({ clientId: 'backpressure-rebalance', brokers: [...config.kafka.brokers], logLevel: 0 }).consumer({ groupId: config.consumer.groupId, sessionTimeout: 10_000, rebalanceTimeout: 10_000 });
    await other.connect();
    await other.subscribe({ topic: `${config.kafka.topicPrefix}performance_metrics` });
    const joined = new Promise((r) => other.on(other.events.GROUP_JOIN, r));
    await other.run({ eachMessage: async () => undefined, autoCommit: false });
    await joined;
    await other.disconnect();

    await waitFor('all 20000 cost rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 20_000, 100_000);
    expect(sawPaused).toBe(true);
    expect(await metricValue(worker, 'ingest_rebalances_total')).toBeGreaterThan(rebalancesBefore);
    // Every row landed, nothing is buffered: no partition is paused, and the gauge says so.
    await waitFor('no partition paused', async () => (await metricValue(worker, 'ingest_paused_partitions')) === 0, 10_000).catch(() => undefined);
    expect(await metricValue(worker, 'ingest_paused_partitions')).toBe(0);
    // Soft budget: tables under their fair share still get through, so the bound is twice the budget.
    expect(maxBuffered).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThanOrEqual(2 * budget);
  });
});
