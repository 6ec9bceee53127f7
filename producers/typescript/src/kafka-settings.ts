import { z } from 'zod';
import { resolveSecretFiles } from './secret-file.js';

/**
 * The Kafka connection settings the worker and the producer SDK share: their validation (one
 * zod schema per setting, which the worker's lib/config.ts builds its `kafka` section from),
 * their environment variables, and the rules between the security settings. One parser, so a
 * value the worker refuses the SDK refuses too, with the same message.
 */

/** A setting refused at start-up; the message names the setting (variable or option), never a secret's value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * A bootstrap broker, `host:port`: a non-empty host (a name, an IPv4 address, or an IPv6
 * address in brackets, `[::1]:9092`) and a port from 1 to 65535. kafkajs would take `kafka`
 * (no port) or `:::` and fail only at connect time, far from the setting that caused it.
 */
export function brokerProblem(broker: string): string | undefined {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(broker) ?? /^([^\s:/[\]@]+):(\d{1,5})$/.exec(broker);
  if (!m) return `${JSON.stringify(broker)} is not host:port (an IPv6 address in brackets: [::1]:9092)`;
  const port = Number(m[2]);
  if (port < 1 || port > 65_535) return `${JSON.stringify(broker)}: port must be from 1 to 65535`;
  return undefined;
}

/** A comma-separated list in the environment, an array in code. */
export const commaList = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.string().min(1)).min(1),
);

export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/**
 * Each shared setting's schema, without defaults (the worker and the SDK differ in some:
 * client id 'ingest' vs 'ingest-producer'). The security names follow librdkafka's and the Java
 * client's properties (security.protocol, sasl.mechanism, ssl.ca.location, ...), which managed
 * services document; docs/security.md. Unset protocol means PLAINTEXT.
 */
export const KAFKA_SETTINGS = {
  /** Bootstrap brokers, host:port. Env KAFKA_BROKERS (comma-separated). */
  brokers: commaList.superRefine((brokers, ctx) => {
    for (const [i, b] of (brokers as string[]).entries()) {
      const problem = brokerProblem(b);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [i] });
    }
  }),
  /** Kafka client id. Env KAFKA_CLIENT_ID. */
  clientId: z.string().min(1),
  /** Prefix of every topic: topic = prefix + event type name. Env KAFKA_TOPIC_PREFIX. */
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]*$/, 'only letters, digits, ".", "_" and "-"'),
  /** PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL. Env KAFKA_SECURITY_PROTOCOL. */
  securityProtocol: z.enum(SECURITY_PROTOCOLS).optional(),
  /** PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER. Env KAFKA_SASL_MECHANISM. */
  saslMechanism: z.enum(SASL_MECHANISMS).optional(),
  /** Env KAFKA_SASL_USERNAME (or KAFKA_SASL_USERNAME_FILE). */
  saslUsername: z.string().min(1).optional(),
  /** Secret. Env KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE). */
  saslPassword: z.string().min(1).optional(),
  /** OAUTHBEARER: a file holding the token, read again at every authentication (a projected, rotated token). Env KAFKA_SASL_OAUTHBEARER_TOKEN_FILE. */
  saslOauthbearerTokenFile: z.string().min(1).optional(),
  /** PEM CA bundle the broker certificates must chain to; unset: the system CAs. Env KAFKA_SSL_CA_LOCATION. */
  sslCaLocation: z.string().min(1).optional(),
  /** PEM client certificate (mTLS). Env KAFKA_SSL_CERTIFICATE_LOCATION. */
  sslCertificateLocation: z.string().min(1).optional(),
  /** PEM private key of the client certificate. Env KAFKA_SSL_KEY_LOCATION. */
  sslKeyLocation: z.string().min(1).optional(),
  /** Secret: passphrase of an encrypted private key. Env KAFKA_SSL_KEY_PASSWORD (or KAFKA_SSL_KEY_PASSWORD_FILE). */
  sslKeyPassword: z.string().min(1).optional(),
};
export type KafkaSettingName = keyof typeof KAFKA_SETTINGS;

