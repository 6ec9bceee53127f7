import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Kafka, logLevel, type Admin, type LogEntry, type SASLOptions } from 'kafkajs';
import { ConfigError, kafkaSecurityProblems, type Config, type KafkaSecurity } from './config.js';
import { createLogger } from './logger.js';
import { readSecretFile } from './secrets.js';

/**
 * An OAUTHBEARER token source, called at every (re)authentication, so it can return a fresh
 * token (e.g. AWS's `generateAuthToken` for MSK IAM, docs/security.md). kafkajs's shape.
 */
export type OAuthBearerProvider = () => Promise<{ value: string }>;

/** kafkajs's message when a fetch offset is outside the log and it resets to the default offset. */
const OFFSET_RESET = 'Offset out of range, resetting to default offset';

/**
 * The one kafkajs client factory; kafkajs log lines go through our structured logger.
 * `onOffsetReset` hears of every partition kafkajs resets because its fetch offset was outside the
 * log: below the log start, that means records the group never read were deleted (retention
 * shorter than an outage), which no other signal shows. kafkajs has no event for it, only this log line.
 */
export function createKafka(
  config: Omit<Config['kafka'], 'retryMaxMs'> & { retryMaxMs?: number },
  clientIdSuffix = '',
  onOffsetReset?: (topic: string, partition: number) => void,
  oauthBearerProvider?: OAuthBearerProvider,
): Kafka {
  const log = createLogger({ component: 'kafkajs' });
  const security = kafkaSecurity(config, oauthBearerProvider);
  return new Kafka({
    clientId: `${config.clientId}${clientIdSuffix}`,
    brokers: [...config.brokers],
    connectionTimeout: config.connectionTimeoutMs,
    retry: kafkaRetry(config.retryMaxMs),
    ...(security.tls ? { ssl: security.tls } : {}),
    ...(security.sasl ? { sasl: kafkajsSasl(security.sasl) } : {}),
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        if (message === OFFSET_RESET) {
          onOffsetReset?.(String(rest.topic), Number(rest.partition));
          log.error('fetch offset outside the partition log (records deleted before they were consumed?); reset to the default offset', rest);
          return;
        }
        // kafkajs logs expected rebalance churn at ERROR ("The group is rebalancing"); keep it at warn.
        if (level <= logLevel.WARN) log.warn(message, rest);
        else if (level === logLevel.INFO) log.info(message, rest);
      },
  });
}

/**
 * kafkajs's retry options for a cap on the wait between attempts. The number of attempts keeps
 * the window before a request is given up (and a consumer crash-restarts, or the SDK's own
 * delivery loop tries again) about as long as kafkajs's default one (~10 s), so capping the
 * waits makes the attempts more frequent, not the patience shorter.
 */
export function kafkaRetry(maxRetryTime = 2_000): { initialRetryTime: number; maxRetryTime: number; retries: number } {
  const initialRetryTime = Math.min(250, maxRetryTime);
  let retries = 0;
  for (let wait = initialRetryTime, total = 0; total < 10_000 && retries < 50; wait = Math.min(wait * 2, maxRetryTime)) {
    total += wait;
    retries++;
  }
  return { initialRetryTime, maxRetryTime, retries };
}

/**
 * The retry options of a consumer: few attempts, so a consumer that cannot reach a broker
 * crashes and restarts (kafkajs restarts it after maxRetryTime at most) within a few seconds.
 * kafkajs learns a new partition leader or group coordinator only when it (re)starts or on
 * errors other than a refused connection: with a leader or coordinator killed, a consumer that
 * kept retrying fetched from and heartbeated to the dead broker until it came back (the fault
 * suite's broker kill -9 in a 3-broker cluster: 18-29 s; restarted quickly, a few seconds after
 * Kafka moved the leadership).
 */
export function consumerRetry(maxRetryTime = 2_000): { initialRetryTime: number; maxRetryTime: number; retries: number } {
  return { initialRetryTime: Math.min(250, maxRetryTime), maxRetryTime, retries: 3 };
}

export function topicName(config: Pick<Config['kafka'], 'topicPrefix'>, eventTypeName: string): string {
  return `${config.topicPrefix}${eventTypeName}`;
}

/**
 * Creates the topics that do not exist yet with the configured partitions and replication.
 * For development and tests; production topics are provisioned by the operator
 * (docs/deployment.md), with KAFKA_CREATE_TOPICS=false.
 */
