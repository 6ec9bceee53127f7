import type { Logger } from './logger.js';

/**
 * Retries `fn` with exponential backoff until it succeeds or `signal` aborts (then RetryAborted,
 * as retryRetriable, so a caller tells a stop or rebalance from a failure). For writes the
 * data path cannot skip (a dead-letter write): while they fail, the partition stalls (and
 * backpressure pauses it) rather than losing the message.
 */
export async function retryUntilDone<T>(what: string, fn: () => Promise<T>, log: Logger, opts: { initialMs?: number; maxMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  let delay = opts.initialMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (opts.signal?.aborted) throw new RetryAborted(`${what}: aborted after a failed attempt`, err);
      if (attempt === 1 || attempt % 10 === 0) log.warn(`${what} failed; retrying`, { attempt, err: err as Error });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(opts.maxMs ?? 5_000, delay * 2);
    }
  }
}

/** Capped exponential backoff. */
export interface Backoff {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

/**
 * The wait before retry number `attempt` (1 = after the first failure): "full jitter", a
 * uniform draw in [0, min(max, initial * 2^(attempt-1))]. Full jitter rather than a fixed
 * doubling because every partition of every worker fails at once when ClickHouse goes down;
 * fixed delays would bring them all back in the same instant on recovery (AWS Architecture
 * Blog, "Exponential Backoff And Jitter").
 */
export function backoffDelayMs(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxBackoffMs, backoff.initialBackoffMs * 2 ** Math.min(attempt - 1, 52));
  return Math.floor(random() * ceiling);
}

/** Thrown by retryRetriable when its signal aborted (a rebalance or a stop) before `fn` succeeded. */
export class RetryAborted extends Error {
  override readonly name = 'RetryAborted';
  constructor(
    message: string,
    /** The last failure, if any attempt failed. */
    readonly lastError?: unknown,
  ) {
    super(message);
  }
}

export interface RetryOptions {
  readonly backoff: Backoff;
  /** Aborting stops the loop at the next failure or during a wait (the attempt in progress finishes). */
  readonly signal: AbortSignal;
  /** True when the failure may be retried; anything else is rethrown at once. */
  readonly isRetriable: (err: unknown) => boolean;
  /** Told of each failure before the wait (for logs and metrics). */
  readonly onFailure?: (err: unknown, attempt: number, delayMs: number) => void;
  readonly random?: () => number;
  /** Resolves after `ms` or when `signal` aborts, whichever first. Injected by unit tests. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/**
 * Runs `fn` until it succeeds, for as long as it takes, waiting a backoff (backoffDelayMs)
 * after each retriable failure. Never gives up on its own: Kafka is the buffer while the
 * downstream is out. It stops only when `signal` aborts (throws RetryAborted at the next failure
 * or wait; the first attempt is always made) or `fn` throws
 * something not retriable (rethrown). Returns `fn`'s value and the number of failures seen.
 */
export async function retryRetriable<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<{ value: T; failures: number }> {
  const sleep = opts.sleep ?? abortableSleep;
  // No abort check before the first attempt: a stop aborts the signal before the final flush,
  // and each batch of that flush still gets one attempt (it only loses its retries).
  for (let attempt = 1; ; attempt++) {
    try {
      return { value: await fn(), failures: attempt - 1 };
    } catch (err) {
      if (!opts.isRetriable(err)) throw err;
      if (opts.signal.aborted) throw new RetryAborted('aborted after a failed attempt', err);
      const delay = backoffDelayMs(attempt, opts.backoff, opts.random);
      opts.onFailure?.(err, attempt, delay);
      await sleep(delay, opts.signal);
      if (opts.signal.aborted) throw new RetryAborted('aborted while backing off', err);
    }
  }
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
