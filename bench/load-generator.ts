import { IngestProducer, type CostMetricInput, type ProducerClient } from '@kafka-clickhouse-ingest/producer';
import { BROKERS, distribution, sleep } from './common.js';
import { costEventPool } from './data.js';

/**
 * The e2e step's load, in a process of its own (forked by e2e-latency.ts): cost events through
 * the producer SDK at a steady rate, each stamped with its emit time. Apart from the bench
 * process, the load generator's event loop (validation, encoding, the client's compression) does
 * not delay the probe's emits and polls, and the probe's do not delay the load.
 *
 * Parameters come as one JSON argument; the result (events sent, achieved rate, per-call emit →
 * acknowledged latency) goes back over IPC.
 */
export interface LoadParams {
  topicPrefix: string;
  ratePerSec: number;
  seconds: number;
  client: ProducerClient;
  poolSeed: number;
}

export interface LoadResult {
  sent: number;
  seconds: number;
  achievedEventsPerSec: number;
  /** emit → acknowledged per call (one call per 10 ms tick, every event due by then). */
  callAck: ReturnType<typeof distribution>;
}

async function run(p: LoadParams): Promise<LoadResult> {
  const pool: CostMetricInput[] = costEventPool(p.poolSeed);
  const producer = await IngestProducer.connect({ brokers: BROKERS, topicPrefix: p.topicPrefix, lingerMs: 5, compression: 'gzip', client: p.client });
  const acks: number[] = [];
  const pending: Promise<void>[] = [];
  let failure: unknown;
  try {
    process.send!({ type: 'ready' });
    const started = Date.now();
    const end = started + p.seconds * 1000;
    let sent = 0;
    for (let now = Date.now(); now < end && !failure; now = Date.now()) {
      const due = Math.floor(((now - started) / 1000) * p.ratePerSec) - sent;
      if (due > 0) {
        const events: CostMetricInput[] = [];
        for (let k = 0; k < due; k++) events.push({ ...pool[(sent + k) % pool.length]!, timestamp: now });
        pending.push(producer.emitCostMetrics(events).then(() => void acks.push(Date.now() - now), (err) => void (failure ??= err)));
        sent += due;
      }
      await sleep(10);
    }
    const seconds = (Date.now() - started) / 1000;
    await Promise.all(pending);
    if (failure) throw failure;
    return { sent, seconds, achievedEventsPerSec: Math.round(sent / seconds), callAck: distribution(acks) };
  } finally {
    await producer.close();
  }
}

const params = JSON.parse(process.argv[2] ?? '{}') as LoadParams;
run(params).then(
  (result) => process.send!({ type: 'done', result }, () => process.exit(0)),
  (err) => process.send!({ type: 'error', error: String((err as Error)?.stack ?? err) }, () => process.exit(1)),
);
