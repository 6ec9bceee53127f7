import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';

/**
 * The one Redis client factory (worker, dead-letter CLI, tests): the URL, TLS with a CA for
 * rediss://, and an ACL user or requirepass password, from config.redis.
 */
export function createRedis(config: Config['redis'], extra: RedisOptions = {}): Redis {
  return new Redis({ ...redisConnectionOptions(config), ...extra });
}

/**
 * ioredis options for config.redis. Built here rather than handing ioredis the URL, because
 * ioredis lets a URL's credentials win over explicit options, and REDIS_PASSWORD (or its
 * _FILE) must win over a URL's, so the secret can live in a mounted file. A rediss:// URL gets
 * TLS with the host name checked against the certificate, and REDIS_CA_CERT as the trusted CA
 * when set (otherwise the system CAs). Pure, apart from reading the CA file.
 */
export function redisConnectionOptions(config: Config['redis']): RedisOptions {
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
