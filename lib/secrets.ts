/**
 * Secrets: read from files (Docker and Kubernetes secrets mount them as files) and kept out of
 * anything printed. Nothing here logs; callers print only what `redactUrl` returns. Reading a
 * secret file is shared with the producer package, which reads the same KAFKA_*_FILE variables.
 */
export { readSecretFile, resolveSecretFiles } from '@kafka-clickhouse-ingest/producer/secret-file.js';

/** `url` with its password (and a `password` query parameter) replaced by `***`, for logs and CLI output. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    // Not a URL we can parse: print no part of it rather than risk a password.
    return '(unparseable URL)';
  }
}
