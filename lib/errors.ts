/**
 * Every failure on the data path is one of three kinds, and the kind decides what happens:
 *  - retriable: the broker or ClickHouse is unavailable, slow, overloaded, out of disk, or
 *    failing in a way we do not recognise. Back off and try again for as long as it takes; do
 *    not commit the offsets: Kafka holds the rows meanwhile (see insert-stage.ts).
 *  - poison: this message can never be inserted as it is (undecodable bytes, unknown schema
 *    fingerprint, values the table cannot hold). Dead-letter it with its bytes and coordinates,
 *    then commit past it.
 *  - fatal: a bug in our own code (a TypeError and its kin). Crash loudly and let the supervisor
 *    restart. Nothing from outside the process is fatal: an unknown ClickHouse code or a proxy's
 *    error page made fatal would only turn an outage into a crash loop.
 */
export type FailureKind = 'retriable' | 'poison' | 'fatal';

export class RetriableError extends Error {
  override readonly name = 'RetriableError';
  readonly kind = 'retriable' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * unknown_schema_id: a Confluent-framed message whose schema id the registry does not have, or
 * whose schema no event type of the worker can read (consumers/schema-registry.ts).
 */
export type PoisonReason = 'undecodable' | 'unknown_fingerprint' | 'unknown_schema_id' | 'invalid_value' | 'rejected_by_clickhouse';

export class PoisonError extends Error {
  override readonly name = 'PoisonError';
  readonly kind = 'poison' as const;
  constructor(
    readonly reason: PoisonReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * ClickHouse error codes that mean "try again later": the server is overloaded or
 * restarting, or the network failed. See ClickHouse's src/Common/ErrorCodes.cpp.
 */
const RETRIABLE_CLICKHOUSE_CODES = new Set([
  3, // UNEXPECTED_END_OF_FILE
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (replica in read-only mode during restart)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  285, // TOO_FEW_LIVE_REPLICAS
  319, // UNKNOWN_STATUS_OF_INSERT
  243, // NOT_ENOUGH_SPACE (disk full: rows wait in Kafka until space returns)
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
]);

/** ClickHouse codes that mean the data itself is wrong: retrying the same rows cannot help. */
const DATA_CLICKHOUSE_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  376, // CANNOT_PARSE_UUID
]);

const RETRIABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

/** JavaScript's own errors: thrown by a bug in our code, never by ClickHouse or the network. */
const BUG_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError] as const;

/**
 * The one place that decides what a ClickHouse failure means. An insert failing with a
 * data error is 'poison' for the batch as a whole; the insert stage then bisects the
 * batch to find the rows responsible, so the rest still lands.
 *
 * Unknown means retriable: a ClickHouse code not listed above (e.g. 394, 236, 439, 60 while a
 * migration is pending), a non-ClickHouse HTTP error (a proxy's 502 page), anything without a
 * code. Retrying costs lag, which alerts; calling it fatal costs a crash loop, and calling it
 * poison would dead-letter good rows. Only JavaScript's own error classes (a bug) are fatal.
 * RETRIABLE_CLICKHOUSE_CODES still documents the codes we know to be transient.
 */
export function classifyClickHouseError(err: unknown): FailureKind {
  if (err instanceof RetriableError) return 'retriable';
  if (err instanceof PoisonError) return 'poison';
  const e = err as { code?: unknown; clickhouseCode?: unknown; message?: unknown; cause?: unknown; name?: unknown } | null;
  if (!e || typeof e !== 'object') return 'fatal';
  const code = clickHouseCodeOf(err);
  if (code !== undefined) {
    if (DATA_CLICKHOUSE_CODES.has(code)) return 'poison';
    return 'retriable';
  }
  if (typeof e.code === 'string' && RETRIABLE_NODE_CODES.has(e.code)) return 'retriable';
  if (e.cause) {
    const inner = classifyClickHouseError(e.cause);
    if (inner !== 'fatal') return inner;
  }
  if (BUG_ERRORS.some((c) => err instanceof c)) return 'fatal';
  return 'retriable';
}

/**
 * The numeric ClickHouse exception code of an error, when it carries one: `code` from
 * @clickhouse/client (a numeric string), `clickhouseCode` from chDB's errors (whose `code` is
 * a CHDB_* name).
 */
export function clickHouseCodeOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; clickhouseCode?: unknown } | null;
  if (!e || typeof e !== 'object') return undefined;
  for (const c of [e.clickhouseCode, e.code]) {
    if (typeof c === 'number' && Number.isInteger(c)) return c;
    if (typeof c === 'string' && /^\d+$/.test(c)) return Number(c);
  }
  return undefined;
}

/** True when ClickHouse (or our classifier) has named this failure transient; false for an unknown one worth a loud log. */
export function isKnownRetriable(err: unknown): boolean {
  if (err instanceof RetriableError) return true;
  const code = clickHouseCodeOf(err);
  if (code !== undefined) return RETRIABLE_CLICKHOUSE_CODES.has(code);
  const e = err as { code?: unknown } | null;
  return !!e && typeof e === 'object' && typeof e.code === 'string' && RETRIABLE_NODE_CODES.has(e.code);
}

/**
 * Kafka protocol errors that no retry can mend: the principal lacks an ACL (the operator must
 * grant it), or our own request is malformed (a bug). Everything else a Kafka call throws is
 * retriable, whatever kafkajs's own `retriable` flag says: a rebalance (REBALANCE_IN_PROGRESS,
 * ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) is answered by the caller's staleness check on its next
 * attempt, and a broker or coordinator moving is answered by time.
 */
const FATAL_KAFKA_ERRORS = new Set(['TOPIC_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'OFFSET_METADATA_TOO_LARGE', 'INVALID_COMMIT_OFFSET_SIZE', 'SASL_AUTHENTICATION_FAILED']);

/**
 * Classifies what a Kafka call (an offset commit, an offset fetch) threw: fatal or retriable,
 * never poison. Kafka's numeric error codes are not ClickHouse's (27 is REBALANCE_IN_PROGRESS in
 * Kafka and CANNOT_PARSE_INPUT_ASSERTION_FAILED in ClickHouse), so Kafka errors must never go
 * through classifyClickHouseError.
 */
export function classifyKafkaError(err: unknown): Exclude<FailureKind, 'poison'> {
  if (err instanceof RetriableError) return 'retriable';
  if (BUG_ERRORS.some((c) => err instanceof c)) return 'fatal';
  for (let e = err as { type?: unknown; name?: unknown; cause?: unknown } | undefined, depth = 0; e && typeof e === 'object' && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.type === 'string' && FATAL_KAFKA_ERRORS.has(e.type)) return 'fatal';
    if (e.name === 'KafkaJSSASLAuthenticationError') return 'fatal';
  }
  return 'retriable';
}
