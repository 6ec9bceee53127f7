import type { DrainFigures } from './drain-bench.js';
import type { E2eFigures } from './e2e-latency.js';
import type { ConsumeFigures, KafkaClientComparison } from './kafka-clients.js';
import type { TranscodeFigures } from './avro-to-tsv.js';
import type { KafkaConsumerPerf, KafkaProducerPerf } from './kafka-perf.js';
import type { NativeEngineFigures } from './native-kafka-engine.js';
import type { ProducerFigures } from './producer-bench.js';
import type { PythonProducerFigures } from './python-producer-bench.js';
import type { ProfileSummary } from './profile.js';
import type { SinkFigures, decodeLimit } from './sink-limit.js';
import { rssFlat } from './memory.js';
import { round } from './common.js';

/** Everything one run measured; written as bench/results/<ISO timestamp>.json. */
export interface Figures {
  producerCost?: ProducerFigures;
  producerLlm?: ProducerFigures;
  /** The same producer runs with ProducerOptions.client = 'kafkajs' (the default client is 'platformatic'). */
  producerCostKafkajs?: ProducerFigures;
  producerLlmKafkajs?: ProducerFigures;
  /** The Python SDK (producers/python, bench/python-producer.py), the same cost events. */
  producerCostPython?: PythonProducerFigures;
  drain?: DrainFigures;
  /** The drain again with a backlog ten times larger (the drain itself is the memory base). */
  memoryTenX?: DrainFigures;
  profileDrain?: DrainFigures;
  profile?: ProfileSummary;
  kafkaProducerPerf?: KafkaProducerPerf;
  kafkaConsumerPerf?: KafkaConsumerPerf;
  kafkajsConsumePerf?: ConsumeFigures;
  kafkaClients?: KafkaClientComparison;
  sink?: SinkFigures;
  decode?: ReturnType<typeof decodeLimit>;
  transcode?: TranscodeFigures;
  nativeEngine?: NativeEngineFigures;
  e2e?: E2eFigures;
  e2eKafkajs?: E2eFigures;
  scaleOut?: DrainFigures[];
}

/**
 * The ratios and the targets, with their definitions:
 * - transport limit: Kafka ConsumerPerformance reading the prefilled drain topic (fetch rate,
 *   group join excluded). The drain only reads Kafka, so the producer side is not its limit.
 * - sink limit: the same rows, decoded, inserted into the same engine and layout without Kafka
 *   through the worker's row encoder and inserter (as an application holding the rows would).
 *   The engine alone (bodies serialised beforehand) is reported beside it as a stricter bound.
 */
