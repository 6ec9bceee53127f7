import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import type { KafkaSecurity } from '../../lib/config.js';
import { createKafka, createTopicsWithLeaders, type OAuthBearerProvider } from '../../lib/kafka.js';
import { IngestProducer, type ProducerClient } from '@kafka-clickhouse-ingest/producer';
import { costEvents } from '../helpers/cost-events.js';
import { listeners, mtls, oauth, passwords, scram, securityEnv, startSecureBroker, unsecuredJws, cert, type Principal } from '../helpers/secure-kafka.js';
import { auditCostRows, countRows, testConfig, uniqueId, waitFor } from '../helpers/stack.js';

/**
 * The worker and the producer SDK (both clients) on the secured broker of
 * `scripts/kafka.sh start-secure`: every mechanism lands rows, misconfigurations fail fast
 * with an error naming the broker and the cause, least-privilege ACLs hold, and no secret
 * shows up in output. The principals: producer may write ingest.*, worker may read ingest.*
 * with groups ingest-*, admin is a super user (topic creation only).
 */
const root = join(import.meta.dirname, '..', '..');
const CLIENTS: ProducerClient[] = ['kafkajs', 'platformatic'];
let admin: Kafka;

beforeAll(() => {
  startSecureBroker();
  const a = scram('admin', 'SCRAM-SHA-512');
  admin = createKafka({ brokers: a.brokers, clientId: 'security-test-admin', connectionTimeoutMs: 10_000, ...a.security });
}, 600_000);

async function createTopic(topic: string): Promise<void> {
  const a = admin.admin();
  await a.connect();
  try {
    await createTopicsWithLeaders(a, [{ topic, numPartitions: 4, replicationFactor: 1 }]);
  } finally {
    await a.disconnect();
  }
}

interface Mechanism {
  name: string;
  as: (user: Principal) => { brokers: string[]; security: KafkaSecurity };
  provider?: (user: Principal) => OAuthBearerProvider;
}
const MECHANISMS: Mechanism[] = [
  { name: 'SASL_SSL SCRAM-SHA-256', as: (u) => scram(u, 'SCRAM-SHA-256') },
  { name: 'SASL_SSL SCRAM-SHA-512', as: (u) => scram(u, 'SCRAM-SHA-512') },
  { name: 'SASL_SSL PLAIN', as: (u) => scram(u, 'PLAIN') },
  { name: 'SSL with client certificates (mTLS)', as: (u) => mtls(u) },
  { name: 'SASL_SSL OAUTHBEARER (unsecured JWS from the token provider)', as: () => oauth(), provider: (u) => async () => ({ value: unsecuredJws(u) }) },
];

describe('rows land over every security mechanism, as least-privilege principals', () => {
  it.each(MECHANISMS)('$name: SDK (kafkajs and platformatic) → worker → ClickHouse', async (m) => {
    const id = uniqueId('s');
    const prefix = `ingest.${id}.`;
    await createTopic(`${prefix}cost_metrics`);
    const p = m.as('producer');
    let sent = 0;
    for (const client of CLIENTS) {
      const producer = await IngestProducer.connect({ brokers: p.brokers, topicPrefix: prefix, client, lingerMs: 2, security: p.security, ...(m.provider ? { oauthBearerProvider: m.provider('producer') } : {}) });
      try {
        expect(producer.events.client).toBe(client);
        await producer.emitCostMetrics(costEvents(300, sent));
        sent += 300;
      } finally {
        await producer.close();
      }
    }
    const w = m.as('worker');
    const config = testConfig({ kafka: { brokers: w.brokers, topicPrefix: prefix, ...w.security }, consumer: { groupId: `ingest-${id}`, createTopics: false, eventTypes: ['cost_metrics'] } }, id);
    const worker = await IngestWorker.start(config, m.provider ? { oauthBearerProvider: m.provider('worker') } : {});
    try {
      await waitFor('600 rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) >= 600, 90_000);
      await new Promise((r) => setTimeout(r, 500));
      expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 600, offsets: 600, ids: 600 });
    } finally {
      await worker.stop();
    }
  });
});

