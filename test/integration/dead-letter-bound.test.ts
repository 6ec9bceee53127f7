import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetterQueue, type PoisonLetter } from '../../consumers/dead-letter-queue.js';
import { RedisServer } from '../helpers/redis-server.js';
import { testConfig, waitFor } from '../helpers/stack.js';

/**
 * The queue's bound on a real Redis of this file's own (port 16401, appendfsync always): a
 * letter dead-lettered again after it landed (its message read again from Kafka) must not take
 * a slot that nothing ever releases.
 */
const server = new RedisServer(16401, mkdtempSync(join(tmpdir(), 'ingest-dlq-bound-')), [...RedisServer.DURABLE_ARGS]);
let redis: Redis;
const queues: DeadLetterQueue[] = [];

beforeAll(async () => {
  await server.start();
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  for (const q of queues) await q.close();
  redis?.disconnect();
  await server.stop(true);
});

function letter(offset: number): PoisonLetter {
  return { topic: 'ingest.cost_metrics', partition: 0, offset, reason: 'unknown_fingerprint', detail: 'no known writer schema', value: Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, offset]) };
}

/** A queue whose retry worker lands every letter at once (settled, not in the table). */
function landingQueue(maxLetters = 10): DeadLetterQueue {
  const config = testConfig({ redis: { url: server.url }, deadLetter: { maxLetters, backoffMs: 50 } });
  const q = new DeadLetterQueue(redis, config.deadLetter, undefined);
  queues.push(q);
  q.startRetryWorker({
    decode: () => ({ table: 'cost_metrics_ts', record: {} }),
    insert: async () => undefined,
    // Every partition committed far past any letter: settled.
    committedOffsets: async () => new Map(Array.from({ length: 16 }, (_, p) => [p, Number.MAX_SAFE_INTEGER] as const)),
    landed: async (_table, messages) => messages.map(() => false),
  });
  return q;
}

describe('re-dead-lettering a letter that landed', () => {
  it('takes no slot of the bound: usage is 0 before and after, the job stays completed', async () => {
    const q = landingQueue();
    await q.poison(letter(1));
    await waitFor('the letter landed', async () => (await q.queue.getJobCounts('completed')).completed === 1);
    await waitFor('its slot released', async () => (await q.usage()).letters === 0);
    const before = await q.usage();

    // The same message read again from Kafka and dead-lettered again, three times.
    for (let i = 0; i < 3; i++) await q.poison(letter(1));
    await new Promise((r) => setTimeout(r, 500));
    const after = await q.usage();
    console.log(`usage before ${JSON.stringify(before)}, after 3 repeats ${JSON.stringify(after)}`);
    expect(before).toEqual({ letters: 0, bytes: 0 });
    expect(after).toEqual({ letters: 0, bytes: 0 });
    expect(await q.queue.getJobCounts('completed', 'waiting', 'delayed', 'failed')).toEqual({ completed: 1, waiting: 0, delayed: 0, failed: 0 });
  });

  it('a queue of 2 letters keeps taking new letters after landed ones are dead-lettered again', async () => {
    const q = landingQueue(2);
    await q.poison(letter(10));
    await q.poison(letter(11));
    await waitFor('both landed and released', async () => (await q.queue.getJobCounts('completed')).completed === 2 && (await q.usage()).letters === 0);
    await q.poison(letter(10));
    await q.poison(letter(11));
    // Room for two new letters: before the fix the two repeats held both slots and this was refused.
    await q.poison(letter(12));
    await q.poison(letter(13));
    await waitFor('all four landed', async () => (await q.queue.getJobCounts('completed')).completed === 4);
    await waitFor('the bound empty', async () => (await q.usage()).letters === 0);
  });

  it('a slot taken by a write that raced the completion is released: by the next write of that letter, or by reconcileBound at start', async () => {
    const q = landingQueue();
    await q.poison(letter(20));
    await q.poison(letter(21));
    await waitFor('both landed and released', async () => (await q.queue.getJobCounts('completed')).completed === 2 && (await q.usage()).letters === 0);
    // The race's outcome, made by hand: two completed letters that still hold a slot of 100 bytes each.
    const ids = (await q.list(['completed'], 10)).map((j) => String(j.id));
    const name = q.queue.name;
    for (const id of ids) await redis.hset(`${name}:bound:letters`, id, 100);
    await redis.incrby(`${name}:bound:bytes`, 200);
    expect(await q.usage()).toEqual({ letters: 2, bytes: 200 });
    await q.poison(letter(20));
    expect(await q.usage()).toEqual({ letters: 1, bytes: 100 });
    expect(await q.reconcileBound()).toBe(1);
    expect(await q.usage()).toEqual({ letters: 0, bytes: 0 });
  });
});
