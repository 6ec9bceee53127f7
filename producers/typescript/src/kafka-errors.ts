import type { KafkaSecurity } from './kafka-settings.js';

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
