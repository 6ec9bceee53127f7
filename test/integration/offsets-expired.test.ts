import { expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { createKafka } from '../../lib/kafka.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costEvents } from '../helpers/cost-events.js';
import { auditCostRows, createTopics, testConfig, uniqueId, waitFor } from '../helpers/stack.js';

/**
 * A consumer group whose offsets are gone (expired after offsets.retention.minutes, the group
 * deleted or renamed) used to re-read every partition from the beginning and insert it again
 * under new batch cuts: 4,500 rows for 2,500 events here. A partition with no committed offset
 * now resumes above the rows its table already holds of the same log (resume-position.ts).
 */
it('a worker whose group lost its offsets inserts no row twice', async () => {
  const id = uniqueId();
  const config = testConfig({ consumer: { eventTypes: ['cost_metrics'] }, batch: { maxRows: 500, maxWaitMs: 200 } }, id);
  // The restarted worker cuts other batches (other tokens): re-read rows are not dropped as repeats.
  const restarted = testConfig({ consumer: { eventTypes: ['cost_metrics'] }, batch: { maxRows: 333, maxWaitMs: 200 } }, id);
  await createTopics(config, ['cost_metrics']);
  const emit = async (n: number, start: number) => {
    const p = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    await p.emitCostMetrics(costEvents(n, start));
    await p.close();
  };
  await emit(2_000, 0);
  let worker = await IngestWorker.start(config);
  await waitFor('first 2000', async () => (await auditCostRows(worker.clickhouse)).ids === 2_000, 120_000);
  await worker.stop();
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  await admin.deleteGroups([config.consumer.groupId]);
  await admin.disconnect();
  await emit(500, 2_000);
  worker = await IngestWorker.start(restarted);
  try {
    await waitFor('all 2500', async () => (await auditCostRows(worker.clickhouse)).ids === 2_500, 120_000);
    // Caught up: the group committed every partition to its end, so nothing is left to re-read.
    const topic = `${config.kafka.topicPrefix}cost_metrics`;
    const probe = createKafka(config.kafka).admin();
    await probe.connect();
    try {
      await waitFor('the group committed to the end of the log', async () => {
        const [committed] = await probe.fetchOffsets({ groupId: config.consumer.groupId, topics: [topic] });
        const ends = await probe.fetchTopicOffsets(topic);
        return ends.every((e) => e.high === '0' || committed!.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
      }, 60_000);
    } finally {
      await probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 2_500, offsets: 2_500, ids: 2_500 });
  } finally {
    await worker.stop();
  }
}, 300_000);