/** Runs consumers/main.ts with `env` until it exits; its output, exit code and wall time. */
function runWorker(env: Record<string, string>, until?: (out: string) => boolean): Promise<{ code: number | null; out: string; ms: number; proc: ReturnType<typeof spawn> }> {
  const started = Date.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'consumers/main.ts')], {
    cwd: root,
    env: {
      PATH: process.env.PATH!,
      LOG_LEVEL: 'debug',
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6380',
      CHDB_PATH: mkdtempSync(join(tmpdir(), 'ingest-sec-chdb-')),
      METRICS_PORT: '0',
      METRICS_HOST: '127.0.0.1',
      KAFKA_CREATE_TOPICS: 'false',
      INGEST_EVENT_TYPES: 'cost_metrics',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve) => {
    const done = (code: number | null) =>
      resolve({
        code,
        get out() {
          return out;
        },
        ms: Date.now() - started,
        proc,
      });
    const on = (d: Buffer) => {
      out += d.toString();
      if (until?.(out)) done(null);
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.on('exit', (code) => done(code));
  });
}

describe('misconfigurations fail within 30 s, naming the broker and the cause', () => {
  const wrongPassword = `wrong-${uniqueId()}`;
  // `security` is a function: the table is built when the file is collected, before beforeAll
  // has created the certificates and passwords (on a fresh clone they do not exist yet).
  const cases: { name: string; brokers: string; security: () => KafkaSecurity; cause: RegExp }[] = [
    { name: 'a wrong password', brokers: listeners.saslSsl, security: () => scram('worker', 'SCRAM-SHA-256', wrongPassword).security, cause: /authentication failed.*check the SASL user, password and mechanism/is },
    {
      name: 'an untrusted CA',
      brokers: listeners.saslSsl,
      security: () => ({ ...scram('worker', 'SCRAM-SHA-256').security, sslCaLocation: cert('rogue-ca.pem') }),
      cause: /self-signed certificate in certificate chain.*does not chain to KAFKA_SSL_CA_LOCATION/s,
    },
    { name: 'a plaintext client on the TLS port', brokers: listeners.saslSsl, security: () => ({}), cause: /closed.*set KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL/is },
  ];

  it.each(cases)('the worker (consumers/main.ts) with $name exits non-zero', async (c) => {
    const { code, out, ms } = await runWorker({ KAFKA_BROKERS: c.brokers, ...securityEnv(c.security()), INGEST_GROUP_ID: `ingest-${uniqueId()}` });
    expect(code).toBe(1);
    expect(ms).toBeLessThan(30_000);
    expect(out).toContain(`cannot connect to Kafka at ${c.brokers}`);
    expect(out).toMatch(c.cause);
    expect(out).not.toContain(wrongPassword);
    expect(out).not.toContain(passwords().worker);
  });

  it.each(cases.flatMap((c) => CLIENTS.map((client) => ({ ...c, client }))))('the SDK ($client) with $name rejects connect()', async (c) => {
    const started = Date.now();
    const err = await IngestProducer.connect({ brokers: [c.brokers], client: c.client, security: c.security() }).then(
      async (p) => {
        await p.close();
        return new Error('connected');
      },
      (e: Error) => e,
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(err.name).toBe('KafkaConnectError');
    expect(err.message).toContain(`cannot connect to Kafka at ${c.brokers}`);
    expect(err.message).toMatch(c.cause);
    expect(`${err.message}${String(err.stack)}`).not.toContain(wrongPassword);
  });
});

describe('least privilege: each principal is refused what it is not granted', () => {
  it('the producer may not write outside ingest.*, nor consume; the worker may not write', async () => {
    const id = uniqueId('s');
    await createTopic(`secret.${id}.cost_metrics`);
    await createTopic(`ingest.${id}.cost_metrics`);
    // Refused at connect (the worker has Write on no topic, so not even an idempotent
    // producer id: KIP-679) or at the first send.
    const refusal = (prefix: string, client: ProducerClient, security: KafkaSecurity) =>
      IngestProducer.connect({ brokers: [listeners.saslSsl], topicPrefix: prefix, client, security }).then(
        (p) => p.emitCostMetrics(costEvents(1)).finally(() => p.close().catch(() => undefined)).then(() => new Error('sent'), (e: Error) => e),
        (e: Error) => e,
      );
    for (const client of CLIENTS) {
      const producerOutside = await refusal(`secret.${id}.`, client, scram('producer', 'SCRAM-SHA-256').security);
      expect(`${client}: ${producerOutside.message}`).toMatch(new RegExp(`${client}: not authorized to write to secret\\.${id}\\.cost_metrics \\(as user "producer"\\): .*authorization failed`, 'i'));
      const workerWrites = await refusal(`ingest.${id}.`, client, scram('worker', 'SCRAM-SHA-512').security);
      expect(`${client}: ${workerWrites.message}`).toMatch(/not authorized|authorization failed/i);
    }
    // The producer as a consumer: no group ACL.
    const p = scram('producer', 'SCRAM-SHA-256');
    const consumer = createKafka({ brokers: p.brokers, clientId: 'least-privilege', connectionTimeoutMs: 10_000, ...p.security }).consumer({ groupId: `ingest-${id}-p`, retry: { retries: 0 } });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [`ingest.${id}.cost_metrics`], fromBeginning: true });
      const crashed = new Promise<Error>((resolve) => consumer.on(consumer.events.CRASH, (e) => resolve(e.payload.error)));
      void consumer.run({ eachMessage: async () => undefined }).catch((e: Error) => e);
      // kafkajs turns FindCoordinator's GROUP_AUTHORIZATION_FAILED into this message (its
      // withBroker swallows the cause; the debug log has it): the refusal, in its words.
      expect((await crashed).message).toMatch(/not authorized|authorization failed|Failed to find group coordinator/i);
    } finally {
      await consumer.disconnect();
    }
  });

  it('the worker (consumers/main.ts) is refused a topic outside ingest.* and a group outside ingest-*', async () => {
    const id = uniqueId('s');
    await createTopic(`secret.${id}.cost_metrics`);
    await createTopic(`ingest.${id}.cost_metrics`);
    const w = securityEnv(scram('worker', 'SCRAM-SHA-512').security);
    const topic = await runWorker({ KAFKA_BROKERS: listeners.saslSsl, ...w, KAFKA_TOPIC_PREFIX: `secret.${id}.`, INGEST_GROUP_ID: `ingest-${id}` });
    expect(topic.code).toBe(1);
    expect(topic.out).toMatch(/not authorized to access topics|topic authorization failed/i);
    const group = await runWorker({ KAFKA_BROKERS: listeners.saslSsl, ...w, KAFKA_TOPIC_PREFIX: `ingest.${id}.`, INGEST_GROUP_ID: `other-${id}` });
    expect(group.code).toBe(1);
    // kafkajs's own error says only "Failed to find group coordinator"; the worker asks the
    // broker why (lib/group-access.ts) and exits with the authorization error.
    // (The log line is JSON: the principal's quotes are escaped there.)
    expect(group.out).toMatch(new RegExp(`not authorized to use consumer group other-${id} \\(as user \\\\?"worker\\\\?"\\): .*group authorization failed`, 'i'));
    expect(topic.out + group.out).not.toContain(passwords().worker);
  });
});

