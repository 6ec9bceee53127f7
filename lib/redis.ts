import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from './config.js';
import type { Logger } from './logger.js';

/**
 * The one Redis client factory, and the start-up check that the Redis behind REDIS_URL keeps
 * what we write to it.
 *
 * Redis holds the dead letters (BullMQ) and the batch journal. A Redis that keeps nothing on
 * disk (no AOF, no RDB) loses them at its next restart, and one with an evicting
 * `maxmemory-policy` drops them under memory pressure; neither fails loudly later, so we
 * refuse it at start-up unless the operator opts out for throwaway use.
 */

/** REDIS_URL with its password (and a user name's password part) replaced, safe to log. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // Not parseable: hide everything between the scheme and the last '@'.
    return url.replace(/\/\/.*@/, '//***@');
  }
}

/**
 * A client that queues commands while disconnected (maxRetriesPerRequest: null, as BullMQ
 * requires) and reconnects with capped backoff. Its 'error' events go to `log` as one JSON
 * line per outage (and per reconnect attempt at debug), never to ioredis's default
 * multi-line "Unhandled error event" dump on stderr.
 */
export function createRedis(url: string, log: Logger, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    // Reconnect quickly after a short blip, then every 2 s: Redis is local to the worker's
    // data path (journal, dead letters), so a long backoff would only lengthen the outage.
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    ...options,
  });
  attachRedisLogging(redis, url, log);
  return redis;
}

/** Logs a client's connection errors once per outage, and its recovery; returns the client. */
export function attachRedisLogging<T extends Pick<Redis, 'on'>>(redis: T, url: string, log: Logger): T {
  let down = false;
  const where = redactRedisUrl(url);
  redis.on('error', (err: Error & { code?: string }) => {
    const fields = { redis: where, err: { name: err.name, message: err.message, code: err.code } };
    if (down) log.debug('redis still unreachable', fields);
    else log.warn('redis unreachable: commands wait until it is back', fields);
    down = true;
  });
  redis.on('ready', () => {
    if (down) log.info('redis reachable again', { redis: where });
    down = false;
  });
  return redis;
}

/** What CONFIG GET said about a Redis's persistence; `unknown` when CONFIG is not allowed. */
export type RedisPersistence =
  | { kind: 'durable'; appendonly: string; save: string; maxmemoryPolicy: string }
  | { kind: 'volatile'; appendonly: string; save: string; maxmemoryPolicy: string; problems: string[] }
  | { kind: 'unknown'; reason: string };

export async function inspectRedisPersistence(redis: Pick<Redis, 'config'>): Promise<RedisPersistence> {
  let values: Record<string, string>;
  try {
    values = {};
    for (const key of ['appendonly', 'save', 'maxmemory-policy']) {
      // CONFIG GET answers [name, value, name, value, …].
      const pairs = (await redis.config('GET', key)) as string[];
      for (let i = 0; i + 1 < pairs.length; i += 2) values[pairs[i]!] = pairs[i + 1]!;
    }
  } catch (err) {
    // Managed Redis (ElastiCache, Memorystore, Upstash…) renames or forbids CONFIG.
    return { kind: 'unknown', reason: (err as Error).message };
  }
  const appendonly = values.appendonly ?? '';
  const save = values.save ?? '';
  const maxmemoryPolicy = values['maxmemory-policy'] ?? '';
  const problems: string[] = [];
  if (appendonly !== 'yes' && save.trim() === '') problems.push(`no persistence (appendonly ${appendonly || '?'}, save "${save}"): dead letters and the batch journal vanish at its next restart`);
  if (maxmemoryPolicy && maxmemoryPolicy !== 'noeviction') problems.push(`maxmemory-policy ${maxmemoryPolicy} evicts keys under memory pressure (dead letters, BullMQ's bookkeeping); use noeviction`);
  if (problems.length > 0) return { kind: 'volatile', appendonly, save, maxmemoryPolicy, problems };
  return { kind: 'durable', appendonly, save, maxmemoryPolicy };
}

export class VolatileRedisError extends ConfigError {}

/**
 * Refuses a Redis that would lose or evict what we keep there, with one message naming
 * REDIS_URL (password redacted) and the opt-out; warns when CONFIG is unavailable, because
 * then we cannot tell. `allowVolatile` (REDIS_ALLOW_VOLATILE=true) turns the refusal into a warning.
 */
export async function checkRedisPersistence(redis: Pick<Redis, 'config'>, url: string, allowVolatile: boolean, log: Logger): Promise<RedisPersistence> {
  const found = await inspectRedisPersistence(redis);
  const where = redactRedisUrl(url);
  if (found.kind === 'unknown') {
    log.warn('cannot check Redis persistence (CONFIG GET refused); make sure it runs with AOF or RDB and maxmemory-policy noeviction', { redis: where, reason: found.reason });
  } else if (found.kind === 'volatile') {
    const message = `REDIS_URL ${where}: ${found.problems.join('; ')}. Configure it with appendonly yes (or RDB save points) and maxmemory-policy noeviction (scripts/services.sh starts one), or set REDIS_ALLOW_VOLATILE=true for a throwaway setup`;
    if (!allowVolatile) throw new VolatileRedisError(message);
    log.warn('REDIS_ALLOW_VOLATILE=true: using a Redis that may lose dead letters', { redis: where, problems: found.problems });
  }
  return found;
}
