import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './args.js';
import { BenchClickHouse } from './bench-clickhouse.js';
import { BROKERS, HostLoad, REDIS_URL, ROOT, createTopic, waitForQuietHost, deleteTopicsWithPrefix, type QuietWait, killChildren, machineInfo, topicRecordCount, versions, withTimeout } from './common.js';
import { COST_POOL_SIZE, costEventPool, costRecords, encodeCostPool, llmLogPool } from './data.js';
import { drain } from './drain-bench.js';
import { e2eLatency } from './e2e-latency.js';
import { kafkaClientComparison, kafkajsConsume } from './kafka-clients.js';
import { kafkaConsumerPerf, kafkaProducerPerf } from './kafka-perf.js';
import { nativeKafkaEngine } from './native-kafka-engine.js';
import { benchCostProducer, benchLlmProducer } from './producer-bench.js';
import { benchPythonProducer } from './python-producer-bench.js';
import { publicThreadCpu, summariseCpuProfile } from './profile.js';
import { missingFigures, printSummary, ratios, type Figures } from './report.js';
import { decodeLimit, sinkLimit } from './sink-limit.js';
import { transcodeLimit } from './avro-to-tsv.js';
import { decodeMessage } from '../consumers/decode-stage.js';
import { createRowEncoder } from '../consumers/row-encoder.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';

/**
 * `npm run bench` (full) / `npm run bench:quick` (CI smoke test, small sizes).
 * One invocation: seeded data, the real broker, Redis and embedded chDB; every step has a
 * timeout; the results go to bench/results/<ISO timestamp>.json and a summary is printed.
 * Exit 1 when a step failed, a count was not exact or a figure is missing.
 */
const { quick } = benchArgs('bench', `usage: npm run bench [-- --quick]   (npm run bench:quick is the same as --quick)
Measures the pipeline end to end on the real broker, Redis and embedded chDB (ClickHouse at
CLICKHOUSE_URL when set) in one invocation, and writes every figure to
bench/results/<time>.json; BENCHMARKS.md explains each step and the goals it reports.
  --quick   small sizes (about 1.5 minutes): the CI smoke test, which checks counts, not speed`, { quick: { type: 'boolean', default: false } });
const SIZES = quick
  ? { producerCost: 50_000, producerLlm: 1_000, kafkaClients: 50_000, drain: 50_000, partitions: 4, memoryTenX: 500_000, profileRows: 5_000, e2eSeconds: 5, e2eWarmupSeconds: 2, scaleOut: 20_000, scalePartitions: 8, scaleConcurrency: [1, 2, 4], llmPool: 500, pythonProducer: 10_000 }
  : { producerCost: 2_000_000, producerLlm: 20_000, kafkaClients: 1_000_000, drain: 2_000_000, partitions: 4, memoryTenX: 20_000_000, profileRows: 200_000, e2eSeconds: 30, e2eWarmupSeconds: 15, scaleOut: 1_000_000, scalePartitions: 8, scaleConcurrency: [1, 2, 4], llmPool: 2_000, pythonProducer: 300_000 };
const SEED = 20_251_123;
const WORKER_BATCH = { maxRows: 50_000, maxWaitMs: 1_000, insertConcurrency: 4 };

const startedAt = new Date();
const id = `bench${startedAt.getTime().toString(36)}`;
const runDir = mkdtempSync(join(tmpdir(), `${id}-`));
const figures: Figures = {};
const errors: { step: string; error: string }[] = [];
const steps: Record<string, { seconds: number; ok: boolean; hostCpuBusyPercent: number; loadavg1Start: number; loadavg1End: number; quietWait?: QuietWait }> = {};

/**
 * The throughput steps compared in the ratios (drain, transport and sink limits, native engine)
 * start on a quiet host: right after a large produce the broker and the page cache stay busy
 * for seconds, and whichever step came next paid for it. Full runs only (quick runs check
 * figures, not speed); the wait is recorded with the step and not counted in its time.
 */
