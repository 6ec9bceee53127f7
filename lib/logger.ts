import { errorFields, type Logger } from '@kafka-clickhouse-ingest/producer/logger.js';

// The structured logger lives in the producer package (its Kafka client logs through it); the
// worker's entry points add the process-wide hooks below.
export { createLogger, errorFields, safeJson, type Logger, type LogLevel } from '@kafka-clickhouse-ingest/producer/logger.js';

/**
 * Makes the process's own error output JSON lines: an unhandled rejection is logged (and, as
 * Node does by default, ends the process with exit code 1), an uncaught exception is logged and
 * exits 1, and process warnings (deprecations, MaxListeners) become warn lines instead of
 * Node's multi-line text. Call once, in an entry point.
 */
export function installProcessLogging(log: Logger): void {
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled promise rejection: exiting', { err: reason instanceof Error ? errorFields(reason) : { message: String(reason) } });
    process.exit(1);
  });
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception: exiting', { err: errorFields(err) });
    process.exit(1);
  });
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.warn('process warning', { err: { name: w.name, message: w.message } }));
}