export function ratios(f: Figures) {
  const drain = f.drain?.rowsPerSec;
  const transport = f.kafkaConsumerPerf?.fetchRecordsPerSec;
  const sink = f.sink?.workerInserter.rowsPerSec;
  const lower = transport !== undefined && sink !== undefined ? Math.min(transport, sink) : undefined;
  const r = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? round(a / b, 3) : null);
  const memory = f.drain && f.memoryTenX ? rssFlat(f.drain.memory, f.memoryTenX.memory) : null;
  const e2eP99 = f.e2e?.probe.p99;
  const e2eP99Kafkajs = f.e2eKafkajs?.probe.p99;
  const e2eBound = (f.e2e?.batchMaxWaitMs ?? 1000) + 500;
  return {
    definitions: {
      transportLimit: 'Kafka ConsumerPerformance records/s on the prefilled drain topic (fetch rate, excludes group join)',
      sinkLimit: "decoded rows in the worker's body format through the worker's client and inserter (clickHouseInserter) into the same engine and layout, same batch size and insert concurrency, no Kafka",
      sinkEngineOnly: 'raw insert of bodies serialised beforehand (engine only; TabSeparated for the ratio, RowBinary and JSONEachRow beside it), same batches and concurrency',
      drain: 'one worker child process, backlog → exact table count, rows/s from worker ready',
      e2eBoundMs: 'BATCH_MAX_WAIT_MS + 500',
    },
    drainOverTransport: r(drain, transport),
    drainOverSink: r(drain, sink),
    drainOverSinkEngineOnly: r(drain, f.sink?.rawTabSeparated?.rowsPerSec),
    drainOverLowerLimit: r(drain, lower),
    drainOverKafkajsConsumeOnly: r(drain, f.kafkajsConsumePerf?.recordsPerSec),
    drainOverNativeEngine: r(drain, f.nativeEngine?.rowsPerSec),
    /** The embedded engine alone per format (bodies made beforehand), over TabSeparated's. */
    engineOnlyRowsPerSec: {
      tabSeparated: f.sink?.rawTabSeparated?.rowsPerSec ?? null,
      rowBinary: f.sink?.rawRowBinary?.rowsPerSec ?? null,
      jsonEachRow: f.sink?.rawJsonEachRow?.rowsPerSec ?? null,
    },
    engineOnlyRowBinaryOverTabSeparated: r(f.sink?.rawRowBinary?.rowsPerSec, f.sink?.rawTabSeparated?.rowsPerSec),
    engineOnlyJsonEachRowOverTabSeparated: r(f.sink?.rawJsonEachRow?.rowsPerSec, f.sink?.rawTabSeparated?.rowsPerSec),
    producerSdkOverKafkaPerfProducer: r(f.producerCost?.eventsPerSec, f.kafkaProducerPerf?.recordsPerSec),
    producerSdkKafkajsOverKafkaPerfProducer: r(f.producerCostKafkajs?.eventsPerSec, f.kafkaProducerPerf?.recordsPerSec),
    pythonSdkOverKafkaPerfProducer: r(f.producerCostPython?.eventsPerSec, f.kafkaProducerPerf?.recordsPerSec),
    pythonSdkOverTsSdk: r(f.producerCostPython?.eventsPerSec, f.producerCost?.eventsPerSec),
    pythonSdkOverConfluentSameBytes: r(f.producerCostPython?.eventsPerSec, f.producerCostPython?.confluentSameBytes?.eventsPerSec),
    rssTenXOverBase: memory,
    /** The targets of the performance work: met (true), not met (false), or not measured (null). */
    goals: {
      drainAtLeast1_5xNativeEngine: drain !== undefined && f.nativeEngine ? drain >= 1.5 * f.nativeEngine.rowsPerSec : null,
      drainAtLeast0_8xSinkLimit: drain !== undefined && sink !== undefined ? drain >= 0.8 * sink : null,
      producerSdkAtLeast0_5xKafkaPerf: f.producerCost && f.kafkaProducerPerf ? f.producerCost.eventsPerSec >= 0.5 * f.kafkaProducerPerf.recordsPerSec : null,
      pythonSdkAtLeast0_5xConfluentSameBytes: f.producerCostPython?.confluentSameBytes ? f.producerCostPython.eventsPerSec >= 0.5 * f.producerCostPython.confluentSameBytes.eventsPerSec : null,
    },
    targets: {
      drainAtLeast70PctOfLowerLimit: lower !== undefined && drain !== undefined ? drain >= 0.7 * lower : null,
      drainAheadOfNativeEngine: drain !== undefined && f.nativeEngine ? drain > f.nativeEngine.rowsPerSec : null,
      producerSdkAtLeast50PctOfKafkaPerf: f.producerCost && f.kafkaProducerPerf ? f.producerCost.eventsPerSec >= 0.5 * f.kafkaProducerPerf.recordsPerSec : null,
      producerSdkKafkajsAtLeast50PctOfKafkaPerf: f.producerCostKafkajs && f.kafkaProducerPerf ? f.producerCostKafkajs.eventsPerSec >= 0.5 * f.kafkaProducerPerf.recordsPerSec : null,
      e2eP99WithinFlushWindowPlus500ms: e2eP99 !== undefined ? e2eP99 <= e2eBound : null,
      e2eP99WithinFlushWindowPlus500msProducerKafkajs: e2eP99Kafkajs !== undefined ? e2eP99Kafkajs <= e2eBound : null,
      workerRssFlatUnderTenXBacklog: memory ? memory.flat : null,
    },
  };
}

const MB = 1024 * 1024;
const n = (x: number | undefined | null, digits = 0) => (x === undefined || x === null || Number.isNaN(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits }));

/**
 * The summary table. `quick`: a smoke run's sizes are too small for a speed or memory ratio to
 * mean anything (start-up dominates), so its goal and target lines print the ratio but no verdict.
 */
