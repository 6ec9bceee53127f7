import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * The bearer-token check of the query endpoint. Both sides are hashed before the comparison so
 * that timingSafeEqual compares equal lengths: neither the content nor the length of the token
 * leaks through the response time.
 */
export function bearerTokenMatches(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  const given = createHash('sha256').update(match?.[1] ?? '').digest();
  const expected = createHash('sha256').update(token).digest();
  // Still compare when nothing was given, so a missing header costs the same time.
  return timingSafeEqual(given, expected) && match !== null;
}
