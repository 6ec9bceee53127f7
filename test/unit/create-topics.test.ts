import type { Admin } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createTopicsWithLeaders, isTopicAlreadyExists } from '../../lib/kafka.js';

/** An admin whose metadata answers come from `answers`, one per call (the last one repeats). */
function fakeAdmin(answers: (Error | { leaders: number[] })[], create: () => Promise<boolean> = async () => true) {
  let calls = 0;
  const admin = {
    createTopics: create,
    fetchTopicMetadata: async ({ topics }: { topics: string[] }) => {
      const a = answers[Math.min(calls++, answers.length - 1)]!;
      if (a instanceof Error) throw a;
      return { topics: topics.map((name) => ({ name, partitions: a.leaders.map((leader, partitionId) => ({ partitionId, leader })) })) };
    },
  };
  return { admin: admin as unknown as Admin, calls: () => calls };
}
const kafkaError = (type: string) => Object.assign(new Error(`broker says ${type}`), { type });

describe('createTopicsWithLeaders', () => {
  it('asks again while the broker does not know the new topic yet or a partition has no leader', async () => {
    const { admin, calls } = fakeAdmin([kafkaError('UNKNOWN_TOPIC_OR_PARTITION'), kafkaError('LEADER_NOT_AVAILABLE'), { leaders: [1, -1] }, { leaders: [1, 1] }]);
    await expect(createTopicsWithLeaders(admin, [{ topic: 't', numPartitions: 2 }])).resolves.toBe(true);
    expect(calls()).toBe(4);
  });

  it('counts a topic another client created in between as created', async () => {
    const exists = Object.assign(new Error('Topic with this name already exists'), { errors: [kafkaError('TOPIC_ALREADY_EXISTS')] });
    const { admin } = fakeAdmin([{ leaders: [1] }], async () => Promise.reject(exists));
    await expect(createTopicsWithLeaders(admin, [{ topic: 't' }])).resolves.toBe(false);
  });

  it('passes any other error on, and gives up after its bound naming the topics and what it waited for', async () => {
    await expect(createTopicsWithLeaders(fakeAdmin([kafkaError('TOPIC_AUTHORIZATION_FAILED')]).admin, [{ topic: 't' }])).rejects.toThrow(/TOPIC_AUTHORIZATION_FAILED/);
    await expect(createTopicsWithLeaders(fakeAdmin([], async () => Promise.reject(kafkaError('INVALID_REPLICATION_FACTOR'))).admin, [{ topic: 't' }])).rejects.toThrow(/INVALID_REPLICATION_FACTOR/);
    await expect(createTopicsWithLeaders(fakeAdmin([{ leaders: [-1] }]).admin, [{ topic: 'a.cost_metrics' }], 300)).rejects.toThrow(
      'created topics a.cost_metrics, but after 300 ms no leader yet for a.cost_metrics[0]',
    );
  });

  it('recognises "already exists" alone and as every error of an aggregate, not a mixed one', () => {
    expect(isTopicAlreadyExists(kafkaError('TOPIC_ALREADY_EXISTS'))).toBe(true);
    expect(isTopicAlreadyExists({ errors: [kafkaError('TOPIC_ALREADY_EXISTS'), kafkaError('TOPIC_ALREADY_EXISTS')] })).toBe(true);
    expect(isTopicAlreadyExists({ message: 'x', errors: [kafkaError('TOPIC_ALREADY_EXISTS'), kafkaError('INVALID_PARTITIONS')] })).toBe(false);
    expect(isTopicAlreadyExists(kafkaError('INVALID_PARTITIONS'))).toBe(false);
  });
});
