import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { openClickHouse } from '../../lib/clickhouse.js';
import { loadConfig } from '../../lib/config.js';
import { createRedis } from '../../lib/redis.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costEvents } from '../helpers/cost-events.js';
import { cert, passwords, startSecureBroker } from '../helpers/secure-kafka.js';
import { countRows, testConfig, uniqueId, waitFor } from '../helpers/stack.js';

/**
 * ClickHouse over https and Redis over TLS with passwords, with the certificates of the
 * secured Kafka broker's CA (scripts/kafka-secure.sh; startSecureBroker creates them). No
 * ClickHouse server runs here: a small HTTPS endpoint that requires a client certificate
 * stands in for one and records what the client sent. Redis is a real redis-server started
 * with --tls-port, requirepass and an ACL user.
 */
const root = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'ingest-tls-'));
const redisTlsPort = Number(process.env.REDIS_PORT ?? 6380) + 1;
const redisPassword = `rp-${uniqueId()}`;
const aclPassword = `ap-${uniqueId()}`;
let serverKey: string;

beforeAll(() => {
  startSecureBroker();
  // redis-server and https need the broker's key unencrypted; @clickhouse/client takes no key passphrase.
  const pem = (p12: string, out: string) => {
    execFileSync('openssl', ['pkcs12', '-in', cert(p12), '-nocerts', '-nodes', '-passin', `pass:${passwords().store}`, '-out', join(dir, out)]);
    return join(dir, out);
  };
  serverKey = pem('broker.p12', 'broker-key.pem');
  pem('worker.p12', 'worker-key.pem');
  execFileSync('redis-server', [
    '--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '0', '--tls-port', String(redisTlsPort),
    '--tls-cert-file', cert('broker.pem'), '--tls-key-file', serverKey, '--tls-ca-cert-file', cert('ca.pem'), '--tls-auth-clients', 'no',
    '--requirepass', redisPassword, '--user', 'ingest', 'on', `>${aclPassword}`, '~*', '&*', '+@all',
    // Persisted (AOF fsynced before each reply) and never evicting, as the worker requires of the Redis holding its dead letters.
    '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--dir', dir, '--pidfile', join(dir, 'redis.pid'), '--logfile', join(dir, 'redis.log'),
  ]);
}, 600_000);

afterAll(() => {
  try {
    process.kill(Number(readFileSync(join(dir, 'redis.pid'), 'utf8')), 'SIGTERM');
  } catch {
    // not started
  }
});