const QUIET_BEFORE_MS = quick ? 0 : 60_000;
const settle = (): Promise<QuietWait | undefined> => (QUIET_BEFORE_MS > 0 ? waitForQuietHost(QUIET_BEFORE_MS) : Promise.resolve(undefined));

async function step<T>(name: string, timeoutMs: number, fn: () => Promise<T>, opts: { quiet?: boolean } = {}): Promise<T | undefined> {
  const quietWait = opts.quiet ? await settle() : undefined;
  const t0 = Date.now();
  const host = new HostLoad();
  const record = (ok: boolean) => (steps[name] = { seconds: (Date.now() - t0) / 1000, ok, ...host.finish(), ...(quietWait ? { quietWait } : {}) });
  process.stdout.write(`bench: ${name} …\n`);
  try {
    const out = await withTimeout(name, timeoutMs, fn);
    const r = record(true);
    process.stdout.write(`bench: ${name} done in ${r.seconds.toFixed(1)} s (host CPU ${r.hostCpuBusyPercent}% busy)\n`);
    return out;
  } catch (err) {
    record(false);
    const msg = String((err as Error)?.stack ?? err);
    errors.push({ step: name, error: msg });
    process.stderr.write(`bench: ${name} FAILED: ${msg}\n`);
    return undefined;
  }
}

/** Time budget of a step: fixed part + rows at a rate well below anything this box does. */
const budget = (rows: number, rowsPerSec: number, fixedMs = 60_000) => fixedMs + (rows / rowsPerSec) * 1000;

/** The code measured: HEAD and the files changed since (other engineers edit the pipeline meanwhile). */
function gitState() {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), subject: git('log', '-1', '--format=%s'), changedFiles: git('status', '--porcelain', '--untracked-files=no').split('\n').filter(Boolean) };
  } catch (err) {
    return { error: String(err) };
  }
}
const gitAtStart = gitState();

function ensureServices(): void {
  try {
    execFileSync('bash', [join(ROOT, 'scripts/services.sh'), 'status'], { stdio: 'ignore' });
  } catch {
    execFileSync('bash', [join(ROOT, 'scripts/services.sh'), 'start'], { stdio: 'inherit', timeout: 180_000 });
  }
}

let quietHostAtStart: QuietWait | undefined;

