import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkerChild } from '../../bench/worker-child.js';
import { IngestWorker } from '../../consumers/worker.js';
import { createLogger, type Logger } from '../../lib/logger.js';
import { checkRedisPersistence, VolatileRedisError } from '../../lib/redis.js';
import { RedisServer } from '../helpers/redis-server.js';
import { testConfig, uniqueId, waitFor } from '../helpers/stack.js';

/**
 * Redis as a dependency, on redis-servers of this file's own (ports TEST_REDIS_PORT_BASE..+4,
 * default REDIS_PORT+1..+5): the start-up persistence check against a volatile, an AOF, an
 * evicting and a CONFIG-less server; /readyz across a Redis outage; and a worker child's
 * stderr across a Redis restart, every line of which must be one JSON object.
 */
const base = Number(process.env.TEST_REDIS_PORT_BASE ?? Number(process.env.REDIS_PORT ?? 6380) + 1);
const dir = mkdtempSync(join(tmpdir(), 'ingest-redis-'));
const servers: RedisServer[] = [];
async function server(offset: number, args: string[]): Promise<RedisServer> {
  const s = new RedisServer(base + offset, join(dir, String(offset)), args);
  servers.push(s);
  await s.start();
  return s;
}
afterAll(async () => {
  for (const s of servers) await s.stop(true);
});

/** A logger that keeps what it was told, to check the warnings. */
function recordingLogger(): Logger & { lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const log = {
    lines,
    debug: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'debug', msg, fields }),
    info: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'info', msg, fields }),
    warn: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'warn', msg, fields }),
    error: (msg: string, fields?: Record<string, unknown>) => void lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return log;
}

async function check(url: string, allowVolatile = false, log: Logger = createLogger({}, 'silent')) {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    return await checkRedisPersistence(redis, url, allowVolatile, log);
  } finally {
    redis.disconnect();
  }
}

const VOLATILE = ['--appendonly', 'no', '--save', ''];
// What a dead letter's write needs on a Redis without WAITAOF (Debian 12's is 7.0) or replicas.
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'];

describe('Redis persistence check at start-up', () => {
  it('refuses a Redis without AOF or RDB, naming REDIS_URL with its password redacted, unless REDIS_ALLOW_VOLATILE', async () => {
    const s = await server(0, [...VOLATILE, '--requirepass', 's3cret-pw']);
    const url = `redis://:s3cret-pw@127.0.0.1:${s.port}`;
    const err = await check(url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VolatileRedisError);
    const message = (err as Error).message;
    expect(message).toContain(`REDIS_URL redis://:***@127.0.0.1:${s.port}`);
    expect(message).not.toContain('s3cret-pw');
    expect(message).toContain('no persistence (appendonly no, save "")');
    expect(message).toContain('REDIS_ALLOW_VOLATILE=true');

    const log = recordingLogger();
    const found = await check(url, true, log);
    expect(found.kind).toBe('volatile');
    expect(log.lines.map((l) => l.level)).toEqual(['warn']);
    expect(JSON.stringify(log.lines)).not.toContain('s3cret-pw');
  });

  it('accepts an AOF Redis with appendfsync always, and refuses it once its maxmemory-policy evicts keys, or it fsyncs every second, or keeps RDB snapshots only', async () => {
    const s = await server(1, AOF);
    expect(await check(s.url)).toMatchObject({ kind: 'durable', durability: { kind: 'fsync-always' }, facts: { appendonly: 'yes', appendfsync: 'always', save: '', maxmemoryPolicy: 'noeviction' } });
    s.cli('config', 'set', 'maxmemory-policy', 'allkeys-lru');
    await expect(check(s.url)).rejects.toThrow(/maxmemory-policy allkeys-lru evicts keys/);
    s.cli('config', 'set', 'maxmemory-policy', 'noeviction');
    s.cli('config', 'set', 'appendfsync', 'everysec');
    await expect(check(s.url)).rejects.toThrow(/appendfsync everysec: .*set appendfsync always/);
    // RDB alone loses what was written since the last snapshot.
    s.cli('config', 'set', 'appendonly', 'no');
    s.cli('config', 'set', 'save', '3600 1');
    await expect(check(s.url)).rejects.toThrow(/RDB snapshots only \(appendonly no, save "3600 1"\)/);
  });

  it('where CONFIG is disabled (managed Redis) and there is neither WAITAOF nor a replica, refuses unless REDIS_ALLOW_VOLATILE (then warns)', async () => {
    const s = await server(2, [...AOF, '--rename-command', 'CONFIG', '']);
    await expect(check(s.url)).rejects.toThrow(/appendfsync cannot be read \(CONFIG refused\)/);
    const log = recordingLogger();
    const found = await check(s.url, true, log);
    expect(found.durability).toEqual({ kind: 'none' });
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]!.level).toBe('warn');
    expect(log.lines[0]!.msg).toMatch(/REDIS_ALLOW_VOLATILE=true/);
  });

  it('IngestWorker.start refuses the volatile Redis before it consumes', async () => {
    const s = servers[0]!;
    const config = testConfig({ redis: { url: `redis://:s3cret-pw@127.0.0.1:${s.port}` } });
    await expect(IngestWorker.start(config, { log: createLogger({}, 'silent') })).rejects.toThrow(VolatileRedisError);
  });
});

