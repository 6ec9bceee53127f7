import { afterAll, describe, expect, it } from 'vitest';
import type { RowInserter } from '../../consumers/clickhouse-inserter.js';
import { IngestWorker } from '../../consumers/worker.js';
import { createKafka } from '../../lib/kafka.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costEvents } from '../helpers/cost-events.js';
import { createTopics, testConfig, waitFor } from '../helpers/stack.js';

/**
 * A worker whose shutdown runs out of time (an insert that does not return within
 * SHUTDOWN_TIMEOUT_MS) exits without having flushed. Its consumer must still leave the group:
 * otherwise the group holds its partitions until the session times out, and the worker that
 * replaces it (a rolling upgrade, a rescheduled pod) starts a whole session late. Here the
 * session is 30 s, so a member still listed right after stop() is one that did not leave.
 */
describe('a shutdown that runs out of time', () => {
  const config = testConfig({
    consumer: { eventTypes: ['cost_metrics'], sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 30_000, heartbeatIntervalMs: 3_000 },
    batch: { maxRows: 100, maxWaitMs: 100 },
    shutdown: { timeoutMs: 2_000 },
  });
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let producer: IngestProducer | undefined;
  let worker: IngestWorker | undefined;
  afterAll(async () => {
    release();
    await producer?.close();
    await worker?.stop().catch(() => undefined);
  });

  it('leaves the consumer group at once (its partitions are not held for the session timeout)', async () => {
    await createTopics(config, ['cost_metrics']);
    let insertsStarted = 0;
    // Every insert hangs until the end of the test: the flush cannot finish within the bound.
    const hanging = (_inner: RowInserter): RowInserter => async () => {
      insertsStarted++;
      await released;
      throw new Error('released at the end of the test');
    };
    worker = await IngestWorker.start(config, { wrapInserter: hanging });
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    await producer.emitCostMetrics(costEvents(500));
    await waitFor('an insert in flight', async () => insertsStarted > 0, 60_000);

    const admin = createKafka(config.kafka).admin();
    await admin.connect();
    try {
      const members = async () => (await admin.describeGroups([config.consumer.groupId])).groups[0]!.members.length;
      expect(await members()).toBe(1);
      await expect(worker.stop()).rejects.toThrow(/join timed out|shutdown exceeded/);
      // Right after the bound, not a session later.
      expect(await members()).toBe(0);
    } finally {
      await admin.disconnect();
    }
  }, 120_000);
});
