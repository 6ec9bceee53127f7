import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../lib/config.js';
import { IngestWorker } from '../consumers/worker.js';

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
 */
type Request = { id: number } & ({ type: 'query'; sql: string } | { type: 'memory' } | { type: 'profileStart' } | { type: 'profileStop'; path: string } | { type: 'stop' });

const send = (msg: unknown) => process.send?.(msg);
const worker = await IngestWorker.start(loadConfig());

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
      process.stderr.write(`worker stop failed: ${String(err)}\n`);
      code = 1;
    });
  }
  process.exit(code);
}

async function handle(req: Request): Promise<unknown> {
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
