/**
 * Minimal structured logger: one JSON line per event on stderr, level from LOG_LEVEL.
 * Every line is one JSON object, whatever the fields hold (errors, circular objects, bigints,
 * buffers), so a log shipper never sees a half line. The worker's `installProcessLogging`
 * (lib/logger.ts) routes what Node itself would print through it too.
 */
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** An Error as plain fields (its stack stays one JSON string); the cause chain one level deep. */
export function errorFields(err: Error & { code?: unknown; cause?: unknown }): Record<string, unknown> {
  const cause = err.cause instanceof Error ? { cause: { name: err.cause.name, message: err.cause.message } } : {};
  return { name: err.name, message: err.message, ...(err.code !== undefined ? { code: err.code } : {}), stack: err.stack, ...cause };
}

/** JSON.stringify that cannot throw: errors as fields, cycles cut, bigints as strings, buffers summarised. */
export function safeJson(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Error) return errorFields(v);
    if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
    if (v && typeof v === 'object') {
      // Buffer.toJSON runs before the replacer sees it: catch its { type: 'Buffer', data } form.
      if ((v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) return `<${(v as { data: unknown[] }).data.length} bytes>`;
      if (seen.has(v)) return '[circular]';
      seen.add(v);
    }
    return v;
  });
}

export function createLogger(base: Record<string, unknown> = {}, level: LogLevel = (process.env.LOG_LEVEL as LogLevel) || 'info'): Logger {
  const min = LEVELS[level] ?? LEVELS.info;
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    process.stderr.write(`${safeJson({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields })}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, level),
  };
}
