import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { RouteHandler } from './query-endpoint.js';

export interface HealthChecks {
  /** The process works (no fatal error). Liveness. */
  live(): boolean;
  /** Connected and a member of the group: ready to receive traffic. Readiness. */
  ready(): boolean;
}

/** Serves /metrics (Prometheus text format), /healthz and /readyz, and the routes of `extra` (e.g. the query endpoint) before them. */
export async function startHealthServer(registry: Registry, checks: HealthChecks, port: number, host: string, extra?: RouteHandler): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (extra?.(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        })
        .catch((err) => {
          res.writeHead(500);
          res.end(String(err));
        });
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' ? checks.live() : checks.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /metrics, /healthz or /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return { server, url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}` };
}
