import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { RouteHandler } from './query-endpoint.js';

/** One dependency check: resolves when the dependency answers, rejects (or hangs) when not. */
export type Probe = () => Promise<unknown>;

export interface ProbeResult {
  ok: boolean;
  /** Why the last probe failed ('timed out after N ms' for one that hung). */
  error?: string;
  checkedAt: number;
}

/**
 * Probes of the worker's dependencies (Kafka, ClickHouse, Redis) run on a timer, and /readyz
 * reads their last results: a request never waits on a dependency, and a scrape storm does not
 * multiply the probes. A probe still unanswered when the next tick comes counts as failed
 * (a hung connection is the usual form of "unreachable"); it is not started again until it
 * settles, so hung probes never pile up.
 */
export class ReadinessProbes {
  private readonly results = new Map<string, ProbeResult>();
  private readonly inFlight = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly probes: Record<string, Probe>,
    private readonly intervalMs: number,
    /** Hears every probe's outcome, e.g. to set a gauge. */
    private readonly onResult: (name: string, ok: boolean) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    // Unknown until the first probe answers: not ready.
    for (const name of Object.keys(probes)) this.results.set(name, { ok: false, error: 'not probed yet', checkedAt: 0 });
  }

  /** Runs every probe now and then every intervalMs; resolves when the first round settled or timed out. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    await this.tick();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Names of the failing dependencies with why, from the last results. */
  failing(): Array<{ name: string; error: string }> {
    return [...this.results].filter(([, r]) => !r.ok).map(([name, r]) => ({ name, error: r.error ?? 'failed' }));
  }

  snapshot(): Record<string, ProbeResult> {
    return Object.fromEntries(this.results);
  }

  private set(name: string, result: ProbeResult): void {
    this.results.set(name, result);
    this.onResult(name, result.ok);
  }

  private tick(): Promise<void> {
    const started = this.now();
    const rounds = Object.entries(this.probes).map(([name, probe]) => {
      const since = this.inFlight.get(name);
      if (since !== undefined) {
        this.set(name, { ok: false, error: `no answer for ${started - since} ms`, checkedAt: started });
        return Promise.resolve();
      }
      this.inFlight.set(name, started);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${this.intervalMs} ms`)), this.intervalMs);
      });
      const settled = Promise.resolve()
        .then(probe)
        .then(
          () => this.set(name, { ok: true, checkedAt: this.now() }),
          (err) => this.set(name, { ok: false, error: oneLine(err), checkedAt: this.now() }),
        )
        .finally(() => this.inFlight.delete(name));
      return Promise.race([settled, timeout])
        .catch((err) => void this.set(name, { ok: false, error: oneLine(err), checkedAt: this.now() }))
        .finally(() => clearTimeout(timer))
        .then(() => undefined);
    });
    return Promise.all(rounds).then(() => undefined);
  }
}

const oneLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0]!.slice(0, 300);

export interface HealthChecks {
  /** The process works (no fatal error). Liveness: a failing dependency does not make it false. */
  live(): boolean;
  /** Connected and a member of the group: ready to receive traffic. Readiness. */
  ready(): boolean;
  /** Dependencies whose last probe failed; readiness also requires this to be empty. */
  failing?(): Array<{ name: string; error: string }>;
}

/**
 * Serves /metrics (Prometheus text format), /healthz and /readyz, and the routes of `extra` (e.g.
 * the query endpoint) before them. /readyz answers 503 with one line per failing dependency
 * ("redis: connect ECONNREFUSED …") or "not ready" when the worker itself is not in its group.
 */
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
    if (path === '/healthz') {
      const ok = checks.live();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not live\n');
      return;
    }
    if (path === '/readyz') {
      const failing = checks.failing?.() ?? [];
      const ok = checks.ready() && failing.length === 0;
      const body = ok ? 'ok\n' : failing.length > 0 ? failing.map((f) => `${f.name}: ${f.error}\n`).join('') : 'not ready\n';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(body);
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
