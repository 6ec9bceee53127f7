import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { IngestProducer, type CostMetricInput, type ProducerClient } from '@kafka-clickhouse-ingest/producer';
import { BROKERS, ROOT, children, distribution, histogramQuantile, parsePrometheus, round, sleep, waitUntil, type Distribution } from './common.js';
import { rng, uuidFrom } from '../test/fixtures/rows.js';
import { WorkerChild } from './worker-child.js';
import type { LoadParams, LoadResult } from './load-generator.js';

/**
 * End-to-end latency at a steady rate (about half the measured drain rate) with a running
 * worker child (default batching: BATCH_MAX_WAIT_MS 1000). The load comes through the producer
 * SDK from a process of its own (load-generator.ts); its events carry their emit time as
 * timestamp. The load runs `warmupSeconds` before the probes start: a freshly started worker's
 * code is not yet optimised by the JIT, and at this rate it falls a few seconds behind and
 * catches up over the next 10–15 s; the probes measure the steady state after that (the worker
 * histogram below covers every row, warm-up included). Two measurements:
 * - probe: every `probeEveryMs` a marker event (its own probe customer, unique instance_id) is
 *   emitted alone by the bench process's own SDK instance (same client and settings), into the
 *   same topic, so it shares the load's partitions, batches and inserts; the bench polls the worker's table every `pollMs`
 *   (`SELECT instance_id … WHERE customer_id IN (probe customers)`, a primary-key range) and
 *   records when each marker became queryable. Emit → queryable, resolution ≈ pollMs + one
 *   probe query (recorded: `probeQuery`; the query shares the worker's engine with its inserts).
 * - histogram: the worker's ingest_end_to_end_latency_seconds (event timestamp → insert
 *   acknowledged, every row), quantiles interpolated inside its buckets as Prometheus'
 *   histogram_quantile does, so only as precise as the bucket bounds (…0.75, 1, 1.25, 1.5, 2, 2.5 s…).
 * The probe is split in two: emit → acknowledged by Kafka (the producer SDK's share, `probeAck`)
 * and acknowledged → queryable (the worker's share, `probeAfterAck`).
 */
export interface E2eFigures {
  targetEventsPerSec: number;
  achievedEventsPerSec: number;
  /** Seconds of load (the whole load, warm-up included). */
  seconds: number;
  /** Seconds of load before the first probe. */
  warmupSeconds: number;
  events: number;
  counted: number;
  batchMaxWaitMs: number;
  producerClient: ProducerClient;
  probe: Distribution & { pollMs: number; unit: 'ms' };
  /**
   * Duration of each probe query (IPC to the worker, the query on its engine, the reply): a probe
   * is seen at the end of the first query that started after its row became queryable, so the
   * probe's resolution is about pollMs + this, not pollMs alone.
   */
  probeQuery: Distribution;
  probeAck: Distribution;
  /** The load generator's emit → acknowledged per call (the SDK under the full load, in its own process). */
  loadCallAck: Distribution;
  probeAfterAck: Distribution;
  histogram: { count: number; meanMs: number; p50Ms: number; p99Ms: number; maxBucketLeMs: number; note: string };
  /** The worker's inserts during the step: how many, rows per insert, and insert time (ingest_flush_duration_seconds, bucket-interpolated). */
  inserts: { count: number; meanRows: number; meanMs: number; p50Ms: number; p99Ms: number };
  /** The worker's event loop over the step (prom-client defaults): delay p99 and max, and time in GC. */
  worker: { eventLoopDelayP99Ms: number; eventLoopDelayMaxMs: number; gcSeconds: number };
}

