import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/**
 * A real Prometheus server (Debian's `prometheus` package), run as a child process with a
 * throw-away TSDB: by the integration tests (on a free loopback port) and by the main job
 * (scripts/demo.ts, on PROMETHEUS_PORT). Its configuration is derived
 * from the project's deploy/prometheus/prometheus.yml: same global section, same rule files
 * (alerts.yml), same `ingest-workers` job (name, metrics_path, …) with the static target
 * replaced by the worker under test, and faster scrape/evaluation intervals.
 */

const root = join(import.meta.dirname, '..');
export const PROJECT_PROMETHEUS_CONFIG = join(root, 'deploy/prometheus/prometheus.yml');
export const WORKER_JOB = 'ingest-workers';
const INSTALL_HINT = 'run `bash scripts/check-deploy.sh` (as root it installs the Debian packages prometheus and python3-yaml)';

/** A free TCP port on `host` (the OS picks it; the small race until it is bound again is accepted). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolvePort(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** Reads a YAML file with Debian's python3-yaml (the project has no Node YAML parser); JSON is valid YAML for Prometheus. */
export function readYaml(path: string): unknown {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) throw new Error(`${py} is missing; ${INSTALL_HINT}`);
  const r = spawnSync(py, ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`could not read ${path} as YAML (${r.stderr.trim() || `exit ${r.status}`}); ${INSTALL_HINT}`);
  return JSON.parse(r.stdout);
}

export function prometheusBinary(): string {
  const bin = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
  if (!existsSync(bin)) throw new Error(`Prometheus server binary ${bin} not found; ${INSTALL_HINT}, or set PROMETHEUS_BIN`);
  return bin;
}

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: Array<{ targets: string[]; labels?: Record<string, string> }>;
  [key: string]: unknown;
}
interface PromConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs?: ScrapeConfig[];
  [key: string]: unknown;
}

/**
 * The project's prometheus.yml adapted to a test: `workerTarget` (host:port) replaces the
 * static targets of the ingest-workers job, the self-scrape job points at this server, rule
 * files become absolute paths. Everything else (job name, metrics_path, external labels,
 * rule files) stays as deployed. Throws if the project config lacks the ingest-workers job.
 */
export function deriveTestConfig(opts: { workerTarget: string; selfTarget: string; interval: string; source?: string }): PromConfig {
  const source = opts.source ?? PROJECT_PROMETHEUS_CONFIG;
  const src = readYaml(source) as PromConfig;
  const jobs = src.scrape_configs ?? [];
  const worker = jobs.find((j) => j.job_name === WORKER_JOB);
  if (!worker) throw new Error(`${source} has no scrape job ${WORKER_JOB}`);
  if (!worker.static_configs) throw new Error(`${source}: job ${WORKER_JOB} has no static_configs to point at the test worker`);
  const baseDir = dirname(source);
  return {
    ...src,
    global: { ...src.global, scrape_interval: opts.interval, scrape_timeout: opts.interval, evaluation_interval: opts.interval },
    rule_files: (src.rule_files ?? []).map((f) => (isAbsolute(f) ? f : resolve(baseDir, f))),
    scrape_configs: jobs.map((j) => {
      if (j === worker) return { ...j, static_configs: [{ targets: [opts.workerTarget] }] };
      if (j.job_name === 'prometheus') return { ...j, static_configs: [{ targets: [opts.selfTarget] }] };
      return j;
    }),
  };
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}
export interface RangeSeries {
  metric: Record<string, string>;
  values: Array<[number, number]>;
}
export interface RuleGroup {
  name: string;
  file: string;
  rules: Array<{ name: string; type: string; health: string; lastError?: string; state?: string; query: string }>;
}

export class PrometheusServer {
  private exited: Promise<void>;
  private exitCode: number | null | undefined;
  private logTail = '';

  private constructor(
    readonly url: string,
    readonly dir: string,
    readonly config: PromConfig,
    private readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => (this.logTail = (this.logTail + chunk.toString()).slice(-8_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((r) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        r();
      }),
    );
  }