const SECURITY_FIELDS = ['securityProtocol', 'saslMechanism', 'saslUsername', 'saslPassword', 'saslOauthbearerTokenFile', 'sslCaLocation', 'sslCertificateLocation', 'sslKeyLocation', 'sslKeyPassword'] as const;
const securitySchema = z.strictObject(Object.fromEntries(SECURITY_FIELDS.map((f) => [f, KAFKA_SETTINGS[f]])) as Pick<typeof KAFKA_SETTINGS, (typeof SECURITY_FIELDS)[number]>);

/** TLS and SASL: the worker's KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* settings (docs/security.md). */
export type KafkaSecurity = z.infer<typeof securitySchema>;

/** Environment variable → setting, read alike by the worker (lib/config.ts) and the SDK. */
export const KAFKA_ENV: Readonly<Record<string, KafkaSettingName>> = {
  KAFKA_BROKERS: 'brokers',
  KAFKA_CLIENT_ID: 'clientId',
  KAFKA_TOPIC_PREFIX: 'topicPrefix',
  KAFKA_SECURITY_PROTOCOL: 'securityProtocol',
  KAFKA_SASL_MECHANISM: 'saslMechanism',
  KAFKA_SASL_USERNAME: 'saslUsername',
  KAFKA_SASL_PASSWORD: 'saslPassword',
  KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: 'saslOauthbearerTokenFile',
  KAFKA_SSL_CA_LOCATION: 'sslCaLocation',
  KAFKA_SSL_CERTIFICATE_LOCATION: 'sslCertificateLocation',
  KAFKA_SSL_KEY_LOCATION: 'sslKeyLocation',
  KAFKA_SSL_KEY_PASSWORD: 'sslKeyPassword',
};

/** The environment variable of each Kafka security setting. */
export const KAFKA_SECURITY_ENV = Object.fromEntries(Object.entries(KAFKA_ENV).filter(([, f]) => (SECURITY_FIELDS as readonly string[]).includes(f)).map(([n, f]) => [f, n])) as Readonly<Record<keyof KafkaSecurity, string>>;

/**
 * Kafka settings that may hold a secret: each is also read from a file, `${name}_FILE` (Docker
 * and Kubernetes secrets), and no error message ever echoes their values.
 */
export const KAFKA_SECRET_ENV = ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SSL_KEY_PASSWORD'] as const;

/** Zod quotes the received value in some messages; never for a setting that may hold a secret. */
export function issueMessage(message: string, secret: boolean): string {
  return secret ? message.replace(/, received .*$/s, '') : message;
}

/** The shared settings found in the environment (unset and empty variables are absent). */
export interface KafkaEnvSettings {
  brokers?: string[];
  clientId?: string;
  topicPrefix?: string;
  security: KafkaSecurity;
  /** The variable each setting came from, to name it in a later error (a cross-field rule). */
  sources: Partial<Record<KafkaSettingName, string>>;
}

/**
 * The KAFKA_* variables the worker reads, for the SDK: KAFKA_BROKERS, KAFKA_CLIENT_ID,
 * KAFKA_TOPIC_PREFIX and the security settings, secrets also from `<NAME>_FILE`. Each value is
 * checked as the worker checks it; throws a ConfigError listing every bad one by variable,
 * without a secret's value. The rules between security settings are checked once the options
 * are merged in (kafkaSecurityProblems), where options win.
 */