export function summaryRows(f: Figures, opts: { quick?: boolean } = {}): [string, string, string][] {
  const rows: [string, string, string][] = [];
  const add = (name: string, value: string, note = '') => rows.push([name, value, note]);
  const p = f.producerCost;
  if (p) add(`Producer SDK (default client ${p.producerOptions.client}), cost events`, `${n(p.eventsPerSec)} ev/s, ${n(p.avroMBPerSec, 2)} MB/s`, `${n(p.events)} ev, ${p.eventsPerCall}/call, ${p.avgEventBytes} B Avro, CPU ${p.cpuSeconds} s; per call p50 ${n(p.latencyMsPerCall.p50, 1)} ms p99 ${n(p.latencyMsPerCall.p99, 1)} ms`);
  const pc = f.producerCostKafkajs;
  if (pc) add('Producer SDK (kafkajs), cost events', `${n(pc.eventsPerSec)} ev/s, ${n(pc.avroMBPerSec, 2)} MB/s`, `CPU ${pc.cpuSeconds} s; per call p50 ${n(pc.latencyMsPerCall.p50, 1)} ms p99 ${n(pc.latencyMsPerCall.p99, 1)} ms`);
  const pl = f.producerLlmKafkajs;
  if (pl) add('Producer SDK (kafkajs), LLM logs', `${n(pl.eventsPerSec)} ev/s, ${n(pl.avroMBPerSec, 2)} MB/s`, `per event p50 ${n(pl.latencyMsPerCall.p50, 1)} ms p99 ${n(pl.latencyMsPerCall.p99, 1)} ms`);
  const py = f.producerCostPython;
  if (py) add('Python SDK, cost events', `${n(py.eventsPerSec)} ev/s`, `${n(py.events)} ev, ${py.eventsPerCall}/call, Python ${py.python} + ${py.avroBackend} (${py.interpreterNote}); validate + encode alone ${n(py.validateEncodeOnlyEventsPerSec)} ev/s; CPU ${py.cpuSeconds} s`);
  if (py?.confluentSameBytes) add("confluent-kafka alone, the Python SDK's bytes", `${n(py.confluentSameBytes.eventsPerSec)} ev/s`, `same keys and Avro bytes (encoded beforehand), the SDK's librdkafka settings; CPU ${py.confluentSameBytes.cpuSeconds} s`);
  const l = f.producerLlm;
  if (l) add('Producer SDK, LLM logs', `${n(l.eventsPerSec)} ev/s, ${n(l.avroMBPerSec, 2)} MB/s`, `${n(l.events)} ev, 1/call, ${n(l.avgEventBytes)} B Avro; per event p50 ${n(l.latencyMsPerCall.p50, 1)} ms p99 ${n(l.latencyMsPerCall.p99, 1)} ms`);
  const d = f.drain;
  if (d) {
    add('Drain, 1 worker', `${n(d.rowsPerSec)} rows/s`, `${n(d.expected)} rows exact in ${d.drainSeconds} s (steady ${n(d.steadyRowsPerSec)}); startup ${d.startupSeconds} s`);
    const m = d.workerMetrics;
    add('Drain, worker internals', `batch ${n(m.meanBatchRows)} rows, insert ${n(m.meanFlushMs, 1)} ms`, `flushes ${JSON.stringify(m.flushesByReason)}; GC ${m.gcSeconds} s; CPU ${d.threadCpu.totalSeconds} s (JS main ${d.threadCpu.mainThreadSeconds} s)`);
  }
  for (const e of [f.e2e, f.e2eKafkajs]) {
    if (!e) continue;
    const who = ` (producer ${e.producerClient})`;
    add(`E2E probe (emit → queryable)${who}`, `p50 ${n(e.probe.p50)} ms, p99 ${n(e.probe.p99)} ms, max ${n(e.probe.max)} ms`, `${n(e.achievedEventsPerSec)} ev/s for ${e.seconds} s (probes after ${n(e.warmupSeconds)} s of warm-up), ${e.probe.count} probes, poll ${e.probe.pollMs} ms; load generator emit → ack per call p50 ${n(e.loadCallAck?.p50)} p99 ${n(e.loadCallAck?.p99)} ms; emit → ack p50 ${n(e.probeAck?.p50)} p99 ${n(e.probeAck?.p99)} ms; ack → queryable p50 ${n(e.probeAfterAck?.p50)} p99 ${n(e.probeAfterAck?.p99)} ms; probe query p50 ${n(e.probeQuery?.p50)} p99 ${n(e.probeQuery?.p99)} ms`);
    add(`E2E worker histogram (ts → insert ack)${who}`, `p50 ≈${n(e.histogram.p50Ms)} ms, p99 ≈${n(e.histogram.p99Ms)} ms, max ≤${n(e.histogram.maxBucketLeMs)} ms`, `${n(e.histogram.count)} rows, mean ${n(e.histogram.meanMs)} ms (bucket-interpolated)`);
  }
  if (d && f.memoryTenX) {
    const t = f.memoryTenX;
    add('Worker peak RSS (VmHWM), drain backlog', `${n(d.memory.peakRssHwmBytes / MB)} MiB`, `${n(d.expected)} rows; peak heapUsed ${n((d.memory.heap?.heapUsedBytes ?? 0) / MB)} MiB`);
    add('Worker peak RSS (VmHWM), 10x backlog', `${n(t.memory.peakRssHwmBytes / MB)} MiB`, `${n(t.expected)} rows at ${n(t.rowsPerSec)} rows/s; peak heapUsed ${n((t.memory.heap?.heapUsedBytes ?? 0) / MB)} MiB`);
  }
  const kp = f.kafkaProducerPerf;
  if (kp) add('Kafka ProducerPerformance', `${n(kp.recordsPerSec)} rec/s, ${kp.mbPerSec} MB/s`, `${n(kp.records)} × ${kp.recordSize} B, acks=all gzip linger 5 ms; p50 ${kp.p50LatencyMs} ms p99 ${kp.p99LatencyMs} ms`);
  const kc = f.kafkaConsumerPerf;
  if (kc) add('Kafka ConsumerPerformance (transport limit)', `${n(kc.fetchRecordsPerSec)} rec/s`, `${n(kc.records)} rec of the drain topic; incl. join ${n(kc.recordsPerSec)} rec/s`);
  const kj = f.kafkajsConsumePerf;
  if (kj) add('kafkajs consume-only', `${n(kj.recordsPerSec)} rec/s`, 'worker consumer settings, eachBatch counts only');
  for (const c of f.kafkaClients?.clients ?? []) {
    add(`Kafka client ${c.client} ${c.version}`, `produce ${n(c.produce.recordsPerSec)} rec/s, consume ${n(c.consume.recordsPerSec)} rec/s`, `${n(c.produce.records)} rec; CPU produce ${c.produce.cpuSeconds} s, consume ${c.consume.cpuSeconds} s`);
  }
  const s = f.sink;
  if (s) {
    add('Sink limit: rows → worker body format → worker inserter', `${n(s.workerInserter.rowsPerSec)} rows/s`, `${n(s.rows)} rows, ${n(s.batchRows)}/insert, ${s.concurrency} in flight, ${s.workerInserter.format ?? 'TabSeparated'}`);
    if (s.rawTabSeparated) add('Sink, chDB raw insert TabSeparated', `${n(s.rawTabSeparated.rowsPerSec)} rows/s`, 'engine only, body serialised beforehand');
    if (s.rawRowBinary) add('Sink, chDB raw insert RowBinary', `${n(s.rawRowBinary.rowsPerSec)} rows/s`, `engine only, body serialised beforehand (${n(s.rawRowBinary.bytesPerRow ?? Number.NaN, 1)} B/row)`);
    if (s.rawJsonEachRow) add('Sink, chDB raw insert JSONEachRow', `${n(s.rawJsonEachRow.rowsPerSec)} rows/s`, 'engine only, body serialised beforehand');
    add('Serialise only (JS)', `TSV ${n(s.serialise.tabSeparated.rowsPerSec)} rows/s, JSON ${n(s.serialise.jsonEachRow.rowsPerSec)} rows/s`, `${n(s.serialise.tabSeparated.mbPerSec)} / ${n(s.serialise.jsonEachRow.mbPerSec)} MB/s`);
  }
  const dec = f.decode;
  if (dec) add('Decode (header + avsc + validation)', `${n(dec.decodeAndValidate.rowsPerSec)} rows/s`, `avsc alone ${n(dec.avscOnly.rowsPerSec)} rows/s`);
  const tc = f.transcode;
  if (tc) add('Messages → insert body (JS), 50k-row batches', `direct Avro → RowBinary ${n(tc.directRowBinary?.rowsPerSec)} rows/s; → TSV ${n(tc.direct.rowsPerSec)} rows/s; object path (TSV) ${n(tc.objectPath.rowsPerSec)} rows/s`, `decode + checks + body; bodies identical to the object path's; ${n(tc.rows)} rows`);
  const ne = f.nativeEngine;
  if (ne) add('Native Kafka engine + MV (chDB)', `${n(ne.rowsPerSec)} rows/s`, `${n(ne.rows)} rows exact in ${ne.drainSeconds} s (steady ${n(ne.steadyRowsPerSec)}); block ${ne.settings.kafka_max_block_size}, consumers ${ne.settings.kafka_num_consumers}`);
  for (const so of f.scaleOut ?? []) add(`Scale-out, ${so.concurrency} member(s), 8 partitions`, `${n(so.rowsPerSec)} rows/s`, `${n(so.expected)} rows exact in ${so.drainSeconds} s; CPU ${so.threadCpu.totalSeconds} s`);
  if (f.profile) add('Profile (worker main thread, self time)', f.profile.byModule.slice(0, 4).map((m) => `${m.module} ${m.percent}%`).join('; '), `${f.profile.sampledSeconds} s sampled`);
  const r = ratios(f);
  const notJudged = 'not judged (quick run: sizes too small)';
  const met = (v: boolean | null) => (opts.quick ? notJudged : v === null ? 'not measured' : v ? 'met' : 'NOT met');
  const target = (v: boolean | null) => (opts.quick ? notJudged : String(v));
  add('GOAL drain / native Kafka engine ≥ 1.5', n(r.drainOverNativeEngine, 3), met(r.goals.drainAtLeast1_5xNativeEngine));
  add('GOAL drain / sink limit ≥ 0.8', n(r.drainOverSink, 3), met(r.goals.drainAtLeast0_8xSinkLimit));
  add('GOAL producer SDK (default client) / Kafka perf producer ≥ 0.5', n(r.producerSdkOverKafkaPerfProducer, 3), met(r.goals.producerSdkAtLeast0_5xKafkaPerf));
  add("GOAL Python SDK / confluent-kafka on the SDK's bytes ≥ 0.5", n(r.pythonSdkOverConfluentSameBytes, 3), met(r.goals.pythonSdkAtLeast0_5xConfluentSameBytes));
  add('engine only, rows/s: TabSeparated / RowBinary / JSONEachRow', `${n(r.engineOnlyRowsPerSec.tabSeparated)} / ${n(r.engineOnlyRowsPerSec.rowBinary)} / ${n(r.engineOnlyRowsPerSec.jsonEachRow)}`, `RowBinary / TSV ${n(r.engineOnlyRowBinaryOverTabSeparated, 3)}, JSONEachRow / TSV ${n(r.engineOnlyJsonEachRowOverTabSeparated, 3)}`);
  add('drain / transport limit', n(r.drainOverTransport, 3));
  add('drain / sink limit', n(r.drainOverSink, 3));
  add('drain / sink, engine only', n(r.drainOverSinkEngineOnly, 3));
  add('drain / lower limit (target ≥ 0.7)', n(r.drainOverLowerLimit, 3), target(r.targets.drainAtLeast70PctOfLowerLimit));
  add('drain / native Kafka engine (target > 1)', n(r.drainOverNativeEngine, 3), target(r.targets.drainAheadOfNativeEngine));
  add('producer SDK / Kafka perf producer (target ≥ 0.5)', n(r.producerSdkOverKafkaPerfProducer, 3), target(r.targets.producerSdkAtLeast50PctOfKafkaPerf));
  add('producer SDK (kafkajs) / Kafka perf producer', n(r.producerSdkKafkajsOverKafkaPerfProducer, 3), target(r.targets.producerSdkKafkajsAtLeast50PctOfKafkaPerf));
  add('e2e p99 ≤ flush window + 500 ms', target(r.targets.e2eP99WithinFlushWindowPlus500ms));
  add('e2e p99 ≤ flush window + 500 ms (producer kafkajs)', target(r.targets.e2eP99WithinFlushWindowPlus500msProducerKafkajs));
  add('RSS 10x / base (target ≤ 1.2)', n(r.rssTenXOverBase?.ratio, 3), target(r.targets.workerRssFlatUnderTenXBacklog));
  return rows;
}

