/**
 * Every failure on the data path is one of three kinds, and the kind decides what happens:
 *  - retriable: the broker or ClickHouse is unavailable, slow or overloaded. Back off and try
 *    again; do not commit the offsets.
 *  - poison: this message can never be inserted as it is (undecodable bytes, unknown schema
 *    fingerprint, values the table cannot hold). Dead-letter it with its bytes and coordinates,
 *    then commit past it.
 *  - anything else is a bug or a misconfiguration: crash loudly and let the supervisor restart.
 */
export type FailureKind = 'retriable' | 'poison' | 'fatal';

export class RetriableError extends Error {
  override readonly name = 'RetriableError';
  readonly kind = 'retriable' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type PoisonReason = 'undecodable' | 'unknown_fingerprint' | 'invalid_value' | 'rejected_by_clickhouse';

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

/**
 * The one place that decides what a ClickHouse failure means. An insert failing with a
 * data error is 'poison' for the batch as a whole; the insert stage then bisects the
 * batch to find the rows responsible, so the rest still lands.
 */
export function classifyClickHouseError(err: unknown): FailureKind {
  if (err instanceof RetriableError) return 'retriable';
  if (err instanceof PoisonError) return 'poison';
  const e = err as { code?: unknown; clickhouseCode?: unknown; message?: unknown; cause?: unknown; name?: unknown } | null;
  if (!e || typeof e !== 'object') return 'fatal';
  // chDB's errors (ChdbInsertError, code 'CHDB_INSERT') carry the server's code as `clickhouseCode`.
  const given = typeof e.clickhouseCode === 'number' ? e.clickhouseCode : e.code;
  const code = typeof given === 'string' && /^\d+$/.test(given) ? Number(given) : given;
  if (typeof code === 'number') {
    if (RETRIABLE_CLICKHOUSE_CODES.has(code)) return 'retriable';
    if (DATA_CLICKHOUSE_CODES.has(code)) return 'poison';
    return 'fatal';
  }
  if (typeof code === 'string' && RETRIABLE_NODE_CODES.has(code)) return 'retriable';
  const message = String(e.message ?? '');
  if (/timeout|socket hang up|ECONNREFUSED|ECONNRESET|network|aborted|closed/i.test(message)) return 'retriable';
  if (e.cause) return classifyClickHouseError(e.cause);
  return 'fatal';
}
