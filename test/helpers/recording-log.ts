import type { Logger } from '../../lib/logger.js';

/** A Logger that keeps what it is given, as [level, message, fields], for a test to read. */
export function recordingLog() {
  const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
  const log: Logger = {
    debug: (m, f) => void lines.push(['debug', m, f]),
    info: (m, f) => void lines.push(['info', m, f]),
    warn: (m, f) => void lines.push(['warn', m, f]),
    error: (m, f) => void lines.push(['error', m, f]),
    child: () => log,
  };
  return { log, lines };
}
