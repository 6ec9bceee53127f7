import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer } from 'kafkajs';
import { CommitFenced, fencedPartition } from '../../consumers/commit-offsets.js';
import type { PartitionLedger } from '../../consumers/partition-ledger.js';
import { createKafka, topicName } from '../../lib/kafka.js';
import { createTopics, testConfig, waitFor } from '../helpers/stack.js';

/**
 * kafkajs retries a failed offset commit inside consumer.commitOffsets, and each retry is sent
 * under the group's generation of that moment. A retry that happens after the partition was
 * revoked must not leave (it could rewind the new owner's offset): the partition handed to
 * kafkajs is checked against the ledger every time the request is encoded. Real kafkajs, real
 * broker: the first send of a commit fails (injected as a lost request), then the ledger is or
 * is not revoked before kafkajs retries.
 */
describe('offset commits are fenced by their assignment, kafkajs retries included', () => {
  const config = testConfig({ consumer: { eventTypes: ['cost_metrics'] } });
  const topic = topicName(config.kafka, 'cost_metrics');
  const kafka = createKafka(config.kafka);
  const admin = kafka.admin();
  let consumer: Consumer;

  beforeAll(async () => {
    await createTopics(config, ['cost_metrics']);
    await admin.connect();
    consumer = kafka.consumer({ groupId: config.consumer.groupId });
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
    await waitFor('joined the group', async () => joined, 60_000);
  }, 120_000);

  afterAll(async () => {
    await consumer?.disconnect();
    await admin.disconnect();
  });

  const committedOffset = async () => {
    const [t] = await admin.fetchOffsets({ groupId: config.consumer.groupId, topics: [topic] });
    return Number(t!.partitions.find((p) => p.partition === 0)!.offset);
  };

  /**
   * A ledger whose `revoked` is read by fencedPartition at every conversion of the partition to
   * a number: the 2nd read (the first encoding) fails like a lost request, which kafkajs retries;
   * from then on it answers `revokedAfterFailure`.
   */
  function scriptedLedger(revokedAfterFailure: boolean) {
    const ledger = {
      topic,
      reads: 0,
      get revoked(): boolean {
        ledger.reads++;
        if (ledger.reads === 2) throw Object.assign(new Error('request lost (injected)'), { retriable: true });
        return ledger.reads > 2 && revokedAfterFailure;
      },
    };
    return ledger;
  }

  it('control: a commit whose first send fails is retried by kafkajs and lands', async () => {
    const ledger = scriptedLedger(false);
    await consumer.commitOffsets([{ topic, partition: fencedPartition(0, ledger as unknown as PartitionLedger), offset: '7', metadata: 'ingest/1 control' }]);
    expect(ledger.reads).toBeGreaterThanOrEqual(3); // kafkajs encoded the request again
    expect(await committedOffset()).toBe(7);
  });

  it('the retry of a commit whose assignment was revoked meanwhile is not sent', async () => {
    const before = await committedOffset();
    const ledger = scriptedLedger(true);
    const err = await consumer.commitOffsets([{ topic, partition: fencedPartition(0, ledger as unknown as PartitionLedger), offset: '42', metadata: 'ingest/1 stale' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(ledger.reads).toBeGreaterThanOrEqual(3);
    let cause: unknown = err;
    while (cause && !(cause instanceof CommitFenced)) cause = (cause as { cause?: unknown }).cause ?? (cause as { originalError?: unknown }).originalError;
    expect(cause).toBeInstanceOf(CommitFenced);
    expect(await committedOffset()).toBe(before);
  });
});
