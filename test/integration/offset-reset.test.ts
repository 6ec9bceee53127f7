import { afterAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { createKafka, topicName } from '../../lib/kafka.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costEvents } from '../helpers/cost-events.js';
import { auditCostRows, countRows, createTopics, testConfig, waitFor } from '../helpers/stack.js';

/**
 * A committed offset outside the partition log (what retention leaves behind when it deletes
 * segments the group never read) is reset by kafkajs to the default offset. The worker counts
 * it in ingest_offset_resets_total (alert IngestOffsetReset), since nothing else shows it.
 */
describe('fetch offset outside the partition log', () => {
  const config = testConfig();
  let worker: IngestWorker | undefined;
  afterAll(async () => {
    await worker?.stop();
  });

  it('is reset to the earliest offset, counted in ingest_offset_resets_total, and every record still lands', async () => {
    await createTopics(config, ['cost_metrics']);
    const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    await producer.emitCostMetrics(costEvents(400, 0));
    await producer.close();

    // The group's committed offsets point far past the end of every partition.
    const topic = topicName(config.kafka, 'cost_metrics');
    const admin = createKafka(config.kafka).admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.setOffsets({ groupId: config.consumer.groupId, topic, partitions: ends.map((e) => ({ partition: e.partition, offset: String(Number(e.high) + 1_000_000) })) });
    await admin.disconnect();

    worker = await IngestWorker.start(config);
    await waitFor('400 rows after the reset', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) === 400, 60_000);
    const text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
    const resets = text
      .split('\n')
      .filter((l) => l.startsWith('ingest_offset_resets_total{') && l.includes(`topic="${topic}"`))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    // Only partitions that hold records have a committed offset to be out of range (costEvents uses 4 keys).
    const withRecords = ends.filter((e) => Number(e.high) > 0).length;
    expect(resets).toBeGreaterThanOrEqual(withRecords);
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 400, offsets: 400, ids: 400 });
  });
});