async function main(): Promise<number> {
  ensureServices();
  // Other work on the box skews every figure: a full run first waits (a while) for a quiet host.
  if (!quick) {
    process.stdout.write('bench: waiting for a quiet host (< 30% CPU busy over 5 s, up to 5 min) …\n');
    quietHostAtStart = await waitForQuietHost(300_000);
  }
  const topic = (name: string) => `${id}.${name}.`;
  const prefixes = { drain: topic('drain'), tenx: topic('tenx'), base: topic('base'), llm: topic('llm'), scale: topic('scale'), e2e: topic('e2e'), e2eAlt: topic('e2ealt'), alt: topic('alt'), py: topic('py') };
  const pool = costEventPool(SEED, COST_POOL_SIZE);
  const encodedPool = encodeCostPool(pool);
  const records = costRecords(pool);
  const llmPool = llmLogPool(SEED, SIZES.llmPool);
  for (const [name, prefix] of Object.entries(prefixes)) {
    const partitions = name === 'scale' ? SIZES.scalePartitions : SIZES.partitions;
    await createTopic(`${prefix}${name === 'llm' ? 'llm_logs' : 'cost_metrics'}`, partitions);
  }
  await createTopic(`${prefixes.alt}llm_logs`, SIZES.partitions);

  // 1. Producer SDK. The cost-event run is also the pre-fill of the drain topic.
  figures.producerCost = await step('producer SDK, cost events (pre-fills the drain topic)', budget(SIZES.producerCost, 5_000), () =>
    benchCostProducer({ topicPrefix: prefixes.drain, total: SIZES.producerCost, pool }),
  );
  const inDrainTopic = await topicRecordCount(`${prefixes.drain}cost_metrics`);
  if (inDrainTopic !== SIZES.drain) errors.push({ step: 'pre-fill', error: `drain topic holds ${inDrainTopic} records, expected ${SIZES.drain}` });
  figures.producerLlm = await step('producer SDK, LLM-log events', budget(SIZES.producerLlm, 200), () => benchLlmProducer({ topicPrefix: prefixes.llm, total: SIZES.producerLlm, pool: llmPool }));
  // The same two runs with the SDK's other Kafka client (ProducerOptions.client 'kafkajs').
  figures.producerCostKafkajs = await step('producer SDK with client kafkajs, cost events', budget(SIZES.producerCost, 5_000), () =>
    benchCostProducer({ topicPrefix: prefixes.alt, total: SIZES.producerCost, pool, client: 'kafkajs' }),
  );
  figures.producerLlmKafkajs = await step('producer SDK with client kafkajs, LLM-log events', budget(SIZES.producerLlm, 200), () =>
    benchLlmProducer({ topicPrefix: prefixes.alt, total: SIZES.producerLlm, pool: llmPool, client: 'kafkajs' }),
  );
  // The Python SDK (producers/python), the same cost events, from its own process.
  figures.producerCostPython = await step('Python SDK (producers/python), cost events', budget(SIZES.pythonProducer, 2_000), () =>
    benchPythonProducer({ topicPrefix: prefixes.py, total: SIZES.pythonProducer, pool, timeoutMs: budget(SIZES.pythonProducer, 2_000) - 5_000, partitions: SIZES.partitions }),
  );
  await step('pre-fill profile and scale-out topics (not measured)', budget(SIZES.profileRows + SIZES.scaleOut, 5_000), async () => {
    await benchCostProducer({ topicPrefix: prefixes.base, total: SIZES.profileRows, pool, client: 'platformatic' });
    await benchCostProducer({ topicPrefix: prefixes.scale, total: SIZES.scaleOut, pool, client: 'platformatic' });
  });

  // 2. Drain. It is also the memory base: peak RSS and heap with a backlog of SIZES.drain.
  const drained = await step('drain (memory base)', budget(SIZES.drain, 2_000), () => drain({ label: 'drain', id: `${id}_drain`, topicPrefix: prefixes.drain, expected: SIZES.drain, runDir, minRowsPerSec: 2_000 }), { quiet: true });
  if (drained) figures.drain = { ...drained, threadCpu: publicThreadCpu(drained.threadCpu) };
  // 4. Memory with a backlog ten times larger: it must stay flat. The pre-fill uses the faster
  // producer client (not measured here) to keep the run short.
  await step('pre-fill the 10x backlog (not measured)', budget(SIZES.memoryTenX, 5_000), () => benchCostProducer({ topicPrefix: prefixes.tenx, total: SIZES.memoryTenX, pool, client: 'platformatic' }));
  const tenX = await step('drain, 10x backlog (memory)', budget(SIZES.memoryTenX, 2_000), () => drain({ label: 'memory-10x', id: `${id}_tenx`, topicPrefix: prefixes.tenx, expected: SIZES.memoryTenX, runDir, minRowsPerSec: 2_000 }));
  if (tenX) figures.memoryTenX = { ...tenX, threadCpu: publicThreadCpu(tenX.threadCpu) };

  // 7. CPU profile of the worker's hot path: a smaller backlog of its own (group, database),
  // the worker's main thread profiled from ready to exact count.
  const profiled = await step('drain with CPU profile', budget(SIZES.profileRows, 1_000), () =>
    drain({ label: 'cpu-profile', id: `${id}_prof`, topicPrefix: prefixes.base, expected: SIZES.profileRows, runDir, cpuProfilePath: join(runDir, 'worker.cpuprofile') }),
  );
  if (profiled) {
    figures.profileDrain = { ...profiled, threadCpu: publicThreadCpu(profiled.threadCpu) };
    figures.profile = summariseCpuProfile(profiled.cpuProfile!);
  }

  // 5. Limits: transport (Kafka's tools, kafkajs alone), decode, sink.
  figures.kafkaConsumerPerf = await step('Kafka ConsumerPerformance on the drain topic', budget(SIZES.drain, 20_000), () =>
    kafkaConsumerPerf({ topic: `${prefixes.drain}cost_metrics`, records: SIZES.drain, group: `${id}-consumer-perf`, timeoutMs: budget(SIZES.drain, 20_000) - 5_000 }),
    { quiet: true },
  );
  figures.kafkajsConsumePerf = await step('kafkajs consume-only on the drain topic', budget(SIZES.drain, 5_000), () =>
    kafkajsConsume({ topic: `${prefixes.drain}cost_metrics`, group: `${id}-kafkajs-perf`, total: SIZES.drain, timeoutMs: budget(SIZES.drain, 5_000) - 5_000 }),
    { quiet: true },
  );
  const recordSize = Math.round(figures.producerCost?.avgEventBytes ?? encodedPool[0]!.length);
  figures.kafkaProducerPerf = await step('Kafka ProducerPerformance', budget(SIZES.producerCost, 20_000), async () => {
    const perfTopic = `${id}.perf.records`;
    await createTopic(perfTopic, SIZES.partitions);
    return kafkaProducerPerf({ topic: perfTopic, records: SIZES.producerCost, recordSize, timeoutMs: budget(SIZES.producerCost, 20_000) - 5_000 });
  }, { quiet: true });
  // The Kafka client behind the SDK and the worker: kafkajs and the two maintained alternatives,
  // produce-only and consume-only, same records (the first use installs the alternatives into
  // .cache/bench-clients: about 2.5 min, mostly compiling librdkafka).
  figures.kafkaClients = await step('Kafka clients: kafkajs, platformatic, confluent (produce-only, consume-only)', 420_000 + 6 * budget(SIZES.kafkaClients, 20_000, 0), () =>
    kafkaClientComparison({ id, encodedPool, keys: pool.map((e) => e.customer_id), total: SIZES.kafkaClients, partitions: SIZES.partitions }),
  );
  figures.decode = await step('decode limit', budget(SIZES.drain, 20_000), async () => decodeLimit(encodedPool, SIZES.drain));
  // The worker's decode path (straight into the insert body, no object per row) against the
  // object path it replaced (still its fallback), same messages, same 50k-row batches; the
  // bodies must be identical.
  figures.transcode = await step('messages → insert body: direct Avro → TSV (worker) vs object path', budget(SIZES.drain, 20_000), async () => {
    const lookup = new SchemaLookup([costMetrics]);
    const encoder = createRowEncoder(costMetrics);
    return transcodeLimit({ type: costMetrics, encodedPool, total: SIZES.drain, batchRows: WORKER_BATCH.maxRows, decode: (v) => decodeMessage(lookup, costMetrics, v), encodeRows: (b) => encoder.encode(b) });
  });
  const ch = BenchClickHouse.open(join(runDir, 'chdb-bench'));
  try {
    figures.sink = await step('sink limit', budget(SIZES.drain, 3_000), () =>
      sinkLimit({ ch, id, encodedPool, total: SIZES.drain, batchRows: WORKER_BATCH.maxRows, concurrency: WORKER_BATCH.insertConcurrency }),
      { quiet: true },
    );
    // 6. Peer: the native Kafka engine, same events as JSON.
    figures.nativeEngine = await step('native Kafka engine + MV', budget(SIZES.drain, 2_000, 120_000), () =>
      nativeKafkaEngine({ ch, id, records, total: SIZES.drain, partitions: SIZES.partitions, minRowsPerSec: 2_000, settle }),
    );
  } finally {
    await ch.close().catch(() => undefined);
  }

  // 3. End-to-end latency at half the measured drain rate.
  const rate = Math.max(100, Math.round((figures.drain?.rowsPerSec ?? 10_000) / 2));
  figures.e2e = await step('end-to-end latency at half the drain rate', (SIZES.e2eSeconds + SIZES.e2eWarmupSeconds + 120) * 1000, () =>
    e2eLatency({ id: `${id}_e2e`, topicPrefix: prefixes.e2e, runDir, ratePerSec: rate, seconds: SIZES.e2eSeconds, pool, poolSeed: SEED, warmupSeconds: SIZES.e2eWarmupSeconds }),
  );
  // The same with the SDK's other client: the producer's share of the latency differs.
  figures.e2eKafkajs = await step('end-to-end latency at half the drain rate, producer client kafkajs', (SIZES.e2eSeconds + SIZES.e2eWarmupSeconds + 120) * 1000, () =>
    e2eLatency({ id: `${id}_e2ep`, topicPrefix: prefixes.e2eAlt, runDir, ratePerSec: rate, seconds: SIZES.e2eSeconds, pool, poolSeed: SEED, warmupSeconds: SIZES.e2eWarmupSeconds, producerClient: 'kafkajs' }),
  );

  // Scale-out: 1, 2, 4 members in one worker process on the 8-partition topic.
  const scale = [];
  for (const concurrency of SIZES.scaleConcurrency) {
    const r = await step(`scale-out, ${concurrency} member(s)`, budget(SIZES.scaleOut, 2_000), () =>
      drain({ label: `scale-${concurrency}`, id: `${id}_scale${concurrency}`, topicPrefix: prefixes.scale, expected: SIZES.scaleOut, runDir, concurrency, minRowsPerSec: 2_000 }),
    );
    if (r) scale.push({ ...r, threadCpu: publicThreadCpu(r.threadCpu) });
  }
  figures.scaleOut = scale;
  return 0;
}

