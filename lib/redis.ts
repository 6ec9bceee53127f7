import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, type Config } from './config.js';
import { RetriableError } from './errors.js';
import type { Logger } from './logger.js';

/**
 * The one Redis client factory, and the start-up check that the Redis behind REDIS_URL keeps
 * what we write to it.
 *
 * Redis holds the dead letters (BullMQ), and the worker commits past a poison message once its
 * letter's write resolved: so that write must not resolve before it is durable. A Redis that
 * acknowledges writes it may still lose (no AOF, RDB snapshots only, appendfsync everysec, an
 * asynchronous replica promoted after a crash) or evicts keys under memory pressure loses
 * letters without failing loudly, so we refuse it at start-up unless the operator opts out for
 * throwaway use, and make each write wait where the server can say when it is durable
 * (DurableWrites: WAITAOF, WAIT).
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

/**
 * How a letter write is made durable before it resolves (DurableWrites):
 *  - `waitaof`: Redis ≥ 7.2 with AOF: WAITAOF 1 0 waits until the local AOF is fsynced;
 *  - `wait`: a server with replicas (and no WAITAOF, or no AOF: a managed Redis replicated
 *    asynchronously): WAIT until `replicas` replicas have the write, so a failover keeps it;
 *  - `fsync-always`: AOF with appendfsync always: Redis fsyncs before it replies, nothing to wait;
 *  - `none`: REDIS_ALLOW_VOLATILE=true on a Redis that promises none of these (throwaway use).
 */
export type RedisDurability = { kind: 'waitaof' } | { kind: 'wait'; replicas: number } | { kind: 'fsync-always' } | { kind: 'none' };

/** What INFO (and CONFIG GET, where allowed) said about a Redis; '' where it could not be read. */
export interface RedisFacts {
  version: string;
  appendonly: string;
  appendfsync: string;
  save: string;
  maxmemoryPolicy: string;
  /** Replicas connected and online. */
  replicas: number;
  /** False where CONFIG is renamed or forbidden (managed Redis): appendfsync and save are unknown. */
  configReadable: boolean;
}

/** What the start-up check found: a Redis that keeps what it acknowledges, one that does not, or one it could not ask. */
export type RedisPersistence =
  | { kind: 'durable'; durability: RedisDurability; facts: RedisFacts }
  | { kind: 'volatile'; problems: string[]; facts: RedisFacts }
  | { kind: 'unknown'; reason: string };

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** True when `version` (e.g. "7.2.4") is at least major.minor. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/** Reads what decides durability: INFO (allowed on managed Redis) and CONFIG GET where allowed. */
export async function inspectRedisPersistence(redis: Pick<Redis, 'config' | 'info'>): Promise<RedisPersistence> {
  let info: Map<string, string>;
  try {
    info = parseInfo(`${await redis.info('server')}\n${await redis.info('persistence')}\n${await redis.info('replication')}\n${await redis.info('memory')}`);
  } catch (err) {
    return { kind: 'unknown', reason: `INFO refused: ${(err as Error).message}` };
  }
  const facts: RedisFacts = {
    version: info.get('redis_version') ?? '',
    appendonly: info.get('aof_enabled') === '1' ? 'yes' : info.has('aof_enabled') ? 'no' : '',
    appendfsync: '',
    save: '',
    maxmemoryPolicy: info.get('maxmemory_policy') ?? '',
    replicas: [...info.entries()].filter(([k, v]) => /^slave\d+$/.test(k) && /state=online/.test(v)).length,
    configReadable: true,
  };
  try {
    for (const key of ['appendonly', 'appendfsync', 'save', 'maxmemory-policy']) {
      // CONFIG GET answers [name, value, name, value, …].
      const pairs = (await redis.config('GET', key)) as string[];
      const value = pairs[1];
      if (value === undefined) continue;
      if (key === 'appendonly') facts.appendonly = value;
      else if (key === 'appendfsync') facts.appendfsync = value;
      else if (key === 'save') facts.save = value;
      else facts.maxmemoryPolicy = value;
    }
  } catch {
    // Managed Redis (ElastiCache, Memorystore, Upstash…) renames or forbids CONFIG.
    facts.configReadable = false;
  }
  const { durability, problems } = decideDurability(facts);
  if (durability && problems.length === 0) return { kind: 'durable', durability, facts };
  return { kind: 'volatile', problems, facts };
}

/**
 * How (and whether) this Redis can make a letter durable before the worker commits past its
 * message, and what stands in the way. Pure: unit-tested on made-up facts.
 */
