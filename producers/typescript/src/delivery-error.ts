/**
 * An emit() that Kafka did not acknowledge: the delivery timeout passed while the SDK retried,
 * or the broker refused the request for a reason a retry cannot fix. Names the brokers and the
 * root causes, which the clients bury (kafkajs in `cause` chains, @platformatic/kafka in
 * AggregateErrors under "Producing messages failed.").
 */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  constructor(
    readonly brokers: readonly string[],
    readonly attempts: number,
    readonly elapsedMs: number,
    /** False when the broker refused for good (a retry would fail the same way). */
    readonly timedOut: boolean,
    override readonly cause: unknown,
  ) {
    super(
      `events not delivered to Kafka brokers ${brokers.join(', ')} ${timedOut ? `within the delivery timeout (${attempts} attempts over ${elapsedMs} ms)` : `(refused, not retried, after ${attempts} attempt${attempts === 1 ? '' : 's'})`}: ${describeCauses(cause)}`,
      { cause },
    );
  }
}

/** Kafka protocol errors that a retry of the same request cannot fix (the Kafka protocol guide's non-retriable errors that a produce can return). */
const FATAL_KAFKA_ERRORS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'UNSUPPORTED_COMPRESSION_TYPE',
  'UNSUPPORTED_VERSION',
  'INVALID_REQUIRED_ACKS',
  'SASL_AUTHENTICATION_FAILED',
]);

/** The errors at the leaves of a client error: kafkajs's `cause` chain, AggregateError's `errors`. */
export function rootCauses(err: unknown, depth = 0): unknown[] {
  if (depth > 8 || err === null || typeof err !== 'object') return [err];
  const e = err as { errors?: unknown; cause?: unknown };
  const children: unknown[] = [];
  if (Array.isArray(e.errors) && e.errors.length > 0) children.push(...e.errors);
  else if (e.cause !== undefined && e.cause !== err) children.push(e.cause);
  if (children.length === 0) return [err];
  return children.flatMap((c) => rootCauses(c, depth + 1));
}

/** Kafka's error name of a client error (kafkajs `type`, @platformatic/kafka `apiId`), if it is a protocol error. */
function kafkaErrorName(err: unknown): string | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { type?: unknown; apiId?: unknown };
  return typeof e.apiId === 'string' ? e.apiId : typeof e.type === 'string' ? e.type : undefined;
}

/**
 * Whether a failed send may be retried. Unknown errors are retriable (the team's rule: a broker
 * restart shows up as connection resets, timeouts, "not leader" and client-specific wrappers);
 * only the protocol errors above are final.
 */
export function isRetriableSendError(err: unknown): boolean {
  return !rootCauses(err).some((c) => FATAL_KAFKA_ERRORS.has(kafkaErrorName(c) ?? ''));
}

function describeCauses(err: unknown): string {
  const seen = new Set<string>();
  for (const c of rootCauses(err)) {
    const name = kafkaErrorName(c);
    const message = c instanceof Error ? c.message : String(c);
    seen.add(name && !message.includes(name) ? `${name}: ${message}` : message);
  }
  return [...seen].slice(0, 5).join('; ');
}