export async function ensureTopics(admin: Admin, config: Pick<Config['kafka'], 'topicPartitions' | 'replicationFactor'>, topics: string[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length === 0) return;
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((topic) => ({ topic, numPartitions: config.topicPartitions, replicationFactor: config.replicationFactor })),
  });
}

/**
 * The connection security both Kafka clients are built from: TLS options (files read once,
 * here) and the SASL mechanism with its credentials. Throws ConfigError on an inconsistent
 * combination (the worker's loadConfig already refused it; the SDK reaches here directly).
 */
export interface ResolvedKafkaSecurity {
  protocol: NonNullable<KafkaSecurity['securityProtocol']>;
  tls?: TlsOptions;
  sasl?:
    | { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string }
    | { mechanism: 'OAUTHBEARER'; token: () => Promise<string> };
}

/** The TLS and SASL options of an @platformatic/kafka client (producer, admin) for resolved settings. */
export function platformaticSecurityOptions(security: ResolvedKafkaSecurity) {
  return {
    ...(security.tls ? { tls: security.tls } : {}),
    ...(security.sasl
      ? {
          sasl:
            security.sasl.mechanism === 'OAUTHBEARER'
              ? { mechanism: 'OAUTHBEARER' as const, token: security.sasl.token }
              : { mechanism: security.sasl.mechanism, username: security.sasl.username, password: security.sasl.password },
        }
      : {}),
  };
}