  /**
   * Starts Prometheus scraping `workerTarget` (host:port) and waits until it is ready and its
   * rules are loaded. `port`: where it listens on 127.0.0.1 (default, or 0: a free port).
   */
  static async start(opts: { workerTarget: string; interval?: string; readyTimeoutMs?: number; port?: number }): Promise<PrometheusServer> {
    const bin = prometheusBinary();
    const port = opts.port || (await freePort());
    const listen = `127.0.0.1:${port}`;
    const config = deriveTestConfig({ workerTarget: opts.workerTarget, selfTarget: listen, interval: opts.interval ?? '1s' });
    const dir = mkdtempSync(join(tmpdir(), 'ingest-test-prometheus-'));
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const child = spawn(bin, [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${listen}`, '--log.level=warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new PrometheusServer(`http://${listen}`, dir, config, child);
    child.once('error', (err) => server.failed(err));
    try {
      await server.waitReady(opts.readyTimeoutMs ?? 30_000);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  /** For a process 'exit' handler, where nothing can be awaited: SIGTERM without waiting. */
  killNow(): void {
    if (this.running) this.child.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private failed(err: Error): void {
    this.logTail += `\nspawn error: ${String(err)}`;
    this.exitCode ??= -1;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The last lines Prometheus logged (for error messages). */
  get log(): string {
    return this.logTail;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`prometheus exited (code ${this.exitCode}) before it was ready:\n${this.logTail}`);
      const ok = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`prometheus not ready at ${this.url} after ${timeoutMs} ms:\n${this.logTail}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params)}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    return body.data;
  }

  /** Instant query; every sample's value as a number. */
  async query(expr: string, time?: number): Promise<Sample[]> {
    const data = await this.api<{ resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }>('query', {
      query: expr,
      ...(time === undefined ? {} : { time: String(time / 1000) }),
    });
    if (data.resultType !== 'vector') throw new Error(`query ${expr}: expected a vector, got ${data.resultType}`);
    return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  }

  /** The single value of an instant query, or undefined when the result is empty. Throws on several series. */
  async value(expr: string): Promise<number | undefined> {
    const r = await this.query(expr);
    if (r.length > 1) throw new Error(`query ${expr}: expected at most one series, got ${r.length}: ${JSON.stringify(r.map((s) => s.metric))}`);
    return r[0]?.value;
  }

  /** Range query between two epoch-millisecond times. */
  async queryRange(expr: string, startMs: number, endMs: number, stepSeconds: number): Promise<RangeSeries[]> {
    const data = await this.api<{ result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> }>('query_range', {
      query: expr,
      start: String(startMs / 1000),
      end: String(endMs / 1000),
      step: String(stepSeconds),
    });
    return data.result.map((s) => ({ metric: s.metric, values: s.values.map(([t, v]) => [t, Number(v)] as [number, number]) }));
  }

  async ruleGroups(): Promise<RuleGroup[]> {
    return (await this.api<{ groups: RuleGroup[] }>('rules')).groups;
  }

  async alerts(): Promise<Array<{ labels: Record<string, string>; state: string }>> {
    return (await this.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('alerts')).alerts;
  }

  async targets(): Promise<Array<{ labels: Record<string, string>; scrapeUrl: string; health: string; lastError: string; scrapePool: string }>> {
    return (await this.api<{ activeTargets: Array<{ labels: Record<string, string>; scrapeUrl: string; health: string; lastError: string; scrapePool: string }> }>('targets')).activeTargets;
  }

  /** SIGTERM, wait up to `timeoutMs` (then SIGKILL), and remove the TSDB and config directory. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.running && this.child.pid !== undefined) {
      this.child.kill('SIGTERM');
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
      if ((await Promise.race([this.exited.then(() => 'exited' as const), timer])) === 'timeout') {
        this.child.kill('SIGKILL');
        await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
