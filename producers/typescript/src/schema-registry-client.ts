import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { RegistrySettings } from './schema-registry-settings.js';

/**
 * A client of the registry's Confluent-compatible API: @kafkajs/confluent-schema-registry (the
 * kafkajs ecosystem's), with our settings: basic auth or a bearer token, and a CA for https.
 * It caches every schema it fetched or registered by id.
 */
export function createRegistryClient(s: RegistrySettings, clientId = 'kafka-clickhouse-ingest'): SchemaRegistry {
  const bearer = s.token
    ? [
        () => ({
          // mappersmith middleware: adds the header to every request.
          prepareRequest: (next: () => Promise<{ enhance(r: { headers: Record<string, string> }): unknown }>) => next().then((req) => req.enhance({ headers: { authorization: `Bearer ${s.token}` } })),
        }),
      ]
    : [];
  return new SchemaRegistry({
    host: s.url.replace(/\/+$/, ''),
    clientId,
    ...(s.username !== undefined && s.password !== undefined ? { auth: { username: s.username, password: s.password } } : {}),
    ...(s.caCert ? { agent: new HttpsAgent({ ca: readFileSync(s.caCert), keepAlive: true }) } : {}),
    // Few, quick retries of a 5xx or a refused connection; the callers retry for longer, with
    // their own backoff (the worker: Kafka is the buffer; the SDK: the emit call fails).
    retry: { retries: 2, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 1 },
    middlewares: bearer as never,
  });
}

/** What a registry request failed with: its HTTP status when the registry answered. */
export function registryStatusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * A registry failure in one line, without the request URL's query or any header: the registry's
 * own message when it answered ("Schema being registered is incompatible with an earlier
 * schema ..."), else the network error.
 */
export function registryErrorMessage(err: unknown): string {
  const status = registryStatusOf(err);
  const message = (err as Error)?.message ?? String(err);
  // The client prefixes its client id ("kafka-clickhouse-ingest - ...").
  const text = message.replace(/^[\w.-]+ - /, '');
  if (status === 401 || status === 403) return `the schema registry refused our credentials (HTTP ${status}): ${text}`;
  return status !== undefined ? `HTTP ${status}: ${text}` : text;
}

/** A registry request's longest wait: the client sets none, and a registry that accepts and never answers would hold its caller for ever. */
export const REGISTRY_TIMEOUT_MS = 10_000;

/** `promise`, or a rejection naming `what` after `ms`. */
export function withRegistryTimeout<T>(promise: Promise<T>, what: string, ms = REGISTRY_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from the schema registry within ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
