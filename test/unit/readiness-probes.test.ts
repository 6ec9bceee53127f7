import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReadinessProbes } from '../../consumers/health-server.js';

/** The cached readiness probes: results on a timer, hung probes fail and never pile up. */
describe('ReadinessProbes', () => {
  afterEach(() => void vi.useRealTimers());

  it('reports each failing dependency by name, a hung probe as failed at the timeout, and recovers', async () => {
    vi.useFakeTimers();
    let redisUp = true;
    let kafkaCalls = 0;
    let releaseKafka: (() => void) | undefined;
    const outcomes: string[] = [];
    const probes = new ReadinessProbes(
      {
        redis: () => (redisUp ? Promise.resolve() : Promise.reject(new Error('connection reconnecting'))),
        kafka: () => {
          kafkaCalls++;
          // The second call hangs until released: a broker that does not answer.
          return kafkaCalls === 2 ? new Promise<void>((r) => (releaseKafka = r)) : Promise.resolve();
        },
      },
      1_000,
      (name, ok) => outcomes.push(`${name}=${ok ? 1 : 0}`),
    );
    expect(probes.failing().map((f) => f.name)).toEqual(['redis', 'kafka']); // not probed yet
    await probes.start();
    expect(probes.failing()).toEqual([]);

    redisUp = false;
    await vi.advanceTimersByTimeAsync(1_000); // tick 2: redis fails, kafka hangs
    expect(probes.failing()).toEqual([{ name: 'redis', error: 'connection reconnecting' }]);
    await vi.advanceTimersByTimeAsync(1_000); // kafka's timeout and tick 3
    expect(probes.failing().map((f) => f.name)).toEqual(['redis', 'kafka']);
    await vi.advanceTimersByTimeAsync(3_000); // still hung: not called again
    expect(kafkaCalls).toBe(2);
    expect(probes.failing().find((f) => f.name === 'kafka')!.error).toMatch(/no answer for \d+ ms|timed out/);

    redisUp = true;
    releaseKafka!();
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(probes.failing()).toEqual([]);
    expect(kafkaCalls).toBeGreaterThanOrEqual(3);
    expect(outcomes).toContain('redis=0');
    expect(outcomes.at(-1)).toMatch(/=1$/);
    probes.stop();
  });
});
