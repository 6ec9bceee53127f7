import { describe, expect, it } from 'vitest';
import { backoffDelayMs, RetryAborted, retryRetriable } from '../../lib/retry.js';

const backoff = { initialBackoffMs: 100, maxBackoffMs: 1_000 };

describe('backoffDelayMs', () => {
  it('doubles up to the cap, with full jitter in [0, ceiling]', () => {
    expect([1, 2, 3, 4, 5, 6, 60].map((a) => backoffDelayMs(a, backoff, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999, 999]);
    expect(backoffDelayMs(3, backoff, () => 0)).toBe(0);
    expect(backoffDelayMs(3, backoff, () => 0.5)).toBe(200);
  });
});

describe('retryRetriable', () => {
  it('retries retriable failures for as long as it takes, waiting the backoff between attempts', async () => {
    const waits: number[] = [];
    let calls = 0;
    const { value, failures } = await retryRetriable(
      async () => {
        if (++calls <= 30) throw Object.assign(new Error('Code: 394. QUERY_WAS_CANCELLED'), { code: '394' });
        return 'landed';
      },
      { backoff, signal: new AbortController().signal, isRetriable: () => true, random: () => 0.5, sleep: async (ms) => void waits.push(ms) },
    );
    expect({ value, failures, calls }).toEqual({ value: 'landed', failures: 30, calls: 31 });
    expect(waits.slice(0, 5)).toEqual([50, 100, 200, 400, 500]);
    expect(Math.max(...waits)).toBe(500);
  });

  it('rethrows what is not retriable at once', async () => {
    let calls = 0;
    const bug = new TypeError('x is undefined');
    await expect(retryRetriable(async () => {
      calls++;
      throw bug;
    }, { backoff, signal: new AbortController().signal, isRetriable: (e) => !(e instanceof TypeError), sleep: async () => undefined })).rejects.toBe(bug);
    expect(calls).toBe(1);
  });

  it('stops promptly when aborted during a wait, and always makes the first attempt', async () => {
    const stop = new AbortController();
    let calls = 0;
    const started = Date.now();
    const run = retryRetriable(async () => {
      calls++;
      throw new Error('ECONNREFUSED');
    }, { backoff: { initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, signal: stop.signal, isRetriable: () => true, random: () => 1 });
    setTimeout(() => stop.abort(), 20);
    const err = await run.catch((e) => e);
    expect(err).toBeInstanceOf(RetryAborted);
    expect((err as RetryAborted).lastError).toEqual(new Error('ECONNREFUSED'));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(calls).toBe(1);
    // Already aborted (a stop's final flush): one attempt, no retry.
    let once = 0;
    await expect(retryRetriable(async () => {
      once++;
      throw new Error('down');
    }, { backoff, signal: stop.signal, isRetriable: () => true })).rejects.toBeInstanceOf(RetryAborted);
    expect(once).toBe(1);
    expect(await retryRetriable(async () => 7, { backoff, signal: stop.signal, isRetriable: () => true })).toEqual({ value: 7, failures: 0 });
  });
});
