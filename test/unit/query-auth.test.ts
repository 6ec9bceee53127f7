import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveTarget, TargetError } from '../../cli/query.js';
import { startHealthServer } from '../../consumers/health-server.js';
import { queryEndpoint } from '../../consumers/query-endpoint.js';
import { redact } from '../../lib/cli.js';
import { ConfigError, loadConfig } from '../../lib/config.js';

/**
 * The query endpoint as the worker serves it (startHealthServer with the endpoint as its extra
 * route, as consumers/worker.ts wires it): off unless QUERY_ENDPOINT is true, a bearer token
 * (QUERY_TOKEN) required when set and whenever it listens beyond loopback, and the metrics,
 * liveness and readiness routes never behind the token.
 */
const TOKEN = 'a-query-token-of-32-characters-x';
const client = { query: async () => ({ json: async () => [{ generation: 0, best_score: 1 }] }) } as unknown as ClickHouseClient;

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function worker(settings: Record<string, string>): Promise<string> {
  const config = loadConfig({ METRICS_HOST: '127.0.0.1', METRICS_PORT: '0', ...settings });
  const registry = new Registry();
  registry.setDefaultLabels({ job: 'test' });
  const extra = config.metrics.queryEndpoint ? queryEndpoint(client, { describe: 'fake engine', token: config.metrics.queryToken }) : undefined;
  const started = await startHealthServer(registry, { live: () => true, ready: () => true }, config.metrics.port, config.metrics.host, extra);
  server = started.server;
  return started.url;
}

describe('query endpoint access', () => {
  it('is off by default: /query is not found, the metrics port answers as before', async () => {
    expect(loadConfig({}).metrics.queryEndpoint).toBe(false);
    const url = await worker({});
    expect((await fetch(`${url}/query`)).status).toBe(404);
    expect((await fetch(`${url}/query/fitness-trajectory?run-id=r`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('with QUERY_TOKEN: 401 without or with a wrong token, 200 with it; /metrics, /healthz, /readyz need none', async () => {
    const url = await worker({ QUERY_ENDPOINT: 'true', QUERY_TOKEN: TOKEN });
    const path = `${url}/query/fitness-trajectory?run-id=r`;
    for (const authorization of [undefined, 'Bearer wrong-token', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
      const res = await fetch(path, { headers: authorization ? { authorization } : {} });
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const body = await res.text();
      expect(body).not.toContain(TOKEN);
      expect(body).not.toContain('fake engine');
    }
    // Refused before the method is looked at: a POST without the token is 401, not 405.
    expect((await fetch(path, { method: 'POST' })).status).toBe(401);
    const ok = await fetch(path, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).result).toEqual([{ generation: 0, best_score: 1 }]);
    for (const open of ['/metrics', '/healthz', '/readyz']) expect((await fetch(`${url}${open}`)).status, open).toBe(200);
  });

  it('the query CLI sends QUERY_TOKEN and reports a refusal in one line without the token', async () => {
    const url = await worker({ QUERY_ENDPOINT: 'true', QUERY_TOKEN: TOKEN });
    expect(await resolveTarget(url, 1, 2_000, TOKEN)).toEqual({ kind: 'worker', url, clickhouse: 'fake engine' });
    await expect(resolveTarget(url, 1, 2_000)).rejects.toThrow(/HTTP 401\): it needs QUERY_TOKEN/);
    // Also when the worker was only found on the local metrics port: it is the one meant.
    await expect(resolveTarget(undefined, Number(new URL(url).port), 2_000, 'not-the-token-at-all')).rejects.toThrow(TargetError);
  });

  it('refuses to start an unauthenticated endpoint beyond loopback; the token stays out of messages and logs', () => {
    expect(() => loadConfig({ QUERY_ENDPOINT: 'true', METRICS_HOST: '0.0.0.0' })).toThrow(/QUERY_ENDPOINT is true and METRICS_HOST is 0\.0\.0\.0: set QUERY_TOKEN/);
    expect(loadConfig({ QUERY_ENDPOINT: 'true', METRICS_HOST: '127.0.0.1' }).metrics.queryToken).toBeUndefined();
    expect(loadConfig({ QUERY_ENDPOINT: 'true', METRICS_HOST: '0.0.0.0', QUERY_TOKEN: TOKEN }).metrics.queryToken).toBe(TOKEN);
    // Off, the default host needs nothing.
    expect(loadConfig({ METRICS_HOST: '0.0.0.0' }).metrics.queryEndpoint).toBe(false);

    const short = 'short-secret';
    let message = '';
    try {
      loadConfig({ QUERY_TOKEN: short });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/QUERY_TOKEN.*at least 16 characters/);
    expect(message).not.toContain(short);
    expect(redact(`GET with Bearer ${TOKEN}`, { QUERY_TOKEN: TOKEN })).toBe('GET with Bearer ***');

    // QUERY_TOKEN_FILE, as a Kubernetes Secret mounts it.
    const dir = mkdtempSync(join(tmpdir(), 'query-token-'));
    try {
      writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
      expect(loadConfig({ QUERY_TOKEN_FILE: join(dir, 'token') }).metrics.queryToken).toBe(TOKEN);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
