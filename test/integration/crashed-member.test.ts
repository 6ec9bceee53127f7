import { afterEach, describe, expect, it } from 'vitest';
import type { Consumer } from 'kafkajs';
import { platformaticMemberRemover } from '../../consumers/crashed-member.js';
import { consumerRetry, createKafka, topicName } from '../../lib/kafka.js';
import { createTopics, testConfig, waitFor } from '../helpers/stack.js';

/**
 * kafkajs restarts a crashed consumer as a new group member. It leaves under the old id when it
 * can, but not when the crash was losing the group's coordinator (a broker killed): the new
 * coordinator then holds the next rebalance until the old member's session times out. The
 * worker removes the old id itself (consumers/crashed-member.ts); here, on the real broker,
 * the removal takes a live member out of its group, and a member that is gone already is done.
 * The fault suite's coordinator kill -9 (chaos/run.ts) shows the whole path.
 */
describe('removing a crashed consumer\'s old member from its group', () => {
  const consumers: Consumer[] = [];
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.disconnect().catch(() => undefined)));
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  it('takes the member out of the group (the coordinator does not wait for it), and a second removal is a no-op', async () => {
    const config = testConfig({ consumer: { eventTypes: ['cost_metrics'] } });
    const topic = topicName(config.kafka, 'cost_metrics');
    await createTopics(config, ['cost_metrics']);
    const kafka = createKafka(config.kafka);
    // A 30 s session: without the removal the member would stay listed for that long.
    const consumer = kafka.consumer({ groupId: config.consumer.groupId, sessionTimeout: 30_000, heartbeatInterval: 10_000, rebalanceTimeout: 30_000, retry: consumerRetry(500) });
    consumers.push(consumer);
    const joins: string[] = [];
    consumer.on(consumer.events.GROUP_JOIN, (e) => joins.push(e.payload.memberId));
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachBatch: async () => undefined });
    await waitFor('joined', async () => joins.length > 0, 60_000);
    const memberId = joins[0]!;
    const admin = kafka.admin();
    await admin.connect();
    const members = async () => (await admin.describeGroups([config.consumer.groupId])).groups[0]!.members.map((m) => m.memberId);
    expect(await members()).toEqual([memberId]);

    const remover = platformaticMemberRemover(config.kafka, config.consumer.groupId);
    closers.push(remover.close);
    await remover.remove(memberId, new AbortController().signal);
    expect(await members()).not.toContain(memberId);
    // Already gone: UNKNOWN_MEMBER_ID counts as done, no retry loop.
    const t0 = Date.now();
    await remover.remove(memberId, new AbortController().signal);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await admin.disconnect();
  }, 120_000);
});
