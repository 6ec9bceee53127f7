import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BROKERS, REDIS_URL, ROOT, children } from './common.js';
import { RssSampler, type MemoryFigures } from './memory.js';

export interface WorkerChildOptions {
  /** Names this worker's topics, group, database, data directory, DLQ queue and log file. */
  id: string;
  topicPrefix: string;
  /** Parent directory for this worker's chDB data and log. */
  runDir: string;
  concurrency?: number;
  /** Extra environment, e.g. BATCH_MAX_WAIT_MS. */
  env?: Record<string, string>;
  /** Checkout whose worker runs (default: this one); bench/ab-drain.ts compares two commits. */
  root?: string;
  /** Entry point relative to the repository (default bench/worker-process.ts; the fault suite passes its own, compiled). A `.ts` one runs through tsx. */
  script?: string;
  /** Broker list and Redis URL (default: the bench's, from KAFKA_BROKERS / REDIS_URL). */
  brokers?: string[];
  redisUrl?: string;
}

/**
 * A worker child process (bench/worker-process.ts) and the bench's handle on it: spawn, wait
 * until it joined its group, sample its RSS, query its tables over IPC, stop it.
 */
export class WorkerChild {
  readonly startedAt = Date.now();
  readyAt = 0;
  metricsUrl = '';
  readonly logPath: string;
  readonly dataPath: string;
  readonly database: string;
  private readonly rss: RssSampler;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private exited: Promise<number | null>;

  private constructor(
    readonly opts: WorkerChildOptions,
    readonly proc: ChildProcess,
    logPath: string,
    dataPath: string,
    database: string,
  ) {
    this.logPath = logPath;
    this.dataPath = dataPath;
    this.database = database;
    this.rss = new RssSampler(proc.pid!);
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    // A request the process can no longer answer fails instead of waiting forever.
    proc.once('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`worker ${opts.id} exited (${signal ?? code}) before it replied`));
      this.pending.clear();
    });
  }

  static async spawn(opts: WorkerChildOptions, readyTimeoutMs = 60_000): Promise<WorkerChild> {
    const database = opts.id.replace(/[^A-Za-z0-9_]/g, '_');
    const dataPath = join(opts.runDir, `chdb-${opts.id}`);
    const logPath = join(opts.runDir, `worker-${opts.id}.log`);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LOG_LEVEL: 'warn',
      KAFKA_BROKERS: (opts.brokers ?? BROKERS).join(','),
      REDIS_URL: opts.redisUrl ?? REDIS_URL,
      KAFKA_TOPIC_PREFIX: opts.topicPrefix,
      KAFKA_CREATE_TOPICS: 'false',
      INGEST_GROUP_ID: `${opts.id}-group`,
      INGEST_EVENT_TYPES: 'cost_metrics',
      INGEST_CONCURRENCY: String(opts.concurrency ?? 1),
      INGEST_FROM_BEGINNING: 'true',
      CHDB_PATH: dataPath,
      CLICKHOUSE_DATABASE: database,
      DLQ_QUEUE_PREFIX: opts.id.replace(/[^A-Za-z0-9_-]/g, '-'),
      METRICS_PORT: '0',
      METRICS_HOST: '127.0.0.1',
      ...(process.env.CLICKHOUSE_URL ? { CLICKHOUSE_URL: process.env.CLICKHOUSE_URL } : {}),
      ...opts.env,
    };
    const log = openSync(logPath, 'a');
    // The worker's V8 flag, as in the Dockerfile and `npm run worker`.
    const root = opts.root ?? ROOT;
    // A TypeScript entry point runs through tsx; a compiled one (.js) as it is, as in production.
    const script = opts.script ?? 'bench/worker-process.ts';
    const args = ['--max-semi-space-size=64', ...(script.endsWith('.ts') ? ['--import', 'tsx'] : []), join(root, script)];
    const proc = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', log, log, 'ipc'] });
    closeSync(log);
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    const child = new WorkerChild(opts, proc, logPath, dataPath, database);
    proc.on('message', (msg: { type: string }) => child.onMessage(msg));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${opts.id} not ready after ${readyTimeoutMs} ms; log ${logPath}:\n${child.logTail()}`)), readyTimeoutMs);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker ${opts.id} exited with ${code} before it was ready; log ${logPath}:\n${child.logTail()}`));
      });
      proc.on('message', (msg: { type: string }) => {
        if (msg.type === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    return child;
  }

  private onMessage(msg: { type: string; id?: number; value?: unknown; error?: string; metricsUrl?: string }): void {
    if (msg.type === 'ready') {
      this.readyAt = Date.now();
      this.metricsUrl = msg.metricsUrl!;
    } else if (msg.type === 'reply') {
      const p = this.pending.get(msg.id!);
      this.pending.delete(msg.id!);
      if (msg.error) p?.reject(new Error(msg.error));
      else p?.resolve(msg.value);
    } else if (msg.type === 'fatal') {
      for (const p of this.pending.values()) p.reject(new Error(`worker ${this.opts.id} died: ${msg.error}`));
      this.pending.clear();
    }
  }

  request<T>(type: string, payload: Record<string, unknown> = {}): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`worker ${this.opts.id} is not running; log ${this.logPath}:\n${this.logTail()}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...payload, type, id });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  query<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    return this.request<T[]>('query', { sql });
  }

  /** V8 CPU profile of the worker's main thread from now until stopProfile. */
  startProfile(): Promise<void> {
    return this.request('profileStart');
  }

  stopProfile(path: string): Promise<string> {
    return this.request('profileStop', { path });
  }

  async count(table = 'cost_metrics_ts', where = ''): Promise<number> {
    const [row] = await this.query<{ n: string }>(`SELECT count() AS n FROM ${table}${where ? ` WHERE ${where}` : ''}`);
    return Number(row?.n ?? 0);
  }

  async metricsText(): Promise<string> {
    const res = await fetch(`${this.metricsUrl}/metrics`);
    return res.text();
  }

  /** RSS figures (from /proc) and the worker's own peak heap figures, sampled since spawn. */
  async memory(): Promise<MemoryFigures> {
    const heap = await this.request<MemoryFigures['heap']>('memory');
    return { ...this.rss.finish(), heap };
  }

  /** Resolves with the exit code (null when a signal ended it) once the process exited. */
  waitExit(): Promise<number | null> {
    return this.exited;
  }

  /** Graceful stop (flush, commit, disconnect); SIGKILL when it takes longer than `timeoutMs`. */
  async stop(timeoutMs = 40_000): Promise<number | null> {
    if (this.alive) this.proc.send({ type: 'stop', id: 0 });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
      this.rss.finish();
    }
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}
