import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadLetterQueue } from '../../consumers/dead-letter-queue.js';
import { PoisonError } from '../../lib/errors.js';
import { RedisServer } from '../helpers/redis-server.js';
import { testConfig, waitFor } from '../helpers/stack.js';

const run = promisify(execFile);
// A Redis of this file's own, persisted as letter writes require (appendfsync always).
const redisServer = new RedisServer(16408, mkdtempSync(join(tmpdir(), 'ingest-dlq-cli-')), [...RedisServer.DURABLE_ARGS]);
const root = join(import.meta.dirname, '../..');

/** Runs `npm run dlq -- …` as an operator would; returns stdout and the exit code. */
async function dlq(prefix: string, ...args: string[]): Promise<{ out: string; code: number }> {
  return dlqWith({ DLQ_QUEUE_PREFIX: prefix }, ...args);
}

async function dlqWith(env: Record<string, string>, ...args: string[]): Promise<{ out: string; code: number }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'cli/dlq.ts'), ...args], {
      cwd: root,
      env: { ...process.env, REDIS_URL: redisServer.url, ...env },
    });
    return { out: stdout, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { out: `${e.stdout ?? ''}${e.stderr ?? ''}`, code: e.code ?? 1 };
  }
}

describe('npm run dlq: list, show, replay, drop', () => {
  // Healable letters (unknown_fingerprint) rest as dead after one retry here, so the test sees them at rest.
  const config = testConfig({ redis: { url: redisServer.url }, deadLetter: { retryPeriodMs: 0 } });
  const prefix = config.deadLetter.queuePrefix;
  let redis: Redis;
  let queue: DeadLetterQueue;

  beforeAll(async () => {
    await redisServer.start();
    redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
    queue = new DeadLetterQueue(redis, config.deadLetter, undefined);
    // A retry worker that cannot decode anything: poison letters rest as dead at once.
    queue.startRetryWorker({
      decode: () => {
        throw new PoisonError('unknown_fingerprint', 'still unknown');
      },
      insert: async () => undefined,
      // Every partition committed far past any letter: settled.
      committedOffsets: async () => new Map(Array.from({ length: 16 }, (_, p) => [p, Number.MAX_SAFE_INTEGER] as const)),
      landed: async (_table, messages) => messages.map(() => false),
    });
    await queue.poison({ topic: 'ingest.cost_metrics', partition: 2, offset: 41, reason: 'unknown_fingerprint', detail: 'no known writer schema', value: Buffer.from([0xc3, 0x01, 1, 2, 3]) });
    await queue.poison({ topic: 'ingest.cost_metrics', partition: 2, offset: 42, reason: 'undecodable', detail: 'garbage', value: Buffer.from('garbage') });
    await waitFor('two dead letters', async () => (await queue.depth()).dead === 2);
  });
  afterAll(async () => {
    await queue?.close();
    redis?.disconnect();
    await redisServer.stop(true);
  });

  it('lists, shows with the original bytes, replays and drops', async () => {
    const list = await dlq(prefix, 'list', '--json');
    expect(list.code).toBe(0);
    const rows = JSON.parse(list.out) as Array<{ id: string; kind: string; what: string; where: string }>;
    expect(rows.map((r) => r.what).sort()).toEqual(['undecodable', 'unknown_fingerprint']);
    const unknown = rows.find((r) => r.what === 'unknown_fingerprint')!;
    expect(unknown.where).toBe('ingest.cost_metrics[2] @41');

    const show = await dlq(prefix, 'show', unknown.id);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.out)).toMatchObject({ reason: 'unknown_fingerprint', topic: 'ingest.cost_metrics', partition: 2, offset: 41, valueHex: 'c301010203', state: 'failed' });

    const replay = await dlq(prefix, 'replay', unknown.id);
    expect(replay.code).toBe(0);
    expect(replay.out).toMatch(/1 replayed/);
    // The retry worker tried it again with fresh attempts; still unknown, so it is dead again.
    await waitFor('dead again after the replay', async () => (await queue.get(unknown.id))?.attemptsMade === 1 && (await queue.get(unknown.id))?.isFailed());

    const other = rows.find((r) => r.what === 'undecodable')!;
    expect((await dlq(prefix, 'drop', other.id)).code).toBe(0);
    expect(await queue.get(other.id)).toBeUndefined();
    expect((await queue.depth()).dead).toBe(1);
  });

  it('never prints the password of REDIS_URL, whatever fails', async () => {
    const secret = 'pa55-w0rd-zq';
    const real = new URL(config.redis.url);
    const unreachable = await dlqWith({ DLQ_QUEUE_PREFIX: prefix, REDIS_URL: `redis://ops:${secret}@127.0.0.1:1/0` }, 'list');
    expect(unreachable.code).toBe(1);
    expect(unreachable.out).toMatch(/cannot reach Redis at redis:\/\/\*\*\*@127\.0\.0\.1:1\/0: connect ECONNREFUSED/);
    // Our Redis has no such user: it answers WRONGPASS, an error of its own.
    const refused = await dlqWith({ DLQ_QUEUE_PREFIX: prefix, REDIS_URL: `redis://ops:${secret}@${real.host}/0` }, 'list');
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/WRONGPASS/);
    for (const r of [unreachable, refused]) {
      expect(r.out).not.toContain(secret);
      expect(r.out).not.toContain('ops:');
    }
  });

  it('refuses bad usage in one line and exit code 2', async () => {
    const bad = await dlq(prefix, 'frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.out).toBe('dlq: unknown command "frobnicate" (list, show, replay, drop); see --help\n');
    expect((await dlq(prefix, 'show', 'no-such-id')).code).toBe(2);
    expect((await dlq(prefix, 'show')).out).toMatch(/show needs a job id/);
  });
});