async function finish(): Promise<number> {
  killChildren();
  const missing = missingFigures(figures);
  const result = {
    runAt: startedAt.toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: machineInfo(),
    git: { atStart: gitAtStart, atEnd: gitState() },
    versions: await versions().catch((err) => ({ error: String(err) })),
    parameters: {
      sizes: SIZES,
      seed: SEED,
      costPoolSize: COST_POOL_SIZE,
      brokers: BROKERS,
      redis: REDIS_URL,
      clickhouse: process.env.CLICKHOUSE_URL ? 'CLICKHOUSE_URL' : 'embedded chDB (worker: child process; sink/native: bench process)',
      worker: { ...WORKER_BATCH, note: 'defaults of lib/config.ts: batch.maxRows, batch.maxWaitMs, insert.concurrency; consumer: kafkajs maxBytesPerPartition 4 MiB' },
      producer: { lingerMs: 5, maxBatchBytes: 1048576, compression: 'gzip', acks: 'all', idempotent: true },
      runDir,
    },
    figures,
    ratios: ratios(figures),
    steps,
    quietHostAtStart,
    missingFigures: missing,
    errors,
    totalSeconds: (Date.now() - startedAt.getTime()) / 1000,
  };
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${startedAt.toISOString()}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  printSummary(figures, { quick });
  await deleteTopicsWithPrefix(`${id}.`).catch((err) => process.stderr.write(`bench: topic cleanup failed: ${String(err)}\n`));
  if (errors.length === 0) rmSync(runDir, { recursive: true, force: true });
  else process.stderr.write(`bench: kept ${runDir} (worker logs) for the failed steps\n`);
  process.stdout.write(`bench: results in ${file} (${result.totalSeconds.toFixed(0)} s)\n`);
  if (missing.length > 0) process.stderr.write(`bench: missing figures: ${missing.join(', ')}\n`);
  // CI shows the tail of the output: each failure again here, its first lines.
  for (const e of errors) process.stderr.write(`bench: FAILED ${e.step}: ${e.error.split('\n').slice(0, 3).join(' | ').slice(0, 600)}\n`);
  return errors.length === 0 && missing.length === 0 ? 0 : 1;
}

process.on('SIGINT', () => {
  killChildren();
  process.exit(130);
});
process.on('exit', killChildren);

let code = 1;
try {
  code = await main();
} catch (err) {
  errors.push({ step: 'main', error: String((err as Error)?.stack ?? err) });
} finally {
  code = Math.max(code, await finish());
}
process.exit(code);