export function kafkaSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaEnvSettings {
  const { values, problems } = resolveSecretFiles(env, KAFKA_SECRET_ENV);
  const out: KafkaEnvSettings = { security: {}, sources: {} };
  for (const [name, field] of Object.entries(KAFKA_ENV)) {
    const value = values[name];
    if (value === undefined || value === '') continue;
    const parsed = KAFKA_SETTINGS[field].safeParse(value);
    if (!parsed.success) {
      const secret = (KAFKA_SECRET_ENV as readonly string[]).includes(name);
      for (const issue of parsed.error.issues) problems.push(`${name}: ${issue.message === undefined ? 'invalid' : issueMessage(issue.message, secret)}`);
      continue;
    }
    out.sources[field] = name;
    if (field === 'brokers' || field === 'clientId' || field === 'topicPrefix') (out as unknown as Record<string, unknown>)[field] = parsed.data;
    else (out.security as Record<string, unknown>)[field] = parsed.data;
  }
  if (problems.length > 0) throw new ConfigError(`invalid Kafka settings in the environment:\n  - ${problems.join('\n  - ')}`);
  return out;
}

/**
 * The rules between the Kafka security settings; each problem names the setting (as
 * `name(field)`, so the worker says KAFKA_… and the SDK its option or variable). `tokenProvider`:
 * whether a programmatic OAUTHBEARER token provider was given; 'unknown' in the worker's
 * loadConfig, because IngestWorker.start receives it later (createKafka checks again then).
 * Never includes a value.
 */
export function kafkaSecurityProblems(s: KafkaSecurity, tokenProvider: boolean | 'unknown', name: (field: keyof KafkaSecurity) => string): string[] {
  const hasTokenProvider = tokenProvider === true;
  const known = tokenProvider !== 'unknown';
  const problems: string[] = [];
  const protocol = s.securityProtocol ?? 'PLAINTEXT';
  const sasl = protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL';
  const tls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const proto = `${name('securityProtocol')}=${protocol}`;
  if (sasl && !s.saslMechanism) problems.push(`${name('saslMechanism')} is required with ${proto}`);
  for (const f of ['saslMechanism', 'saslUsername', 'saslPassword', 'saslOauthbearerTokenFile'] as const) {
    if (!sasl && s[f] !== undefined) problems.push(`${name(f)} is set, but ${proto} does not use SASL (use SASL_SSL or SASL_PLAINTEXT)`);
  }
  for (const f of ['sslCaLocation', 'sslCertificateLocation', 'sslKeyLocation', 'sslKeyPassword'] as const) {
    if (!tls && s[f] !== undefined) problems.push(`${name(f)} is set, but ${proto} does not use TLS (use SSL or SASL_SSL)`);
  }
  if (sasl && s.saslMechanism) {
    const mech = `${name('saslMechanism')}=${s.saslMechanism}`;
    if (s.saslMechanism === 'OAUTHBEARER') {
      if (s.saslUsername !== undefined || s.saslPassword !== undefined) problems.push(`${name('saslUsername')}/${name('saslPassword')} are not used with ${mech}; it authenticates with a token`);
      if (known && !hasTokenProvider && !s.saslOauthbearerTokenFile) problems.push(`${mech} needs a token: ${name('saslOauthbearerTokenFile')} or a token provider function (oauthBearerProvider)`);
      if (hasTokenProvider && s.saslOauthbearerTokenFile) problems.push(`give either ${name('saslOauthbearerTokenFile')} or a token provider function, not both`);
    } else {
      if (!s.saslUsername) problems.push(`${name('saslUsername')} is required with ${mech}`);
      if (!s.saslPassword) problems.push(`${name('saslPassword')} is required with ${mech}`);
      if (s.saslOauthbearerTokenFile) problems.push(`${name('saslOauthbearerTokenFile')} is only used with OAUTHBEARER, not ${mech}`);
    }
  }
  if ((s.sslCertificateLocation === undefined) !== (s.sslKeyLocation === undefined)) {
    problems.push(`${name('sslCertificateLocation')} and ${name('sslKeyLocation')} go together (a client certificate and its key)`);
  }
  if (s.sslKeyPassword !== undefined && s.sslKeyLocation === undefined) problems.push(`${name('sslKeyPassword')} is set without ${name('sslKeyLocation')}`);
  if (hasTokenProvider && s.saslMechanism !== 'OAUTHBEARER') problems.push(`a token provider function is only used with ${name('saslMechanism')}=OAUTHBEARER`);
  return problems;
}
