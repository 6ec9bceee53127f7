import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clickhouseConnectionOptions } from '../../lib/clickhouse.js';
import { ConfigError, loadConfig } from '../../lib/config.js';
import { KafkaConnectError, kafkaSecurity } from '../../lib/kafka.js';
import { redisConnectionOptions } from '../../lib/redis.js';
import { redactUrl } from '../../lib/secrets.js';

/** The security settings: their rules, secrets from files, and that no error shows a secret. */
const dir = mkdtempSync(join(tmpdir(), 'ingest-sec-unit-'));
const file = (name: string, content: string) => {
  writeFileSync(join(dir, name), content);
  return join(dir, name);
};
const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const crt = file('client.pem', 'CERT');
const key = file('client-key.pem', 'KEY');
const SECRET = 's3cr3t-Value-42';

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('loadConfig accepted it');
}

describe('Kafka security settings', () => {
  it('reads SASL_SSL SCRAM with the password from a _FILE (one trailing newline dropped)', () => {
    const c = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'worker',
      KAFKA_SASL_PASSWORD_FILE: file('pw', `${SECRET}\n`),
      KAFKA_SSL_CA_LOCATION: ca,
    });
    expect(c.kafka).toMatchObject({ securityProtocol: 'SASL_SSL', saslMechanism: 'SCRAM-SHA-512', saslUsername: 'worker', saslPassword: SECRET, sslCaLocation: ca });
    const s = kafkaSecurity(c.kafka);
    expect(s.sasl).toEqual({ mechanism: 'SCRAM-SHA-512', username: 'worker', password: SECRET });
    expect(s.tls?.ca).toEqual([Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')]);
  });

  it('builds mTLS options with the key passphrase, and no TLS or SASL for PLAINTEXT', () => {
    const c = loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: crt, KAFKA_SSL_KEY_LOCATION: key, KAFKA_SSL_KEY_PASSWORD: SECRET });
    expect(kafkaSecurity(c.kafka).tls).toEqual({ cert: Buffer.from('CERT'), key: Buffer.from('KEY'), passphrase: SECRET });
    expect(kafkaSecurity(loadConfig({}).kafka)).toEqual({ protocol: 'PLAINTEXT' });
  });

  it('refuses inconsistent combinations, naming each setting', () => {
    expect(configError({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' })).toContain('KAFKA_SASL_MECHANISM is required with KAFKA_SECURITY_PROTOCOL=SASL_SSL');
    const noCreds = configError({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'PLAIN' });
    expect(noCreds).toContain('KAFKA_SASL_USERNAME is required with KAFKA_SASL_MECHANISM=PLAIN');
    expect(noCreds).toContain('KAFKA_SASL_PASSWORD is required with KAFKA_SASL_MECHANISM=PLAIN');
    expect(configError({ KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET })).toContain(
      'KAFKA_SASL_MECHANISM is set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL',
    );
    expect(configError({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SSL_CA_LOCATION: ca })).toContain(
      'KAFKA_SSL_CA_LOCATION is set, but KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use TLS',
    );
    expect(configError({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERTIFICATE_LOCATION: crt })).toContain('KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together');
    expect(configError({ KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CA_LOCATION: join(dir, 'missing.pem') })).toMatch(/KAFKA_SSL_CA_LOCATION \(kafka.sslCaLocation\): cannot read .*missing.pem \(ENOENT\)/);
    expect(configError({ KAFKA_SECURITY_PROTOCOL: 'TLS' })).toContain('kafka.securityProtocol (env KAFKA_SECURITY_PROTOCOL): Invalid option: expected one of "PLAINTEXT"|"SSL"|"SASL_PLAINTEXT"|"SASL_SSL"');
    expect(configError({ KAFKA_SASL_PASSWORD: SECRET, KAFKA_SASL_PASSWORD_FILE: file('pw2', SECRET) })).toContain('KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set');
    expect(configError({ KAFKA_SASL_PASSWORD_FILE: join(dir, 'nope') })).toMatch(/KAFKA_SASL_PASSWORD_FILE: cannot read .*nope \(ENOENT\)/);
  });

  it('OAUTHBEARER: a token provider or a token file, checked where the provider is known', () => {
    const c = loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER' });
    expect(() => kafkaSecurity(c.kafka)).toThrow(/KAFKA_SASL_MECHANISM=OAUTHBEARER needs a token: KAFKA_SASL_OAUTHBEARER_TOKEN_FILE or a token provider function/);
    expect(kafkaSecurity(c.kafka, async () => ({ value: 'jws' })).sasl?.mechanism).toBe('OAUTHBEARER');
    // The SDK names its options instead of the environment.
    expect(() => kafkaSecurity({ securityProtocol: 'SASL_SSL', saslMechanism: 'SCRAM-SHA-256' }, undefined, (f) => `ProducerOptions.security.${f}`)).toThrow(
      /ProducerOptions.security.saslUsername is required with ProducerOptions.security.saslMechanism=SCRAM-SHA-256/,
    );
  });

  it('re-reads the OAUTHBEARER token file at every authentication', async () => {
    const tokenFile = file('token', 'first\n');
    const s = kafkaSecurity(loadConfig({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER', KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: tokenFile }).kafka);
    const token = s.sasl!.mechanism === 'OAUTHBEARER' ? s.sasl!.token : undefined;
    expect(await token!()).toBe('first');
    writeFileSync(tokenFile, 'second');
    expect(await token!()).toBe('second');
  });

  it('a connection error names brokers, protocol, mechanism and user, never the password', () => {
    const err = new KafkaConnectError(['b1:9096', 'b2:9096'], { securityProtocol: 'SASL_SSL', saslMechanism: 'SCRAM-SHA-512', saslUsername: 'worker', saslPassword: SECRET }, new Error('SASL SCRAM SHA512 authentication failed: invalid credentials'));
    expect(err.message).toBe(
      'cannot connect to Kafka at b1:9096,b2:9096 (SASL_SSL, SCRAM-SHA-512, user "worker"): SASL SCRAM SHA512 authentication failed: invalid credentials (check the SASL user, password and mechanism)',
    );
    expect(JSON.stringify(err) + err.stack).not.toContain(SECRET);
  });
});

describe('no secret in configuration errors', () => {
  it('never echoes a secret value, even when it is the invalid one', () => {
    const messages = [
      configError({ CLICKHOUSE_URL: `not a url ${SECRET}` }),
      configError({ REDIS_URL: `http://u:${SECRET}@h` }),
      configError({ KAFKA_SASL_PASSWORD: SECRET }),
      configError({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET, BATCH_MAX_ROWS: '0' }),
    ];
    for (const m of messages) expect(m).not.toContain(SECRET);
  });

  it('redactUrl hides the password of a URL', () => {
    expect(redactUrl(`rediss://ingest:${SECRET}@redis.example:6380/0`)).toBe('rediss://ingest:***@redis.example:6380/0');
    expect(redactUrl(`https://u:${SECRET}@ch.example:8443/db?password=${SECRET}`)).not.toContain(SECRET);
    expect(redactUrl(`::${SECRET}`)).toBe('(unparseable URL)');
  });
});

describe('ClickHouse connection options', () => {
  it('takes user, password and database from an https URL; CLICKHOUSE_PASSWORD_FILE wins; CA and client certificate', () => {
    const c = loadConfig({
      CLICKHOUSE_URL: 'https://ingester:url%40pw@ch.example:8443/analytics',
      CLICKHOUSE_PASSWORD_FILE: file('chpw', `${SECRET}\n`),
      CLICKHOUSE_CA_CERT: ca,
      CLICKHOUSE_TLS_CERT: crt,
      CLICKHOUSE_TLS_KEY: key,
    });
    expect(c.clickhouse.database).toBe('analytics');
    const o = clickhouseConnectionOptions(c.clickhouse);
    expect(o).toMatchObject({ url: 'https://ch.example:8443', username: 'ingester', password: SECRET });
    expect(o.tls).toEqual({ ca_cert: Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'), cert: Buffer.from('CERT'), key: Buffer.from('KEY') });
    expect(clickhouseConnectionOptions(loadConfig({ CLICKHOUSE_URL: 'https://u:url%40pw@h:8443' }).clickhouse)).toEqual({ url: 'https://h:8443', username: 'u', password: 'url@pw' });
    expect(loadConfig({ CLICKHOUSE_URL: 'https://h:8443/analytics', CLICKHOUSE_DATABASE: 'other' }).clickhouse.database).toBe('other');
  });

  it('refuses TLS files without https, and a certificate without its key', () => {
    expect(configError({ CLICKHOUSE_URL: 'http://h:8123', CLICKHOUSE_CA_CERT: ca })).toContain('CLICKHOUSE_CA_CERT / CLICKHOUSE_TLS_CERT need an https:// CLICKHOUSE_URL');
    expect(configError({ CLICKHOUSE_URL: 'https://h:8443', CLICKHOUSE_TLS_CERT: crt })).toContain('CLICKHOUSE_TLS_CERT and CLICKHOUSE_TLS_KEY go together');
  });
});

describe('Redis connection options', () => {
  it('rediss:// with a CA, an ACL user from the URL, and REDIS_PASSWORD winning over the URL', () => {
    const c = loadConfig({ REDIS_URL: 'rediss://ingest:urlpw@redis.example:6380/2', REDIS_PASSWORD: SECRET, REDIS_CA_CERT: ca });
    expect(redisConnectionOptions(c.redis)).toEqual({
      host: 'redis.example',
      port: 6380,
      db: 2,
      username: 'ingest',
      password: SECRET,
      tls: { servername: 'redis.example', ca: [Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')] },
    });
    expect(redisConnectionOptions(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380' }).redis)).toEqual({ host: '127.0.0.1', port: 6380 });
    expect(configError({ REDIS_URL: 'redis://h:6379', REDIS_CA_CERT: ca })).toContain('REDIS_CA_CERT needs a rediss:// REDIS_URL');
  });
});