describe('/readyz follows its dependencies', () => {
  it('is 200, turns 503 naming redis within seconds of Redis going away, and 200 again after its restart; /healthz stays 200', async () => {
    const s = await server(3, AOF);
    const config = testConfig({ redis: { url: s.url }, consumer: { eventTypes: ['cost_metrics'] }, metrics: { readyProbeIntervalMs: 500 } });
    const worker = await IngestWorker.start(config, { log: createLogger({}, 'silent') });
    const get = async (path: string) => {
      const res = await fetch(`${worker.metricsUrl}${path}`);
      return { status: res.status, body: await res.text() };
    };
    try {
      expect(await waitFor('readyz 200', async () => (await get('/readyz')).status === 200, 30_000)).toBe(true);
      await s.stop(true);
      const downAt = Date.now();
      const down = await waitFor('readyz 503', async () => {
        const r = await get('/readyz');
        if (r.status !== 503) throw new Error(`still ${r.status} ${r.body.trim()}`);
        return r;
      }, 10_000);
      const seconds = (Date.now() - downAt) / 1000;
      console.log(`readyz: 503 after ${seconds.toFixed(1)} s: ${down.body.trim()}`);
      expect(seconds).toBeLessThan(5);
      expect(down.body).toMatch(/^redis: /m);
      expect(down.body).not.toMatch(/^(kafka|clickhouse): /m);
      expect((await get('/healthz')).status).toBe(200);
      await s.start();
      await waitFor('readyz 200 again', async () => (await get('/readyz')).status === 200, 15_000);
    } finally {
      await s.start().catch(() => undefined);
      await worker.stop();
    }
  });
});

describe('logs stay one JSON object per line', () => {
  it("a worker child's stderr across a Redis restart: every line parses, and the outage is logged once as a warning", async () => {
    const s = await server(4, AOF);
    const id = uniqueId('logs');
    const child = await WorkerChild.spawn({
      id,
      topicPrefix: `${id}.`,
      runDir: mkdtempSync(join(tmpdir(), 'ingest-logs-')),
      redisUrl: s.url,
      env: { LOG_LEVEL: 'info', KAFKA_CREATE_TOPICS: 'true', READY_PROBE_INTERVAL_MS: '500' },
    });
    try {
      await s.stop(true);
      await waitFor('readyz 503', async () => (await fetch(`${child.metricsUrl}/readyz`)).status === 503, 10_000);
      // Long enough for several reconnect attempts, BullMQ's blocking retry worker and the depth timer.
      await new Promise((r) => setTimeout(r, 6_000));
      await s.start();
      await waitFor('readyz 200', async () => (await fetch(`${child.metricsUrl}/readyz`)).status === 200, 20_000);
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      expect(await child.stop()).toBe(0);
    }
    const lines = readFileSync(child.logPath, 'utf8').split('\n').filter((l) => l.length > 0);
    const notJson = lines.filter((l) => {
      try {
        const v = JSON.parse(l);
        return typeof v !== 'object' || v === null || Array.isArray(v);
      } catch {
        return true;
      }
    });
    expect(notJson, 'lines of the worker log that are not one JSON object').toEqual([]);
    const msgs = lines.map((l) => JSON.parse(l) as { msg: string; level: string });
    expect(msgs.filter((m) => m.msg === 'redis unreachable: commands wait until it is back').length).toBeGreaterThanOrEqual(1);
    expect(msgs.some((m) => m.msg === 'redis reachable again')).toBe(true);
  });
});
