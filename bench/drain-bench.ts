import { parsePrometheus, round, sleep } from './common.js';
import { readStatusKb, type MemoryFigures } from './memory.js';
import { readThreadCpu, type ThreadCpu } from './profile.js';
import { WorkerChild } from './worker-child.js';

/**
 * Drain: a backlog of `expected` events already sits in `${topicPrefix}cost_metrics`; one worker
 * child process (fresh group, database and chDB directory, reading from the beginning) inserts
 * it. The table count is polled every 200 ms until it equals `expected` exactly; a count above it,
 * or still below it at the deadline, fails the step. A second count 1 s later checks that no
 * duplicate arrives late.
 *
 * Figures:
 * - rowsPerSec: expected / (worker ready → exact count). "Ready" is IngestWorker.start()
 *   resolved in the child: migrations applied and the consumer group joined.
 * - steadyRowsPerSec: rows / time between the first non-zero count and the exact count.
 * - startupSeconds: spawn → ready (node + tsx + chDB load + migrations + group join).
 */
export interface DrainFigures {
  label: string;
  expected: number;
  counted: number;
  exact: boolean;
  concurrency: number;
  startupSeconds: number;
  drainSeconds: number;
  rowsPerSec: number;
  steadyRowsPerSec: number;
  memory: MemoryFigures;
  /** CPU seconds per thread name of the worker process during the drain (Linux /proc). */
  threadCpu: ThreadCpu;
  cpuProfile?: string;
  /** The worker's own metrics when the count was exact. */
  workerMetrics: WorkerMetricsSnapshot;
  /** VmRSS (MiB) against rows counted, sampled every ~5% of the drain: shows whether RSS plateaus. */
  rssTimeline: { rows: number; rssMiB: number }[];
}

export interface WorkerMetricsSnapshot {
  flushesByReason: Record<string, number>;
  meanBatchRows: number;
  meanFlushMs: number;
  insertErrors: number;
  rowsInserted: number;
  messagesConsumed: number;
  gcSeconds: number;
}

async function workerMetrics(child: WorkerChild): Promise<WorkerMetricsSnapshot> {
  const samples = parsePrometheus(await child.metricsText());
  const sum = (name: string) => samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
  const flushesByReason: Record<string, number> = {};
  for (const s of samples.filter((x) => x.name === 'ingest_flushes_total')) flushesByReason[s.labels.reason!] = (flushesByReason[s.labels.reason!] ?? 0) + s.value;
  return {
    flushesByReason,
    meanBatchRows: Math.round(sum('ingest_batch_rows_sum') / Math.max(1, sum('ingest_batch_rows_count'))),
    meanFlushMs: round((1000 * sum('ingest_flush_duration_seconds_sum')) / Math.max(1, sum('ingest_flush_duration_seconds_count')), 1),
    insertErrors: sum('ingest_insert_errors_total'),
    rowsInserted: sum('ingest_rows_inserted_total'),
    messagesConsumed: sum('ingest_messages_consumed_total'),
    gcSeconds: round(sum('nodejs_gc_duration_seconds_sum'), 2),
  };
}

export interface DrainOptions {
  label: string;
  /** Names the worker's group, database, chDB directory and log. */
  id: string;
  topicPrefix: string;
  expected: number;
  runDir: string;
  concurrency?: number;
  /** Write a V8 CPU profile of the worker's main thread, ready → exact count, to this file. */
  cpuProfilePath?: string;
  /** Below this rate the drain counts as hung and fails (default 1,000 rows/s). */
  minRowsPerSec?: number;
  /** Extra worker environment (configuration under test, e.g. BATCH_MAX_ROWS). */
  env?: Record<string, string>;
  /** Checkout whose worker runs (default: this one). */
  root?: string;
}

export async function drain(opts: DrainOptions): Promise<DrainFigures> {
  const child = await WorkerChild.spawn({ id: opts.id, topicPrefix: opts.topicPrefix, runDir: opts.runDir, concurrency: opts.concurrency, env: opts.env, root: opts.root });
  try {
    if (opts.cpuProfilePath) await child.startProfile();
    const cpuAtReady = readThreadCpu(child.pid);
    const deadline = child.readyAt + 30_000 + (opts.expected / (opts.minRowsPerSec ?? 1_000)) * 1000;
    let firstAt = 0;
    let firstCount = 0;
    let counted = 0;
    const rssTimeline: DrainFigures['rssTimeline'] = [];
    for (;;) {
      counted = await child.count();
      const now = Date.now();
      if (counted >= ((rssTimeline.length + 1) * opts.expected) / 20 || counted >= opts.expected) rssTimeline.push({ rows: counted, rssMiB: Math.round(readStatusKb(child.pid, 'VmRSS') / 1024) });
      if (counted > 0 && firstAt === 0) {
        firstAt = now;
        firstCount = counted;
      }
      if (counted >= opts.expected) break;
      if (now > deadline) throw new Error(`drain ${opts.label}: ${counted} of ${opts.expected} rows after ${Math.round((now - child.readyAt) / 1000)} s; log ${child.logPath}`);
      await sleep(200);
    }
    const doneAt = Date.now();
    const threadCpu = readThreadCpu(child.pid, cpuAtReady);
    if (opts.cpuProfilePath) await child.stopProfile(opts.cpuProfilePath);
    const memory = await child.memory();
    const metrics = await workerMetrics(child);
    await sleep(1_000);
    const recount = await child.count();
    if (counted !== opts.expected || recount !== opts.expected) {
      throw new Error(`drain ${opts.label}: expected exactly ${opts.expected} rows, counted ${counted} then ${recount} (duplicates or losses)`);
    }
    const drainSeconds = (doneAt - child.readyAt) / 1000;
    return {
      label: opts.label,
      expected: opts.expected,
      counted: recount,
      exact: true,
      concurrency: opts.concurrency ?? 1,
      startupSeconds: round((child.readyAt - child.startedAt) / 1000, 2),
      drainSeconds: round(drainSeconds, 2),
      rowsPerSec: Math.round(opts.expected / drainSeconds),
      steadyRowsPerSec: doneAt > firstAt ? Math.round((opts.expected - firstCount) / ((doneAt - firstAt) / 1000)) : Math.round(opts.expected / drainSeconds),
      memory,
      threadCpu,
      cpuProfile: opts.cpuProfilePath,
      workerMetrics: metrics,
      rssTimeline,
    };
  } finally {
    const code = await child.stop();
    if (code !== 0 && code !== null) process.stderr.write(`bench: worker ${opts.id} exited with ${code}; log ${child.logPath}\n`);
  }
}
