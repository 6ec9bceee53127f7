import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KafkaSecurity } from '../../lib/config.js';
import { KAFKA_SECURITY_ENV } from '../../lib/kafka.js';

/**
 * The secured broker of `scripts/kafka.sh start-secure`, started (once; it is reused when it
 * already answers) by the test that needs it, and its principals' credentials. Ports: the
 * SASL_SSL listener at KAFKA_SECURE_PORT (KAFKA_PORT+2), mTLS +1, SASL_PLAINTEXT +2.
 */
const root = join(import.meta.dirname, '..', '..');
export const securePort = Number(process.env.KAFKA_SECURE_PORT ?? Number(process.env.KAFKA_PORT ?? 9092) + 2);
export const certsDir = join(process.env.KAFKA_CACHE_DIR ?? join(root, '.cache/kafka'), `secure-${securePort}`, 'certs');
export const listeners = {
  saslSsl: `127.0.0.1:${securePort}`,
  ssl: `127.0.0.1:${securePort + 1}`,
  saslPlaintext: `127.0.0.1:${securePort + 2}`,
};

export type Principal = 'admin' | 'producer' | 'worker';

export function startSecureBroker(): void {
  execFileSync('bash', [join(root, 'scripts/kafka.sh'), 'start-secure'], { stdio: 'inherit', env: { ...process.env, KAFKA_SECURE_PORT: String(securePort) } });
}

export function passwords(): Record<'store' | 'key' | Principal, string> {
  const env = Object.fromEntries(
    readFileSync(join(certsDir, 'users.env'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('=') as [string, string]),
  );
  return { store: env.STORE_PASSWORD!, key: env.KEY_PASSWORD!, admin: env.ADMIN_PASSWORD!, producer: env.PRODUCER_PASSWORD!, worker: env.WORKER_PASSWORD! };
}

export const cert = (name: string) => join(certsDir, name);

/** How a principal connects with each mechanism: brokers and KafkaSecurity settings. */
export function scram(user: Principal, mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'PLAIN', password = passwords()[user]): { brokers: string[]; security: KafkaSecurity } {
  return {
    brokers: [listeners.saslSsl],
    security: { securityProtocol: 'SASL_SSL', saslMechanism: mechanism, saslUsername: user, saslPassword: password, sslCaLocation: cert('ca.pem') },
  };
}

export function mtls(user: Principal | 'rogue'): { brokers: string[]; security: KafkaSecurity } {
  return {
    brokers: [listeners.ssl],
    security: { securityProtocol: 'SSL', sslCaLocation: cert('ca.pem'), sslCertificateLocation: cert(`${user}.pem`), sslKeyLocation: cert(`${user}-key.pem`), sslKeyPassword: passwords().key },
  };
}

export function oauth(): { brokers: string[]; security: KafkaSecurity } {
  return { brokers: [listeners.saslSsl], security: { securityProtocol: 'SASL_SSL', saslMechanism: 'OAUTHBEARER', sslCaLocation: cert('ca.pem') } };
}

/**
 * An unsecured JWS (alg "none", RFC 7515 unsigned), what Kafka's
 * OAuthBearerUnsecuredValidatorCallbackHandler accepts: its "sub" becomes the principal.
 */
export function unsecuredJws(sub: string, lifetimeMs = 3_600_000): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Date.now() / 1000;
  return `${b64({ alg: 'none' })}.${b64({ sub, iat: now, exp: now + lifetimeMs / 1000 })}.`;
}

/** Settings as the worker reads them from the environment (for consumers/main.ts as a child process). */
export function securityEnv(s: KafkaSecurity): Record<string, string> {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined).map(([k, v]) => [KAFKA_SECURITY_ENV[k as keyof KafkaSecurity], String(v)]));
}
