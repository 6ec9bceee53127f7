import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, type Config } from './config.js';
import type { Logger } from './logger.js';

/**
 * The one Redis client factory, and the start-up check that the Redis behind REDIS_URL keeps
 * what we write to it.
 *
 * Redis holds the dead letters (BullMQ). A Redis that keeps nothing on
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

/** The redis settings a client needs (tests pass a part of config.redis). */
export type RedisSettings = Pick<Config['redis'], 'url'> & Partial<Omit<Config['redis'], 'url'>>;

/**
 * The one Redis client factory (worker, dead-letter CLI, tests): the URL, TLS with a CA for
 * rediss://, and an ACL user or requirepass password, from config.redis (see
 * redisConnectionOptions). By default the client queues commands while disconnected
 * (maxRetriesPerRequest: null, as BullMQ requires) and reconnects with capped backoff; `extra`
 * overrides that. With `log`, its 'error' events go to the log as one JSON line per outage (and
 * per reconnect attempt at debug), never to ioredis's default multi-line "Unhandled error
 * event" dump on stderr.
 */
export function createRedis(config: RedisSettings, extra: RedisOptions = {}, log?: Logger): Redis {
  const redis = new Redis({
    maxRetriesPerRequest: null,
    lazyConnect: true,
    // Reconnect quickly after a short blip, then every 2 s: a long backoff would only lengthen
    // the outage of the dead-letter queue.
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 2_000),
    ...redisConnectionOptions(config),
    ...extra,
  });
  if (log) attachRedisLogging(redis, config.url, log);
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
  if (appendonly !== 'yes' && save.trim() === '') problems.push(`no persistence (appendonly ${appendonly || '?'}, save "${save}"): dead letters vanish at its next restart`);
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

/**
 * ioredis options for config.redis. Built here rather than handing ioredis the URL, because
 * ioredis lets a URL's credentials win over explicit options, and REDIS_PASSWORD (or its
 * _FILE) must win over a URL's, so the secret can live in a mounted file. A rediss:// URL gets
 * TLS with the host name checked against the certificate, and REDIS_CA_CERT as the trusted CA
 * when set (otherwise the system CAs). Pure, apart from reading the CA file.
 */
export function redisConnectionOptions(config: RedisSettings): RedisOptions {
  const url = new URL(config.url);
  const db = url.pathname.replace(/^\//, '');
  const username = config.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = config.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const options: RedisOptions = {
    host,
    port: url.port ? Number(url.port) : 6379,
    ...(db ? { db: Number(db) } : {}),
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
  };
  if (url.protocol === 'rediss:') {
    options.tls = { servername: /^[\d.]+$|:/.test(host) ? undefined : host, ...(config.caCert ? { ca: [readFileSync(config.caCert)] } : {}) };
  }
  return options;
}