export function printSummary(f: Figures, opts: { quick?: boolean } = {}): void {
  const rows = summaryRows(f, opts);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  process.stdout.write('\n');
  for (const [a, b, c] of rows) process.stdout.write(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}\n`);
  process.stdout.write('\n');
}

/** The figures every run must produce (bench:quick fails when one is missing). */
export function missingFigures(f: Figures): string[] {
  const required: [string, unknown][] = [
    ['producerCost.eventsPerSec', f.producerCost?.eventsPerSec],
    ['producerCost.latencyMsPerCall.p99', f.producerCost?.latencyMsPerCall.p99],
    ['producerLlm.eventsPerSec', f.producerLlm?.eventsPerSec],
    ['producerLlm.latencyMsPerCall.p99', f.producerLlm?.latencyMsPerCall.p99],
    ['producerCostKafkajs.eventsPerSec', f.producerCostKafkajs?.eventsPerSec],
    ['producerLlmKafkajs.eventsPerSec', f.producerLlmKafkajs?.eventsPerSec],
    ['producerCostPython.eventsPerSec', f.producerCostPython?.eventsPerSec],
    ['producerCostPython.confluentSameBytes.eventsPerSec', f.producerCostPython?.confluentSameBytes?.eventsPerSec],
    ['drain.rowsPerSec (exact count)', f.drain?.exact ? f.drain.rowsPerSec : undefined],
    ['drain.memory.peakRssHwmBytes', f.drain?.memory.peakRssHwmBytes || undefined],
    ['drain.memory.heap.heapUsedBytes', f.drain?.memory.heap?.heapUsedBytes || undefined],
    ['memoryTenX.memory.peakRssHwmBytes (exact count)', f.memoryTenX?.exact ? f.memoryTenX.memory.peakRssHwmBytes || undefined : undefined],
    ['e2e.probe.p99', f.e2e?.probe.p99],
    ['e2e.histogram.p99Ms', f.e2e?.histogram.count ? f.e2e.histogram.p99Ms : undefined],
    ['e2eKafkajs.probe.p99', f.e2eKafkajs?.probe.p99],
    ['kafkaProducerPerf.recordsPerSec', f.kafkaProducerPerf?.recordsPerSec],
    ['kafkaConsumerPerf.fetchRecordsPerSec', f.kafkaConsumerPerf?.fetchRecordsPerSec],
    ['kafkajsConsumePerf.recordsPerSec', f.kafkajsConsumePerf?.recordsPerSec],
    ['kafkaClients (kafkajs, platformatic, confluent)', f.kafkaClients?.clients.length === 3 && f.kafkaClients.clients.every((c) => c.produce.recordsPerSec > 0 && c.consume.recordsPerSec > 0) ? 3 : undefined],
    ['sink.workerInserter.rowsPerSec', f.sink?.workerInserter.rowsPerSec],
    // The engine-only figures exist on the embedded engine (with CLICKHOUSE_URL the step skips them).
    ...(process.env.CLICKHOUSE_URL === undefined
      ? ([
          ['sink.rawTabSeparated.rowsPerSec', f.sink?.rawTabSeparated?.rowsPerSec],
          ['sink.rawRowBinary.rowsPerSec', f.sink?.rawRowBinary?.rowsPerSec],
          ['sink.rawJsonEachRow.rowsPerSec', f.sink?.rawJsonEachRow?.rowsPerSec],
        ] as [string, unknown][])
      : []),
    ['decode.decodeAndValidate.rowsPerSec', f.decode?.decodeAndValidate.rowsPerSec],
    ['transcode.direct.rowsPerSec', f.transcode?.identical ? f.transcode.direct.rowsPerSec : undefined],
    ['nativeEngine.rowsPerSec', f.nativeEngine?.rowsPerSec],
    ['profile.byModule', f.profile?.byModule.length || undefined],
    ['scaleOut (1, 2, 4 members)', f.scaleOut?.length === 3 && f.scaleOut.every((s) => s.exact) ? 3 : undefined],
  ];
  return required.filter(([, v]) => v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))).map(([name]) => name);
}