export function decideDurability(f: RedisFacts): { durability: RedisDurability | undefined; problems: string[] } {
  const problems: string[] = [];
  if (f.maxmemoryPolicy && f.maxmemoryPolicy !== 'noeviction') problems.push(`maxmemory-policy ${f.maxmemoryPolicy} evicts keys under memory pressure (dead letters, BullMQ's bookkeeping); use noeviction`);
  let durability: RedisDurability | undefined;
  if (f.appendonly === 'yes' && versionAtLeast(f.version, 7, 2)) durability = { kind: 'waitaof' };
  else if (f.replicas >= 1) durability = { kind: 'wait', replicas: 1 };
  else if (f.appendonly === 'yes' && f.appendfsync === 'always') durability = { kind: 'fsync-always' };
  else {
    const instead = `(or run Redis ≥ 7.2 with appendonly yes, whose WAITAOF the worker waits on, or give it a replica, whose WAIT it waits on; this is Redis ${f.version || '?'} with ${f.replicas} replicas)`;
    if (f.appendonly !== 'yes' && f.configReadable && f.save.trim() === '') problems.push(`no persistence (appendonly ${f.appendonly || '?'}, save "${f.save}"): dead letters vanish at its next restart; set appendonly yes and appendfsync always ${instead}`);
    else if (f.appendonly !== 'yes' && !f.configReadable) problems.push(`no AOF (appendonly ${f.appendonly || '?'}; save cannot be read: CONFIG refused): a letter written since the last snapshot, if any, is lost in a crash; set appendonly yes and appendfsync always ${instead}`);
    else if (f.appendonly !== 'yes') problems.push(`RDB snapshots only (appendonly ${f.appendonly || '?'}, save "${f.save}"): a letter written since the last snapshot is lost in a crash; set appendonly yes and appendfsync always ${instead}`);
    else if (!f.configReadable) problems.push(`appendfsync cannot be read (CONFIG refused), so an acknowledged letter may still be lost in a crash; set appendfsync always ${instead}`);
    else problems.push(`appendfsync ${f.appendfsync}: a letter Redis acknowledged before its next fsync is lost in a crash; set appendfsync always ${instead}`);
  }
  return { durability, problems };
}

export class VolatileRedisError extends ConfigError {}

/**
 * Refuses a Redis that cannot keep what it acknowledges (a dead letter is committed past once
 * its write resolves) or that evicts keys, with one message naming REDIS_URL (password
 * redacted), the setting to change and the opt-out. `allowVolatile` (REDIS_ALLOW_VOLATILE=true)
 * turns the refusal into a warning; writes then wait for nothing (durability `none`).
 */
export async function checkRedisPersistence(redis: Pick<Redis, 'config' | 'info'>, url: string, allowVolatile: boolean, log: Logger): Promise<RedisPersistence & { durability: RedisDurability }> {
  const found = await inspectRedisPersistence(redis);
  const where = redactRedisUrl(url);
  if (found.kind === 'durable') return found;
  const problems = found.kind === 'volatile' ? found.problems : [`cannot tell whether it keeps what it acknowledges (${found.reason})`];
  const message = `REDIS_URL ${where}: ${problems.join('; ')}. Configure it with appendonly yes, appendfsync always and maxmemory-policy noeviction (scripts/services.sh starts one), or set REDIS_ALLOW_VOLATILE=true for a throwaway setup`;
  if (!allowVolatile) throw new VolatileRedisError(message);
  log.warn('REDIS_ALLOW_VOLATILE=true: using a Redis that may lose dead letters', { redis: where, problems });
  return { ...found, durability: { kind: 'none' } };
}

/** A write was acknowledged but not made durable within the timeout (a replica or the AOF's fsync lagging): retriable. */
export class RedisWriteNotDurable extends RetriableError {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'RedisWriteNotDurable' });
  }
}

/**
 * Makes acknowledged writes durable, per RedisDurability. `sync()` resolves once every write
 * this process had acknowledged before the call is durable. WAIT and WAITAOF wait for the
 * replication offset of the client that sends them, and they block that client, so they run
 * on a connection of their own, after a write of their own (INCR of `markerKey`) whose offset
 * is past every write acknowledged earlier on any connection. Concurrent calls share rounds
 * (group commit): at most one round in flight and one queued, each waiting at most
 * `timeoutMs` (then RedisWriteNotDurable).
 */
export class DurableWrites {
  private conn: Redis | undefined;
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(
    private readonly redis: Pick<Redis, 'duplicate'>,
    readonly durability: RedisDurability,
    private readonly markerKey: string,
    private readonly timeoutMs = 5_000,
  ) {}

  sync(): Promise<void> {
    if (this.durability.kind === 'fsync-always' || this.durability.kind === 'none') return Promise.resolve();
    if (!this.inFlight) return this.start();
    // The round in flight may have sent its marker before the caller's write was acknowledged.
    this.queued ??= this.inFlight
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    return this.queued;
  }

  close(): void {
    this.conn?.disconnect();
  }

  private start(): Promise<void> {
    const round = this.round().finally(() => {
      if (this.inFlight === round) this.inFlight = undefined;
    });
    this.inFlight = round;
    return round;
  }

  private async round(): Promise<void> {
    this.conn ??= this.redis.duplicate();
    await this.conn.incr(this.markerKey);
    if (this.durability.kind === 'waitaof') {
      const [local] = (await this.conn.call('WAITAOF', 1, 0, this.timeoutMs)) as [number, number];
      if (local < 1) throw new RedisWriteNotDurable(`WAITAOF: the AOF was not fsynced within ${this.timeoutMs} ms`);
    } else if (this.durability.kind === 'wait') {
      const acked = Number(await this.conn.call('WAIT', this.durability.replicas, this.timeoutMs));
      if (acked < this.durability.replicas) throw new RedisWriteNotDurable(`WAIT: ${acked} of ${this.durability.replicas} replicas had the write after ${this.timeoutMs} ms`);
    }
  }
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
