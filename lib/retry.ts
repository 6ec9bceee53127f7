import type { Logger } from './logger.js';

/**
 * Retries `fn` with exponential backoff until it succeeds or `signal` aborts. For writes the
 * data path cannot skip (a dead-letter write, a journal entry): while they fail, the
 * partition stalls (and backpressure pauses it) rather than losing the message.
 */
export async function retryUntilDone<T>(what: string, fn: () => Promise<T>, log: Logger, opts: { initialMs?: number; maxMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  let delay = opts.initialMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      if (attempt === 1 || attempt % 10 === 0) log.warn(`${what} failed; retrying`, { attempt, err: err as Error });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(opts.maxMs ?? 5_000, delay * 2);
    }
  }
}
