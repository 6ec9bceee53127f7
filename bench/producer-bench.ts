import { EvolutionLogger, IngestProducer, type CostMetricInput, type KafkaCodec, type LogLlmInteractionInput, type ProducerClient, type ProducerOptions } from '@kafka-clickhouse-ingest/producer';
import { BROKERS, distribution, round, type Distribution } from './common.js';

/**
 * Producer SDK throughput and latency. The SDK is used as an application would: imported by its
 * package name (the compiled dist/ an installed package runs; `npm run bench` builds it first
 * and runs tsx with TSX_TSCONFIG_PATH=tsconfig.build.json, so the name is not mapped to the sources),
 * with many calls outstanding at once (`maxInFlightCalls`), each resolving when Kafka
 * acknowledged its events.
 * - cost events: `emitCostMetrics` with `eventsPerCall` events per call; latency is per call;
 * - LLM logs: `logLlmInteraction`, one event per call; latency is per call = per event.
 * Bytes are the encoded Avro bytes (the producer's own ingest_producer_bytes_sent_total),
 * before compression.
 */
export interface ProducerFigures {
  eventType: string;
  events: number;
  calls: number;
  eventsPerCall: number;
  maxInFlightCalls: number;
  seconds: number;
  eventsPerSec: number;
  avroMBPerSec: number;
  avgEventBytes: number;
  /** CPU seconds of the bench process (user + system, all its threads) while producing: about 1 s per second means the JS thread is the limit. */
  cpuSeconds: number;
  /** Emit call → promise resolved (acks=all), milliseconds. */
  latencyMsPerCall: Distribution;
  producerOptions: Omit<ProducerOptions, 'registry'>;
}

const PRODUCER_OPTIONS = { lingerMs: 5, maxBatchBytes: 1024 * 1024, compression: 'gzip' } as const;

/** Emits `total` cost events from `pool` (cycled) to `${topicPrefix}cost_metrics`. */
export async function benchCostProducer(opts: { topicPrefix: string; total: number; pool: readonly CostMetricInput[]; eventsPerCall?: number; maxInFlightCalls?: number; client?: ProducerClient; compression?: KafkaCodec }): Promise<ProducerFigures> {
  const eventsPerCall = opts.eventsPerCall ?? 100;
  const producer = await IngestProducer.connect({ brokers: BROKERS, topicPrefix: opts.topicPrefix, ...PRODUCER_OPTIONS, ...(opts.client ? { client: opts.client } : {}), ...(opts.compression ? { compression: opts.compression } : {}) });
  // The client the SDK chose: its default unless one was asked for.
  const client = producer.events.client;
  try {
    const figures = await driveCalls(opts.total, eventsPerCall, opts.maxInFlightCalls ?? 64, (offset, n) => {
      const start = offset % opts.pool.length;
      const events = start + n <= opts.pool.length ? opts.pool.slice(start, start + n) : [...opts.pool.slice(start), ...opts.pool.slice(0, n - (opts.pool.length - start))];
      return producer.emitCostMetrics(events);
    });
    const bytes = (await producer.metrics.bytesSent.get()).values.reduce((a, v) => a + v.value, 0);
    return finish('cost_metrics', figures, bytes, eventsPerCall, opts.maxInFlightCalls ?? 64, client, opts.compression);
  } finally {
    await producer.close();
  }
}

/** Logs `total` LLM-call events from `pool` (cycled) to `${topicPrefix}llm_logs`, one per call. */
export async function benchLlmProducer(opts: { topicPrefix: string; total: number; pool: readonly LogLlmInteractionInput[]; maxInFlightCalls?: number; client?: ProducerClient }): Promise<ProducerFigures> {
  const logger = await EvolutionLogger.connect({ brokers: BROKERS, topicPrefix: opts.topicPrefix, ...PRODUCER_OPTIONS, ...(opts.client ? { client: opts.client } : {}) });
  // The logger's sink is the SDK's EventProducer: its metrics and the client it chose.
  const sdk = logger.events as unknown as Pick<IngestProducer['events'], 'client' | 'metrics'>;
  const client = sdk.client;
  const inFlight = opts.maxInFlightCalls ?? 256;
  try {
    const figures = await driveCalls(opts.total, 1, inFlight, (offset) => logger.logLlmInteraction(opts.pool[offset % opts.pool.length]!));
    const bytes = (await sdk.metrics.bytesSent.get()).values.reduce((a, v) => a + v.value, 0);
    return finish('llm_logs', figures, bytes, 1, inFlight, client);
  } finally {
    await logger.close();
  }
}

/** Keeps up to `maxInFlight` calls outstanding until `total` events were emitted and acknowledged. */
async function driveCalls(total: number, perCall: number, maxInFlight: number, call: (offset: number, n: number) => Promise<void>) {
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  const started = performance.now();
  let calls = 0;
  for (let offset = 0; offset < total; offset += perCall) {
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    if (failure) throw failure;
    const n = Math.min(perCall, total - offset);
    const t0 = performance.now();
    const p: Promise<void> = call(offset, n).then(
      () => {
        latencies.push(performance.now() - t0);
        inFlight.delete(p);
      },
      (err) => {
        failure ??= err;
        inFlight.delete(p);
      },
    );
    inFlight.add(p);
    calls++;
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  const used = process.cpuUsage(cpu);
  return { events: total, calls, seconds: (performance.now() - started) / 1000, latencies, cpuSeconds: (used.user + used.system) / 1e6 };
}

function finish(eventType: string, f: { events: number; calls: number; seconds: number; latencies: number[]; cpuSeconds: number }, bytes: number, eventsPerCall: number, maxInFlightCalls: number, client: ProducerClient, compression: KafkaCodec = PRODUCER_OPTIONS.compression): ProducerFigures {
  return {
    eventType,
    events: f.events,
    calls: f.calls,
    eventsPerCall,
    maxInFlightCalls,
    seconds: round(f.seconds, 3),
    eventsPerSec: Math.round(f.events / f.seconds),
    avroMBPerSec: round(bytes / 1e6 / f.seconds, 2),
    avgEventBytes: round(bytes / f.events, 1),
    cpuSeconds: round(f.cpuSeconds, 2),
    latencyMsPerCall: distribution(f.latencies),
    producerOptions: { ...PRODUCER_OPTIONS, client, compression },
  };
}