export function kafkaSecurity(s: KafkaSecurity, oauthBearerProvider?: OAuthBearerProvider, name: (field: keyof KafkaSecurity) => string = envName): ResolvedKafkaSecurity {
  const problems = kafkaSecurityProblems(s, oauthBearerProvider !== undefined, name);
  if (problems.length > 0) throw new ConfigError(`invalid Kafka security settings:\n  - ${problems.join('\n  - ')}`);
  const protocol = s.securityProtocol ?? 'PLAINTEXT';
  const out: ResolvedKafkaSecurity = { protocol };
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    const read = (field: 'sslCaLocation' | 'sslCertificateLocation' | 'sslKeyLocation') => {
      try {
        return readFileSync(s[field]!);
      } catch (err) {
        throw new ConfigError(`${name(field)}: cannot read ${s[field]} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    };
    // Certificates are verified against the CA (or the system CAs) and the broker's host name;
    // there is deliberately no setting to turn verification off (docs/security.md).
    out.tls = {
      ...(s.sslCaLocation ? { ca: [read('sslCaLocation')] } : {}),
      ...(s.sslCertificateLocation ? { cert: read('sslCertificateLocation'), key: read('sslKeyLocation') } : {}),
      ...(s.sslKeyPassword ? { passphrase: s.sslKeyPassword } : {}),
    };
  }
  if ((protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL') && s.saslMechanism) {
    if (s.saslMechanism === 'OAUTHBEARER') {
      const file = s.saslOauthbearerTokenFile;
      out.sasl = {
        mechanism: 'OAUTHBEARER',
        token: oauthBearerProvider
          ? async () => {
              const { value } = await oauthBearerProvider();
              if (typeof value !== 'string' || value === '') throw new Error('the OAUTHBEARER token provider returned no token ({ value: string } expected)');
              return value;
            }
          : // Read at every authentication: a mounted token file is rotated in place.
            async () => readSecretFile(name('saslOauthbearerTokenFile'), file!),
      };
    } else {
      out.sasl = { mechanism: s.saslMechanism, username: s.saslUsername!, password: s.saslPassword! };
    }
  }
  return out;
}

/** The environment variable of each Kafka security setting (lib/config.ts reads them). */
export const KAFKA_SECURITY_ENV: Readonly<Record<keyof KafkaSecurity, string>> = {
  securityProtocol: 'KAFKA_SECURITY_PROTOCOL',
  saslMechanism: 'KAFKA_SASL_MECHANISM',
  saslUsername: 'KAFKA_SASL_USERNAME',
  saslPassword: 'KAFKA_SASL_PASSWORD',
  saslOauthbearerTokenFile: 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE',
  sslCaLocation: 'KAFKA_SSL_CA_LOCATION',
  sslCertificateLocation: 'KAFKA_SSL_CERTIFICATE_LOCATION',
  sslKeyLocation: 'KAFKA_SSL_KEY_LOCATION',
  sslKeyPassword: 'KAFKA_SSL_KEY_PASSWORD',
};
function envName(field: keyof KafkaSecurity): string {
  return KAFKA_SECURITY_ENV[field];
}

function kafkajsSasl(sasl: NonNullable<ResolvedKafkaSecurity['sasl']>): SASLOptions {
  if (sasl.mechanism === 'OAUTHBEARER') {
    const token = sasl.token;
    return { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: await token() }) };
  }
  const mechanism = sasl.mechanism === 'PLAIN' ? 'plain' : sasl.mechanism === 'SCRAM-SHA-256' ? 'scram-sha-256' : 'scram-sha-512';
  return { mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}

/**
 * A failure to reach or authenticate with Kafka, naming the brokers, the security in use
 * (protocol, mechanism, user; never a secret) and the cause, with a hint for the usual
 * misconfigurations. Both Kafka clients' connect errors are wrapped in it.
 */
export class KafkaConnectError extends Error {
  override readonly name = 'KafkaConnectError';
  constructor(
    readonly brokers: readonly string[],
    security: KafkaSecurity,
    override readonly cause: unknown,
  ) {
    const protocol = security.securityProtocol ?? 'PLAINTEXT';
    const how = [protocol, security.saslMechanism, security.saslUsername ? `user "${security.saslUsername}"` : undefined].filter(Boolean).join(', ');
    const causeText = describeCause(cause);
    super(`cannot connect to Kafka at ${brokers.join(',')} (${how}): ${causeText}${hint(protocol, causeText)}`);
  }
}

/**
 * The broker refused an operation for want of an ACL: the error, with the operation, the
 * principal's settings and the nested cause (platformatic's ResponseError says only "Received
 * response with error"); undefined for any other error.
 */
export class KafkaAuthorizationError extends Error {
  override readonly name = 'KafkaAuthorizationError';
  constructor(what: string, security: KafkaSecurity, override readonly cause: unknown) {
    const who = security.saslUsername ? `user "${security.saslUsername}"` : security.sslCertificateLocation ? 'the client certificate' : (security.securityProtocol ?? 'PLAINTEXT');
    super(`not authorized to ${what} (as ${who}): ${describeCause(cause)} (the principal lacks an ACL for this; docs/security.md)`);
  }
}
export function asAuthorizationError(err: unknown, what: string, security: KafkaSecurity): unknown {
  return err instanceof Error && /authorization failed|not authorized/i.test(describeCause(err)) ? new KafkaAuthorizationError(what, security, err) : err;
}

function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const parts = [err.message];
  // kafkajs wraps the socket error in originalError/cause; platformatic in `errors`.
  const inner = (err as { originalError?: unknown }).originalError ?? err.cause ?? (err as { errors?: unknown[] }).errors?.[0];
  if (inner instanceof Error && !err.message.includes(inner.message)) parts.push(describeCause(inner));
  return parts.join(': ');
}

function hint(protocol: string, cause: string): string {
  if (/authentication failed|invalid credentials|SASL_AUTHENTICATION_FAILED/i.test(cause)) return ' (check the SASL user, password and mechanism)';
  if (/alert (certificate unknown|bad certificate|unknown ca|certificate required)/i.test(cause))
    return ' (the broker refused the client certificate: KAFKA_SSL_CERTIFICATE_LOCATION must be signed by a CA the broker trusts)';
  if (/certificate|self[- ]signed|unable to (get|verify)|altnames/i.test(cause)) return ' (the broker certificate does not chain to KAFKA_SSL_CA_LOCATION, or the host name does not match it)';
  if (/wrong version number|packet length too long|EPROTO/i.test(cause)) return ' (is this listener plaintext? check KAFKA_SECURITY_PROTOCOL)';
  if (/not authorized|authorization failed/i.test(cause)) return ' (the principal lacks an ACL for this; docs/security.md)';
  if (/closed|ECONNRESET/i.test(cause)) {
    return protocol === 'PLAINTEXT' || protocol === 'SASL_PLAINTEXT'
      ? ' (the broker closed the connection: if this is a TLS listener, set KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL)'
      : ' (the broker closed the connection: a client certificate it does not trust, or a listener of another security protocol)';
  }
  return '';
}
