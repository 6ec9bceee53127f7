import { execFileSync } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

/**
 * Starts the local schema registry (scripts/registry.sh: Apicurio Registry, Confluent's API,
 * built into .cache/registry the first time) unless one answers, and returns its URL.
 */
export function startRegistry(): string {
  execFileSync('bash', [join(root, 'scripts/registry.sh'), 'start'], { stdio: ['ignore', 'inherit', 'inherit'] });
  return registryUrl();
}

/** The local registry's Confluent-API URL (REGISTRY_PORT, as scripts/registry.sh). */
export function registryUrl(): string {
  return `http://127.0.0.1:${process.env.REGISTRY_PORT || 18081}/apis/ccompat/v6`;
}

/**
 * An HTTP gateway in front of the registry, as deployments put one (an API gateway that checks
 * credentials): forwards every request, and can be made unavailable (each connection is cut:
 * the registry is down, as far as its clients can tell) or require basic auth (401 otherwise,
 * the answer Confluent's registry gives).
 */
export class RegistryGateway {
  private server: Server | undefined;
  /** Requests cut while down: the clients that tried. */
  refused = 0;
  down = false;
  requireAuth: { username: string; password: string } | undefined;

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    const target = new URL(this.target);
    this.server = createServer((req, res) => {
      if (this.down) {
        this.refused++;
        req.socket.destroy();
        return;
      }
      if (this.requireAuth) {
        const expected = `Basic ${Buffer.from(`${this.requireAuth.username}:${this.requireAuth.password}`).toString('base64')}`;
        if (req.headers.authorization !== expected) {
          res.writeHead(401, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
          res.end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }));
          return;
        }
      }
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: `${target.pathname.replace(/\/$/, '')}${req.url}`, headers: { ...req.headers, host: target.host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => (this.server ? this.server.close(r) : r(undefined)));
  }
}
