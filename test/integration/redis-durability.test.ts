import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DeadLetterQueue, DeadLetterWriteAborted, type PoisonLetter } from '../../consumers/dead-letter-queue.js';
import { IngestWorker } from '../../consumers/worker.js';
import { createLogger } from '../../lib/logger.js';
import { checkRedisPersistence, VolatileRedisError, type RedisDurability } from '../../lib/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { testConfig } from '../helpers/stack.js';

/**
 * A dead letter is committed past once its write resolves, so the write must resolve only once
 * durable. On redis-servers of this file's own (ports 16402-16406): letters acknowledged, then
 * kill -9 at once and a restart: every one is there; a Redis that can lose acknowledged writes
 * is refused at start-up, naming the setting; a write to an unreachable Redis gives up when its
 * caller aborts.
 */
const dir = mkdtempSync(join(tmpdir(), 'ingest-redis-durability-'));
const servers: RedisServer[] = [];
const clients: Redis[] = [];
const silent = createLogger({}, 'silent');

function server(port: number, args: readonly string[]): RedisServer {
  const s = new RedisServer(port, join(dir, String(port)), [...args]);
  servers.push(s);
  return s;
}
function client(s: RedisServer): Redis {
  const r = new Redis(s.url, { maxRetriesPerRequest: null, lazyConnect: true });
  r.on('error', () => undefined);
  clients.push(r);
  return r;
}
afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const s of servers) await s.stop(true);
});

function letter(offset: number): PoisonLetter {
  return { topic: 'ingest.cost_metrics', partition: offset % 4, offset, reason: 'undecodable', detail: 'garbage', value: Buffer.from(`garbage ${offset}`) };
}

/** Writes `n` letters concurrently (each resolved = acknowledged as durable), kill -9s Redis at once, restarts it and counts them. */
async function acknowledgedThenKilled(s: RedisServer, durability: RedisDurability, n: number): Promise<{ acknowledged: number; found: number; bound: number }> {
  const config = testConfig({ redis: { url: s.url } });
  const redis = client(s);
  await redis.connect();
  const queue = new DeadLetterQueue(redis, config.deadLetter, undefined, silent, { durability });
  let acknowledged = 0;
  await Promise.all(Array.from({ length: n }, (_, i) => queue.poison(letter(i)).then(() => acknowledged++)));
  await s.stop(true);
  redis.disconnect();
  await queue.close().catch(() => undefined);
  await s.start();
  const after = client(s);
  await after.connect();
  const again = new DeadLetterQueue(after, config.deadLetter, undefined, silent, { durability });
  const counts = await again.queue.getJobCounts('waiting', 'failed', 'delayed', 'active', 'completed');
  const found = Object.values(counts).reduce((a, b) => a + b, 0);
  const { letters: bound } = await again.usage();
  await again.close();
  return { acknowledged, found, bound };
}

describe('an acknowledged letter survives kill -9 of Redis', () => {
  it('appendfsync always: 300 letters acknowledged, kill -9 at once, restart: 300 letters and 300 slots', async () => {
    const s = server(16402, RedisServer.DURABLE_ARGS);
    await s.start();
    const probe = client(s);
    await probe.connect();
    const { durability } = await checkRedisPersistence(probe, s.url, false, silent);
    expect(durability).toEqual({ kind: 'fsync-always' });
    const r = await acknowledgedThenKilled(s, durability, 300);
    console.log(`appendfsync always: ${JSON.stringify(r)}`);
    expect(r).toEqual({ acknowledged: 300, found: 300, bound: 300 });
  });

  it('the same kill on an RDB-only Redis accepted with REDIS_ALLOW_VOLATILE loses them (what the check refuses)', async () => {
    const s = server(16403, ['--appendonly', 'no', '--save', '3600 1', '--maxmemory-policy', 'noeviction']);
    await s.start();
    const probe = client(s);
    await probe.connect();
    const { durability } = await checkRedisPersistence(probe, s.url, true, silent);
    expect(durability).toEqual({ kind: 'none' });
    const r = await acknowledgedThenKilled(s, durability, 300);
    console.log(`RDB only, REDIS_ALLOW_VOLATILE: ${JSON.stringify(r)}`);
    expect(r.acknowledged).toBe(300);
    expect(r.found).toBeLessThan(300);
  });
});

describe('the start-up check refuses a Redis that can lose acknowledged writes, naming the setting', () => {
  async function refusal(args: readonly string[], port: number): Promise<string> {
    const s = server(port, args);
    await s.start();
    const probe = client(s);
    await probe.connect();
    const err = await checkRedisPersistence(probe, s.url, false, silent).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VolatileRedisError);
    return (err as Error).message;
  }

  it('appendfsync everysec (Redis without WAITAOF, no replica)', async () => {
    const message = await refusal(['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'], 16404);
    expect(message).toContain('appendfsync everysec: a letter Redis acknowledged before its next fsync is lost in a crash; set appendfsync always');
    expect(message).toContain('REDIS_URL redis://127.0.0.1:16404');
    expect(message).toContain('REDIS_ALLOW_VOLATILE=true');
  });

  it('RDB snapshots only', async () => {
    const message = await refusal(['--appendonly', 'no', '--save', '3600 1', '--maxmemory-policy', 'noeviction'], 16405);
    expect(message).toContain('RDB snapshots only (appendonly no, save "3600 1"): a letter written since the last snapshot is lost in a crash; set appendonly yes and appendfsync always');
  });

  it('IngestWorker.start refuses the everysec Redis before it consumes', async () => {
    const config = testConfig({ redis: { url: 'redis://127.0.0.1:16404' }, consumer: { eventTypes: ['cost_metrics'] } });
    await expect(IngestWorker.start(config, { log: silent })).rejects.toThrow(/appendfsync everysec.*set appendfsync always/);
  });
});

describe('a letter write can be given up', () => {
  it('to an unreachable Redis: rejects with DeadLetterWriteAborted within 100 ms of the abort', async () => {
    const s = server(16406, RedisServer.DURABLE_ARGS);
    await s.start();
    const redis = client(s);
    await redis.connect();
    const config = testConfig({ redis: { url: s.url } });
    const queue = new DeadLetterQueue(redis, config.deadLetter, undefined, silent, { durability: { kind: 'fsync-always' } });
    queue.queue.on('error', () => undefined);
    await queue.poison(letter(1));
    await s.stop(true);
    const controller = new AbortController();
    const write = queue.poison(letter(2), { signal: controller.signal });
    const settled = write.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 500));
    const abortedAt = Date.now();
    controller.abort();
    const outcome = await settled;
    const ms = Date.now() - abortedAt;
    console.log(`write to a dead Redis given up ${ms} ms after the abort`);
    expect(outcome).toBeInstanceOf(DeadLetterWriteAborted);
    expect(ms).toBeLessThan(100);
    // Already aborted: rejects without trying.
    await expect(queue.poison(letter(3), { signal: controller.signal })).rejects.toBeInstanceOf(DeadLetterWriteAborted);
    redis.disconnect();
    await queue.close().catch(() => undefined);
  });
});
