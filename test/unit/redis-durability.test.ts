import { describe, expect, it } from 'vitest';
import { decideDurability, DurableWrites, RedisWriteNotDurable, versionAtLeast, type RedisFacts } from '../../lib/redis.js';

const base: RedisFacts = { version: '7.0.15', appendonly: 'yes', appendfsync: 'everysec', save: '', maxmemoryPolicy: 'noeviction', replicas: 0, configReadable: true };

describe('decideDurability: how a letter write is made durable, or why it cannot be', () => {
  it('Redis ≥ 7.2 with AOF: WAITAOF, whatever appendfsync says', () => {
    expect(decideDurability({ ...base, version: '7.2.4' })).toEqual({ durability: { kind: 'waitaof' }, problems: [] });
    expect(decideDurability({ ...base, version: '8.0.1', appendfsync: 'no' })).toEqual({ durability: { kind: 'waitaof' }, problems: [] });
  });

  it('a replica (and no WAITAOF, or no AOF): WAIT for one replica', () => {
    expect(decideDurability({ ...base, replicas: 2 })).toEqual({ durability: { kind: 'wait', replicas: 1 }, problems: [] });
    expect(decideDurability({ ...base, version: '7.2.0', appendonly: 'no', replicas: 1, configReadable: false })).toEqual({ durability: { kind: 'wait', replicas: 1 }, problems: [] });
  });

  it('otherwise appendfsync always, the setting the project runs its own Redis with (Debian 12 ships 7.0)', () => {
    expect(decideDurability({ ...base, appendfsync: 'always' })).toEqual({ durability: { kind: 'fsync-always' }, problems: [] });
  });

  it('refuses what can lose an acknowledged write, naming the setting', () => {
    expect(decideDurability(base).problems[0]).toMatch(/^appendfsync everysec: .*set appendfsync always/);
    expect(decideDurability({ ...base, appendonly: 'no', save: '3600 1' }).problems[0]).toMatch(/^RDB snapshots only \(appendonly no, save "3600 1"\).*set appendonly yes and appendfsync always/);
    expect(decideDurability({ ...base, appendonly: 'no' }).problems[0]).toMatch(/^no persistence \(appendonly no, save ""\)/);
    expect(decideDurability({ ...base, appendfsync: '', configReadable: false }).problems[0]).toMatch(/^appendfsync cannot be read \(CONFIG refused\)/);
    expect(decideDurability({ ...base, appendfsync: 'always', maxmemoryPolicy: 'allkeys-lru' }).problems).toEqual([expect.stringMatching(/^maxmemory-policy allkeys-lru evicts keys/)]);
  });

  it('compares versions numerically', () => {
    expect([versionAtLeast('7.2.0', 7, 2), versionAtLeast('7.10.1', 7, 2), versionAtLeast('10.0.0', 7, 2), versionAtLeast('7.0.15', 7, 2), versionAtLeast('', 7, 2)]).toEqual([true, true, true, false, false]);
  });
});

/** A fake ioredis connection: records commands; WAIT/WAITAOF answer what `answer` says, when `release` is called. */
function fakeRedis(answer: () => unknown) {
  const sent: string[] = [];
  const pending: Array<() => void> = [];
  const conn = {
    incr: async (key: string) => void sent.push(`INCR ${key}`),
    call: (cmd: string, ...args: unknown[]) => {
      sent.push(`${cmd} ${args.join(' ')}`);
      return new Promise((resolve) => pending.push(() => resolve(answer())));
    },
    disconnect: () => undefined,
  };
  return { redis: { duplicate: () => conn } as never, sent, release: () => pending.splice(0).forEach((f) => f()) };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('DurableWrites', () => {
  it('waitaof: a marker write then WAITAOF 1 0 on a connection of its own; concurrent syncs share rounds (one in flight, one queued)', async () => {
    const f = fakeRedis(() => [1, 0]);
    const d = new DurableWrites(f.redis, { kind: 'waitaof' }, 'q:durable-mark', 1_000);
    const first = d.sync();
    await tick();
    const waiting = [d.sync(), d.sync(), d.sync()];
    await tick();
    expect(f.sent).toEqual(['INCR q:durable-mark', 'WAITAOF 1 0 1000']);
    f.release();
    await first;
    await tick();
    // The three that came during the first round share the second.
    expect(f.sent).toEqual(['INCR q:durable-mark', 'WAITAOF 1 0 1000', 'INCR q:durable-mark', 'WAITAOF 1 0 1000']);
    f.release();
    await Promise.all(waiting);
  });

  it('wait: WAIT for the replicas; fewer within the timeout is RedisWriteNotDurable (retriable), and the next sync tries again', async () => {
    let acked = 0;
    const f = fakeRedis(() => acked);
    const d = new DurableWrites(f.redis, { kind: 'wait', replicas: 1 }, 'm', 50);
    const failed = d.sync();
    await tick();
    f.release();
    await expect(failed).rejects.toBeInstanceOf(RedisWriteNotDurable);
    acked = 1;
    const ok = d.sync();
    await tick();
    f.release();
    await ok;
    expect(f.sent).toEqual(['INCR m', 'WAIT 1 50', 'INCR m', 'WAIT 1 50']);
  });

  it('fsync-always and none: nothing to wait for, no command sent', async () => {
    for (const kind of ['fsync-always', 'none'] as const) {
      const f = fakeRedis(() => 0);
      await new DurableWrites(f.redis, { kind }, 'm').sync();
      expect(f.sent).toEqual([]);
    }
  });
});