describe('the worker process with secrets from files', () => {
  it('lands rows over SASL_SSL with KAFKA_SASL_PASSWORD_FILE; no secret in its output or /metrics', async () => {
    const id = uniqueId('s');
    const prefix = `ingest.${id}.`;
    await createTopic(`${prefix}cost_metrics`);
    const producer = await IngestProducer.connect({ brokers: [listeners.saslSsl], topicPrefix: prefix, security: scram('producer', 'SCRAM-SHA-512').security });
    await producer.emitCostMetrics(costEvents(200));
    await producer.close();
    const dir = mkdtempSync(join(tmpdir(), 'ingest-secret-'));
    writeFileSync(join(dir, 'password'), `${passwords().worker}\n`, { mode: 0o600 });
    const { saslPassword: _, ...security } = scram('worker', 'SCRAM-SHA-512').security;
    const run = await runWorker(
      { KAFKA_BROKERS: listeners.saslSsl, ...securityEnv(security), KAFKA_SASL_PASSWORD_FILE: join(dir, 'password'), KAFKA_TOPIC_PREFIX: prefix, INGEST_GROUP_ID: `ingest-${id}` },
      (out) => /metrics at (http:\S+)\/metrics/.test(out),
    );
    try {
      const url = /metrics at (http:\S+)\/metrics/.exec(run.out)![1]!;
      const metrics = await waitFor(
        '200 rows inserted',
        async () => {
          const text = await (await fetch(`${url}/metrics`)).text();
          return /ingest_rows_inserted_total\{table="cost_metrics_ts"\} 200\b/.test(text) ? text : undefined;
        },
        90_000,
        250,
      );
      expect(metrics).not.toContain(passwords().worker);
    } finally {
      run.proc.kill('SIGTERM');
      await new Promise((r) => run.proc.once('exit', r));
    }
    expect(run.out).not.toContain(passwords().worker);
    expect(run.out).not.toContain(passwords().key);
  });
});
