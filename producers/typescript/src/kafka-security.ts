import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { ConfigError, KAFKA_SECURITY_ENV, kafkaSecurityProblems, type KafkaSecurity } from './kafka-settings.js';
import { readSecretFile } from './secret-file.js';

/**
 * An OAUTHBEARER token source, called at every (re)authentication, so it can return a fresh
 * token (e.g. AWS's `generateAuthToken` for MSK IAM, docs/security.md). kafkajs's shape.
 */
export type OAuthBearerProvider = () => Promise<{ value: string }>;

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

export function kafkaSecurity(s: KafkaSecurity, oauthBearerProvider?: OAuthBearerProvider, name: (field: keyof KafkaSecurity) => string = (f) => KAFKA_SECURITY_ENV[f]): ResolvedKafkaSecurity {
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

/** kafkajs's SASL options for resolved settings. */
export function kafkajsSasl(sasl: NonNullable<ResolvedKafkaSecurity['sasl']>): SASLOptions {
  if (sasl.mechanism === 'OAUTHBEARER') {
    const token = sasl.token;
    return { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: await token() }) };
  }
  const mechanism = sasl.mechanism === 'PLAIN' ? 'plain' : sasl.mechanism === 'SCRAM-SHA-256' ? 'scram-sha-256' : 'scram-sha-512';
  return { mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}
