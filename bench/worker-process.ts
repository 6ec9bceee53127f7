import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../lib/config.js';
import { createLogger, installProcessLogging } from '../lib/logger.js';
import { IngestWorker, type WorkerOptions } from '../consumers/worker.js';

/**
 * The worker as the bench runs it: a child process doing what `consumers/main.ts` does
 * (config from the environment, IngestWorker.start, graceful stop on SIGTERM), plus an IPC
 * channel for the bench, because the embedded chDB data directory belongs to this process.
 * Requests `{ id, type, … }` are answered with `{ type: 'reply', id, value }` or `{ …, error }`:
 * - `query { sql }`: rows of a query on the worker's own ClickHouse client (to count its table);
 * - `memory`: peak heap figures sampled every 100 ms since start;
 * - `profileStart` / `profileStop { path }`: V8 CPU profile of this (main) thread between the two,
 *   written to `path` as a .cpuprofile;
 * - `stop`: graceful stop, then exit 0.
 * It sends `{ type: 'ready', metricsUrl }` once IngestWorker.start resolved (group joined).
 * Another entry point (the fault suite's chaos/fault-worker.ts) runs the same process through
 * `runWorkerProcess` with its own worker options and extra request types.
 */
type Request = { id: number } & ({ type: 'query'; sql: string } | { type: 'memory' } | { type: 'profileStart' } | { type: 'profileStop'; path: string } | { type: 'stop' });

const send = (msg: unknown) => process.send?.(msg);

/** Extra IPC request types of another entry point: `{ id, type, ...payload }` → the handler's value. */
export type ExtraHandlers = Record<string, (req: Record<string, unknown>, worker: IngestWorker) => Promise<unknown>>;

export async function runWorkerProcess(options: WorkerOptions = {}, extra: ExtraHandlers = {}): Promise<IngestWorker> {
  const log = createLogger({ component: 'worker-process' });
  installProcessLogging(log);
  const worker = await IngestWorker.start(loadConfig(), options);

  const peak = { heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0, arrayBuffersBytes: 0 };
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peak.heapUsedBytes = Math.max(peak.heapUsedBytes, m.heapUsed);
    peak.heapTotalBytes = Math.max(peak.heapTotalBytes, m.heapTotal);
    peak.externalBytes = Math.max(peak.externalBytes, m.external);
    peak.arrayBuffersBytes = Math.max(peak.arrayBuffersBytes, m.arrayBuffers);
  }, 100);
  sampler.unref();

  let profiler: Session | undefined;
  let stopping = false;
  async function stop(code: number): Promise<never> {
    if (!stopping) {
      stopping = true;
      await worker.stop().catch((err) => {
        log.error('worker stop failed', { err });
        code = 1;
      });
    }
    process.exit(code);
}

async function handle(req: Request): Promise<unknown> {
  const handler = extra[req.type];
  if (handler) return handler(req as unknown as Record<string, unknown>, worker);
  switch (req.type) {
    case 'query':
      return (await worker.clickhouse.query({ query: req.sql, format: 'JSONEachRow' })).json();
    case 'memory':
      return { ...peak };
    case 'profileStart':
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      return true;
    case 'profileStop': {
      if (!profiler) throw new Error('profileStop without profileStart');
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(req.path, JSON.stringify(profile));
      profiler.disconnect();
      profiler = undefined;
      return req.path;
    }
    case 'stop':
      return stop(0);
  }
}

worker.onFatal((err) => {
  send({ type: 'fatal', error: String((err as Error)?.stack ?? err) });
  process.exit(1);
});
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
// The bench died: do not linger holding the data directory.
process.on('disconnect', () => void stop(0));
process.on('message', (req: Request) => {
  handle(req).then(
    (value) => send({ type: 'reply', id: req.id, value }),
    (err) => send({ type: 'reply', id: req.id, error: String(err) }),
  );
});
send({ type: 'ready', metricsUrl: worker.metricsUrl });
return worker;
}

// Run directly (the bench's WorkerChild): the worker as `npm run worker` runs it.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await runWorkerProcess();