export async function e2eLatency(opts: { id: string; topicPrefix: string; runDir: string; ratePerSec: number; seconds: number; pool: readonly CostMetricInput[]; poolSeed: number; warmupSeconds?: number; probeEveryMs?: number; pollMs?: number; producerClient?: ProducerClient; env?: Record<string, string> }): Promise<E2eFigures> {
  const probeEveryMs = opts.probeEveryMs ?? 200;
  const pollMs = opts.pollMs ?? 25;
  const next = rng(4242);
  const probeCustomers = Array.from({ length: 8 }, () => uuidFrom(next));
  const worker = await WorkerChild.spawn({ id: opts.id, topicPrefix: opts.topicPrefix, runDir: opts.runDir, env: opts.env });
  // The probe's own SDK instance, with the load's settings; the load runs in its own process.
  const producer = await IngestProducer.connect({ brokers: BROKERS, topicPrefix: opts.topicPrefix, lingerMs: 5, compression: 'gzip', ...(opts.producerClient ? { client: opts.producerClient } : {}) });
  // The client the SDK chose (its default unless one was asked for); the load uses the same.
  const producerClient = producer.events.client;
  let load: LoadGenerator | undefined;
  try {
    const sentAt = new Map<string, number>();
    const seenAt = new Map<string, number>();
    const queryMs: number[] = [];
    const ackedAt = new Map<string, number>();
    const pending: Promise<void>[] = [];
    let failure: unknown;
    const track = (p: Promise<void>) => pending.push(p.catch((err) => void (failure ??= err)));

    let polling = true;
    const probeQuery = `SELECT instance_id FROM cost_metrics_ts WHERE customer_id IN (${probeCustomers.map((c) => `'${c}'`).join(',')})`;
    const poller = (async () => {
      while (polling) {
        const queryStarted = Date.now();
        const rows = await worker.query<{ instance_id: string }>(probeQuery);
        const now = Date.now();
        queryMs.push(now - queryStarted);
        for (const r of rows) if (!seenAt.has(r.instance_id)) seenAt.set(r.instance_id, now);
        await sleep(pollMs);
      }
    })();

    const warmupSeconds = opts.warmupSeconds ?? 0;
    load = await LoadGenerator.start({ topicPrefix: opts.topicPrefix, ratePerSec: opts.ratePerSec, seconds: warmupSeconds + opts.seconds, client: producerClient, poolSeed: opts.poolSeed });
    await sleep(warmupSeconds * 1000);
    const started = Date.now();
    let probes = 0;
    for (let nextProbe = started; !load.finished; nextProbe += probeEveryMs) {
      const instanceId = `probe-${probes}`;
      const marker = { ...opts.pool[probes % opts.pool.length]!, customer_id: probeCustomers[probes % probeCustomers.length]!, instance_id: instanceId, timestamp: Date.now() };
      sentAt.set(instanceId, marker.timestamp);
      track(producer.emitCostMetrics([marker]).then(() => void ackedAt.set(instanceId, Date.now())));
      probes++;
      if (failure) throw failure;
      await sleep(Math.max(0, nextProbe + probeEveryMs - Date.now()));
    }
    const loadResult = await load.result;
    const sent = loadResult.sent;
    await Promise.all(pending);
    if (failure) throw failure;
    const total = sent + probes;
    await waitUntil('every probe to be queryable', async () => (seenAt.size >= probes ? true : undefined), 30_000, 50);
    polling = false;
    await poller;
    const counted = await waitUntil('the e2e table to hold every event', async () => {
      const n = await worker.count();
      return n >= total ? n : undefined;
    }, 30_000, 200);
    if (counted !== total) throw new Error(`e2e: expected exactly ${total} rows, counted ${counted}`);

    const latencies = [...sentAt].map(([id, t]) => seenAt.get(id)! - t);
    const ackLatencies = [...sentAt].map(([id, t]) => ackedAt.get(id)! - t);
    const afterAck = [...sentAt].map(([id]) => seenAt.get(id)! - ackedAt.get(id)!);
    const all = parsePrometheus(await worker.metricsText());
    const samples = all.filter((s) => s.labels.table === 'cost_metrics_ts');
    const single = (name: string) => all.find((s) => s.name === name)?.value ?? NaN;
    const buckets = samples.filter((s) => s.name === 'ingest_end_to_end_latency_seconds_bucket').map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }));
    const hCount = samples.find((s) => s.name === 'ingest_end_to_end_latency_seconds_count')?.value ?? 0;
    const hSum = samples.find((s) => s.name === 'ingest_end_to_end_latency_seconds_sum')?.value ?? 0;
    const histogramOf = (name: string) => {
      const of = samples.filter((s) => s.name.startsWith(name));
      const bucketsOf = of.filter((s) => s.name === `${name}_bucket`).map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }));
      return { buckets: bucketsOf, count: of.find((s) => s.name === `${name}_count`)?.value ?? 0, sum: of.find((s) => s.name === `${name}_sum`)?.value ?? 0 };
    };
    const flush = histogramOf('ingest_flush_duration_seconds');
    const batchRows = histogramOf('ingest_batch_rows');
    const topBucket = buckets.filter((b) => b.count > 0).sort((a, b) => a.le - b.le).find((b) => b.count >= hCount);
    return {
      targetEventsPerSec: Math.round(opts.ratePerSec),
      achievedEventsPerSec: loadResult.achievedEventsPerSec,
      seconds: round(loadResult.seconds, 1),
      warmupSeconds,
      loadCallAck: loadResult.callAck,
      events: total,
      counted,
      batchMaxWaitMs: 1000,
      producerClient,
      probe: { ...distribution(latencies), pollMs, unit: 'ms' },
      probeQuery: distribution(queryMs),
      probeAck: distribution(ackLatencies),
      probeAfterAck: distribution(afterAck),
      histogram: {
        count: hCount,
        meanMs: round((hSum / Math.max(1, hCount)) * 1000, 1),
        p50Ms: round(histogramQuantile(buckets, 0.5) * 1000, 1),
        p99Ms: round(histogramQuantile(buckets, 0.99) * 1000, 1),
        maxBucketLeMs: topBucket ? topBucket.le * 1000 : NaN,
        note: 'event timestamp (= emit time) → insert acknowledged, every row; quantiles interpolated within buckets',
      },
      inserts: {
        count: flush.count,
        meanRows: Math.round(batchRows.sum / Math.max(1, batchRows.count)),
        meanMs: round((flush.sum / Math.max(1, flush.count)) * 1000, 1),
        p50Ms: round(histogramQuantile(flush.buckets, 0.5) * 1000, 1),
        p99Ms: round(histogramQuantile(flush.buckets, 0.99) * 1000, 1),
      },
      worker: {
        eventLoopDelayP99Ms: round(single('nodejs_eventloop_lag_p99_seconds') * 1000, 1),
        eventLoopDelayMaxMs: round(single('nodejs_eventloop_lag_max_seconds') * 1000, 1),
        gcSeconds: round(all.filter((s) => s.name === 'nodejs_gc_duration_seconds_sum').reduce((n, s) => n + s.value, 0), 2),
      },
    };
  } finally {
    load?.kill();
    await producer.close().catch(() => undefined);
    await worker.stop();
  }
}

/** bench/load-generator.ts in a child process: started once it is connected, `result` when done. */
class LoadGenerator {
  finished = false;
  private constructor(
    private readonly proc: ChildProcess,
    readonly result: Promise<LoadResult>,
  ) {
    result.then(
      () => void (this.finished = true),
      () => void (this.finished = true),
    );
  }

  static async start(params: LoadParams): Promise<LoadGenerator> {
    const proc = fork(join(ROOT, 'bench/load-generator.ts'), [JSON.stringify(params)], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    let onReady!: () => void;
    const ready = new Promise<void>((r) => (onReady = r));
    const result = new Promise<LoadResult>((resolve, reject) => {
      proc.on('message', (msg: { type: string; result?: LoadResult; error?: string }) => {
        if (msg.type === 'ready') onReady();
        else if (msg.type === 'done') resolve(msg.result!);
        else if (msg.type === 'error') reject(new Error(`load generator: ${msg.error}`));
      });
      proc.once('exit', (code) => reject(new Error(`load generator exited with ${code} before reporting`)));
    });
    await Promise.race([ready, result]);
    return new LoadGenerator(proc, result);
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
