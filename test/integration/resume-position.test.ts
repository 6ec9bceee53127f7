import { afterAll, describe, expect, it } from 'vitest';
import { platformaticRecordReader, resumePosition, type ResumeDeps } from '../../consumers/resume-position.js';
import { IngestWorker } from '../../consumers/worker.js';
import { openClickHouse } from '../../lib/clickhouse.js';
import { createKafka, topicName } from '../../lib/kafka.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import { costEvents } from '../helpers/cost-events.js';
import { auditCostRows, createTopics, queryRows, recreateTopic, testConfig, waitFor } from '../helpers/stack.js';

const costType = eventTypes.find((t) => t.name === 'cost_metrics')!;

async function emit(config: ReturnType<typeof testConfig>, n: number, start: number): Promise<void> {
  const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
  await producer.emitCostMetrics(costEvents(n, start));
  await producer.close();
}

/**
 * A group with no committed offset (here: deleted after the worker stopped) resumes above the
 * rows the table holds for the same log, and at the log start of a topic created again.
 */
describe('resumePosition', () => {
  const config = testConfig({ consumer: { eventTypes: ['cost_metrics'] }, batch: { maxRows: 500, maxWaitMs: 200 } });
  const topic = topicName(config.kafka, 'cost_metrics');
  const admin = createKafka(config.kafka).admin();
  const records = platformaticRecordReader(config.kafka);
  afterAll(async () => {
    await records.close().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  });

  it('returns the offset after the last row of the same log, and the log start of a recreated topic', async () => {
    await admin.connect();
    await createTopics(config, ['cost_metrics']);
    const landed = 2_000;
    await emit(config, landed, 0);
    const worker = await IngestWorker.start(config);
    try {
      await waitFor('every event landed', async () => (await auditCostRows(worker.clickhouse)).ids === landed, 120_000);
      // committed up to the end of each partition
      await waitFor('offsets committed', async () => {
        const [t] = await admin.fetchOffsets({ groupId: config.consumer.groupId, topics: [topic] });
        const ends = await admin.fetchTopicOffsets(topic);
        return ends.every((e) => e.high === '0' || t!.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
      }, 60_000);
    } finally {
      await worker.stop();
    }
    // More events after the stop: the log now reaches past the table.
    await emit(config, 300, landed);
    await admin.deleteGroups([config.consumer.groupId]);
    const [t] = await admin.fetchOffsets({ groupId: config.consumer.groupId, topics: [topic] });
    expect(t!.partitions.every((p) => p.offset === '-1')).toBe(true);

    const clickhouse = await openClickHouse(config.clickhouse);
    try {
      const deps: ResumeDeps = { clickhouse, admin, records, lookup: new SchemaLookup(eventTypes) };
      const lastRows = new Map(
        (await queryRows<{ p: number; last: string }>(clickhouse, 'SELECT _kafka_partition AS p, max(_kafka_offset) AS last FROM cost_metrics_ts WHERE _kafka_topic = {topic:String} GROUP BY p', { topic })).map((r) => [Number(r.p), Number(r.last)] as const),
      );
      const ends = await admin.fetchTopicOffsets(topic);
      const got: Record<number, number> = {};
      const want: Record<number, number> = {};
      for (const e of ends) {
        got[e.partition] = await resumePosition(deps, { topic, partition: e.partition, eventType: costType });
        want[e.partition] = lastRows.has(e.partition) ? lastRows.get(e.partition)! + 1 : 0;
      }
      expect(got).toEqual(want);
      // the offsets after the last rows are below the log ends (300 events arrived since)
      expect(ends.reduce((n, e) => n + Number(e.high), 0) - Object.values(got).reduce((a, b) => a + b, 0)).toBe(300);

      // The topic deleted and created again: a new log from offset 0, shorter than the old one.
      await recreateTopic(config, topic);
      await emit(config, 200, 10_000);
      const newEnds = await admin.fetchTopicOffsets(topic);
      // Partitions holding records hold fewer than before (the old rows reach past the new log's end).
      const filled = newEnds.filter((e) => Number(e.high) > 0);
      expect(filled.length).toBeGreaterThan(0);
      expect(filled.every((e) => Number(e.high) < lastRows.get(e.partition)!)).toBe(true);
      const afterRecreation: Record<number, number> = {};
      for (const e of newEnds) afterRecreation[e.partition] = await resumePosition(deps, { topic, partition: e.partition, eventType: costType });
      expect(afterRecreation).toEqual(Object.fromEntries(newEnds.map((e) => [e.partition, 0])));
    } finally {
      await clickhouse.close();
    }
  }, 300_000);
});