describe('Redis over TLS with requirepass and ACL users', () => {
  const url = `rediss://127.0.0.1:${redisTlsPort}`;

  it('connects with the CA and requirepass, with an ACL user from the URL, and REDIS_PASSWORD_FILE wins over the URL', async () => {
    await waitFor('redis-server with TLS', async () => {
      const r = createRedis({ url, caCert: cert('ca.pem'), password: redisPassword }, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    }, 20_000, 200);
    const acl = createRedis({ url: `rediss://ingest:${aclPassword}@127.0.0.1:${redisTlsPort}`, caCert: cert('ca.pem') }, { lazyConnect: true });
    await acl.connect();
    expect(await acl.call('ACL', 'WHOAMI')).toBe('ingest');
    acl.disconnect();
    writeFileSync(join(dir, 'redis-password'), `${aclPassword}\n`);
    const config = loadConfig({ REDIS_URL: `rediss://ingest:wrong@127.0.0.1:${redisTlsPort}`, REDIS_PASSWORD_FILE: join(dir, 'redis-password'), REDIS_CA_CERT: cert('ca.pem') });
    const fromFile = createRedis(config.redis, { lazyConnect: true });
    await fromFile.connect();
    expect(await fromFile.call('ACL', 'WHOAMI')).toBe('ingest');
    fromFile.disconnect();
  });

  it('refuses a wrong password and a server certificate from an untrusted CA', async () => {
    const attempt = async (opts: Parameters<typeof createRedis>[0]) => {
      const r = createRedis(opts, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      // ioredis reports the cause as an 'error' event; connect() then rejects with "Connection is closed".
      const seen: string[] = [];
      r.on('error', (e: Error) => seen.push(e.message));
      try {
        await r.connect();
        await r.ping();
        return 'connected';
      } catch (err) {
        return [...seen, (err as Error).message].join('; ');
      } finally {
        r.disconnect();
      }
    };
    expect(await attempt({ url, caCert: cert('ca.pem'), password: 'wrong' })).toMatch(/WRONGPASS|invalid password/i);
    expect(await attempt({ url, caCert: cert('rogue-ca.pem'), password: redisPassword })).toMatch(/self-signed certificate in certificate chain/);
  });

  it('the dead-letter CLI uses the same settings, and never prints the password', async () => {
    const env = { ...process.env, REDIS_URL: url, REDIS_PASSWORD: redisPassword, REDIS_CA_CERT: cert('ca.pem'), DLQ_QUEUE_PREFIX: uniqueId() };
    const ok = await run(process.execPath, ['--import', 'tsx', join(root, 'cli/dlq.ts'), 'list'], { cwd: root, env });
    expect(ok.stdout).toMatch(/no dead letters|0 dead letters|^$/i);
    const unreachable = `rediss://ingest:${aclPassword}@127.0.0.1:${redisTlsPort + 1}`;
    const failed = await run(process.execPath, ['--import', 'tsx', join(root, 'cli/dlq.ts'), 'list'], { cwd: root, env: { ...env, REDIS_URL: unreachable, REDIS_PASSWORD: '' } }).then(
      () => undefined,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(failed?.code).toBe(1);
    // The URL's credentials are masked (cli/dlq.ts masks every URL's user:password as ***).
    expect(failed!.stderr).toMatch(new RegExp(`cannot reach Redis at rediss://(ingest:)?\\*\\*\\*@127\\.0\\.0\\.1:${redisTlsPort + 1}`));
    expect(failed!.stdout + failed!.stderr).not.toContain(aclPassword);
  });

  it('a worker keeps its journal and dead letters on the TLS Redis and lands rows', async () => {
    const config = testConfig({ redis: { url, caCert: cert('ca.pem'), password: redisPassword } });
    const worker = await IngestWorker.start(config);
    try {
      const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
      await producer.emitCostMetrics(costEvents(100));
      await producer.close();
      await waitFor('100 rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 100, 90_000);
    } finally {
      await worker.stop();
    }
  });
});

describe('ClickHouse over https with a CA, a client certificate and a password file', () => {
  let server: Server;
  const seen: { path: string; auth?: string; user?: string; key?: string; clientCn?: string; body: string }[] = [];
  let port: number;

  beforeAll(async () => {
    server = createServer({ cert: readFileSync(cert('broker.pem')), key: readFileSync(serverKey), ca: readFileSync(cert('ca.pem')), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        seen.push({ path: req.url ?? '', auth: req.headers.authorization, user: req.headers['x-clickhouse-user'] as string, key: req.headers['x-clickhouse-key'] as string, clientCn: String(peer?.subject?.CN), body });
        res.writeHead(200, { 'content-type': 'text/plain', 'x-clickhouse-summary': '{}' });
        res.end('');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends the password from CLICKHOUSE_PASSWORD_FILE over mutual TLS, with the database from the URL path', async () => {
    const secret = `chp-${uniqueId()}`;
    writeFileSync(join(dir, 'ch-password'), `${secret}\n`);
    const config = loadConfig({
      CLICKHOUSE_URL: `https://ingester:url-password@127.0.0.1:${port}/analytics`,
      CLICKHOUSE_PASSWORD_FILE: join(dir, 'ch-password'),
      CLICKHOUSE_CA_CERT: cert('ca.pem'),
      CLICKHOUSE_TLS_CERT: cert('worker.pem'),
      CLICKHOUSE_TLS_KEY: join(dir, 'worker-key.pem'),
    });
    expect(config.clickhouse.database).toBe('analytics');
    const client = await openClickHouse(config.clickhouse);
    await client.command({ query: 'SELECT 1' });
    await client.close();
    expect(seen.length).toBe(2);
    expect(seen[0]!.body).toContain('CREATE DATABASE IF NOT EXISTS analytics');
    // The bootstrap runs before the database exists, so it names none; the client then uses it.
    expect(seen[0]!.path).not.toContain('database=');
    expect(seen[1]!.path).toContain('database=analytics');
    for (const r of seen) {
      expect(r.clientCn).toBe('worker');
      const credentials = r.auth ? Buffer.from(r.auth.replace(/^Basic /, ''), 'base64').toString() : `${r.user}:${r.key}`;
      expect(credentials).toBe(`ingester:${secret}`);
    }
  });

  it('refuses a server whose certificate does not chain to CLICKHOUSE_CA_CERT', async () => {
    const before = seen.length;
    const config = loadConfig({ CLICKHOUSE_URL: `https://u:p@127.0.0.1:${port}/db`, CLICKHOUSE_CA_CERT: cert('rogue-ca.pem') });
    await expect(openClickHouse(config.clickhouse)).rejects.toThrow(/self-signed certificate in certificate chain/);
    expect(seen.length).toBe(before);
  });
});
