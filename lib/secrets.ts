import { readFileSync } from 'node:fs';

/**
 * Secrets: read from files (Docker and Kubernetes secrets mount them as files) and kept out of
 * anything printed. Nothing here logs; callers print only what `redactUrl` returns.
 */

/**
 * The content of a secret file, without the one trailing newline editors and `echo` add (a
 * password never ends in a newline, and keeping it would make authentication fail mysteriously).
 * Throws an error naming the setting and the path, never the content.
 */
export function readSecretFile(setting: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return text.replace(/\r?\n$/, '');
}

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
