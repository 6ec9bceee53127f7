import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, EventProducer, kafkaSettingsFromEnv } from '@kafka-clickhouse-ingest/producer';
import { producerKafkaSettings } from '@kafka-clickhouse-ingest/producer/event-producer.js';
import { KAFKA_CODECS } from '@kafka-clickhouse-ingest/producer/kafka-codecs.js';
import { defaultProducerClient } from '@kafka-clickhouse-ingest/producer/kafka-transport.js';
import { loadConfig } from '../../lib/config.js';

/**
 * The SDK reads the worker's KAFKA_* variables when an option is not given, with the worker's
 * own checks (one parser: producers/typescript/src/kafka-settings.ts), and options win.
 */
const secretFile = (content: string) => {
  const path = join(mkdtempSync(join(tmpdir(), 'sdk-secret-')), 'secret');
  writeFileSync(path, `${content}\n`);
  return path;
};

describe('the SDK reads the KAFKA_* environment', () => {
  it('brokers, topic prefix, client id and security from the variables, as the worker reads them', () => {
    const env = {
      KAFKA_BROKERS: 'k1:9092, [::1]:9093',
      KAFKA_TOPIC_PREFIX: 'team-a.',
      KAFKA_CLIENT_ID: 'billing',
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'producer',
      KAFKA_SASL_PASSWORD_FILE: secretFile('s3cret'),
    };
    const s = producerKafkaSettings({}, env);
    expect({ brokers: s.brokers, topicPrefix: s.topicPrefix, clientId: s.clientId, security: s.security }).toEqual({
      brokers: ['k1:9092', '[::1]:9093'],
      topicPrefix: 'team-a.',
      clientId: 'billing',
      security: { securityProtocol: 'SASL_SSL', saslMechanism: 'SCRAM-SHA-512', saslUsername: 'producer', saslPassword: 's3cret' },
    });
    // The worker, given the same environment, reads the same values.
    const worker = loadConfig(env).kafka;
    expect({ brokers: worker.brokers, topicPrefix: worker.topicPrefix, clientId: worker.clientId, saslPassword: worker.saslPassword }).toEqual({
      brokers: s.brokers,
      topicPrefix: s.topicPrefix,
      clientId: s.clientId,
      saslPassword: 's3cret',
    });
  });

  it('defaults without variables or options', () => {
    const s = producerKafkaSettings({}, {});
    expect({ brokers: s.brokers, topicPrefix: s.topicPrefix, clientId: s.clientId, security: s.security }).toEqual({ brokers: ['127.0.0.1:9092'], topicPrefix: 'ingest.', clientId: 'ingest-producer', security: {} });
  });

  it('options win over the variables, per setting; a variable whose option is given is not read', () => {
    const env = { KAFKA_BROKERS: 'not a broker', KAFKA_TOPIC_PREFIX: 'env.', KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'env-user', KAFKA_SASL_PASSWORD: 'env-pass' };
    const s = producerKafkaSettings({ brokers: ['b:9092'], security: { saslUsername: 'option-user' } }, env);
    expect(s.brokers).toEqual(['b:9092']);
    expect(s.topicPrefix).toBe('env.');
    expect(s.security).toEqual({ securityProtocol: 'SASL_PLAINTEXT', saslMechanism: 'PLAIN', saslUsername: 'option-user', saslPassword: 'env-pass' });
    expect(s.securityName('saslUsername')).toBe('ProducerOptions.security.saslUsername');
    expect(s.securityName('saslPassword')).toBe('KAFKA_SASL_PASSWORD');
  });

  it('refuses a bad variable with an error naming it, every bad one at once', () => {
    const env = { KAFKA_BROKERS: 'kafka', KAFKA_SECURITY_PROTOCOL: 'TLS', KAFKA_TOPIC_PREFIX: 'a/b' };
    const err = (() => {
      try {
        kafkaSettingsFromEnv(env);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/KAFKA_BROKERS: "kafka" is not host:port/);
    expect(message).toMatch(/KAFKA_SECURITY_PROTOCOL: /);
    expect(message).toMatch(/KAFKA_TOPIC_PREFIX: only letters, digits/);
  });

  it('refuses a bad option naming the option', () => {
    expect(() => producerKafkaSettings({ brokers: ['kafka'] }, {})).toThrow(/ProducerOptions\.brokers\[0\]: "kafka" is not host:port/);
  });

  it('refuses a secret set twice, and an unreadable secret file, naming the variables and never a value', () => {
    expect(() => kafkaSettingsFromEnv({ KAFKA_SASL_PASSWORD: 'hunter2', KAFKA_SASL_PASSWORD_FILE: secretFile('hunter2') })).toThrow(/KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set/);
    expect(() => kafkaSettingsFromEnv({ KAFKA_SASL_PASSWORD_FILE: '/nonexistent/secret' })).toThrow(/KAFKA_SASL_PASSWORD_FILE: cannot read \/nonexistent\/secret \(ENOENT\)/);
  });

  it('connect() refuses inconsistent security from the environment before any connection, naming the variables, without the secret', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'producer', KAFKA_SASL_PASSWORD: 'hunter2-secret' });
    try {
      // A broker that does not exist: the settings are refused before it would matter.
      const err = await EventProducer.connect({ brokers: ['127.0.0.1:1'], security: { securityProtocol: 'SSL' } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toMatch(/KAFKA_SASL_MECHANISM is set, but ProducerOptions\.security\.securityProtocol=SSL does not use SASL/);
      expect(message).toMatch(/KAFKA_SASL_PASSWORD is set/);
      expect(message).not.toContain('hunter2-secret');
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

describe('the default producer client', () => {
  it('is platformatic for every codec node:zlib can compress, kafkajs for zstd without zlib zstd', () => {
    for (const codec of KAFKA_CODECS) {
      expect(defaultProducerClient(codec, true)).toBe('platformatic');
      expect(defaultProducerClient(codec, false)).toBe(codec === 'zstd' ? 'kafkajs' : 'platformatic');
    }
  });
});
