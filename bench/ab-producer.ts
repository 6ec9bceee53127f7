import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchArgs } from './args.js';
import { createTopic, topicRecordCount, waitForQuietHost, writeAbResults } from './common.js';
import { kafkaProducerPerf } from './kafka-perf.js';

/**
 * Alternated A/B runs of the producer SDK (default client) of two checkouts, for a change on the
 * SDK's hot path: each round runs `before` then `after` (the reverse on odd rounds), each into
 * a fresh 4-partition topic on the same broker, with the same cost-event pool, through that
 * checkout's bench/producer-bench.ts (calls of 100 events, many outstanding). Exact record
 * counts are required. Results go to bench/results/ab-producer-<time>.json.
 * With --perf, each round also runs Kafka's ProducerPerformance (bench/kafka-perf.ts: the same
 * settings, as many records as events, of the SDK's average encoded event size) into a fresh
 * 4-partition topic, so each side's ratio to it is taken in the same round. (KAFKA_CACHE_DIR
 * names the Kafka jars when this checkout has no .cache/kafka of its own.)
 *
 *   npx tsx bench/ab-producer.ts --before DIR --after DIR [--events 300000] [--rounds 3] [--perf]
 *
 * DIR is a checkout with its own node_modules. A checkout where the SDK is the workspace package
 * (producers/typescript) needs its own workspace link: a node_modules symlinked to another
 * checkout's would resolve the package name into that checkout (`cp -al` its node_modules, then
 * `npm install` in DIR). Each side's package is built before the first round.
 */
const USAGE = `usage: npm run bench:ab-producer -- --before DIR --after DIR [--events N] [--rounds R] [--perf] [--client kafkajs|platformatic]
Alternated SDK runs (N cost events, default 300000) of two checkouts, R rounds (default 3);
--perf also runs Kafka's ProducerPerformance in each round, for the ratio in the same run;
--client: the SDK's Kafka client on both sides (default platformatic, the SDK's default).`;
const values = benchArgs('bench:ab-producer', USAGE, { before: { type: 'string' }, after: { type: 'string' }, events: { type: 'string', default: '300000' }, rounds: { type: 'string', default: '3' }, perf: { type: 'boolean' }, client: { type: 'string', default: 'platformatic' } }, ['events', 'rounds']);
if (values.client !== 'kafkajs' && values.client !== 'platformatic') {
  process.stderr.write(`bench:ab-producer: --client must be kafkajs or platformatic, got ${JSON.stringify(values.client)}; see --help\n`);
  process.exit(2);
}
if (!values.before || !values.after) {
  process.stderr.write('bench:ab-producer: --before DIR and --after DIR are required; see --help\n');
  process.exit(2);
}
const events = Number(values.events);
const rounds = Number(values.rounds);
const sides = { before: resolve(values.before), after: resolve(values.after) } as const;

/** One SDK run in `dir`, in a process of its own (that checkout's code and dependencies). */
function produce(dir: string, topicPrefix: string): { eventsPerSec: number; p50: number; p99: number; cpuSeconds: number; avgEventBytes: number } {
  const code = `
    import { benchCostProducer } from './bench/producer-bench.ts';
    import { sampleEvents } from './test/fixtures/events.ts';
    const f = await benchCostProducer({ topicPrefix: ${JSON.stringify(topicPrefix)}, total: ${events}, pool: sampleEvents('cost_metrics', 2000, 7), client: ${JSON.stringify(values.client)} });
    process.stdout.write(JSON.stringify({ eventsPerSec: f.eventsPerSec, p50: f.latencyMsPerCall.p50, p99: f.latencyMsPerCall.p99, cpuSeconds: f.cpuSeconds, avgEventBytes: f.avgEventBytes }) + '\\n');
    process.exit(0);`;
  const out = execFileSync('npx', ['tsx', '--input-type=module', '--eval', code], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** Builds `dir`'s producer package, and refuses a package name that resolves into another checkout. */
function prepareSide(dir: string): void {
  if (!existsSync(join(dir, 'producers/typescript/package.json'))) return; // the SDK is plain sources there
  const linked = realpathSync(join(dir, 'node_modules/@kafka-clickhouse-ingest/producer'));
  if (linked !== realpathSync(join(dir, 'producers/typescript'))) throw new Error(`${dir}: @kafka-clickhouse-ingest/producer resolves to ${linked}, another checkout's SDK (see the usage note)`);
  execFileSync('npm', ['run', '-s', 'build:sdk'], { cwd: dir, stdio: 'inherit' });
}

async function main(): Promise<void> {
  for (const dir of Object.values(sides)) prepareSide(dir);
  const id = `abp${Date.now().toString(36)}`;
  const results: Array<{ round: number; side: keyof typeof sides; eventsPerSec: number; p50: number; p99: number; cpuSeconds: number; avgEventBytes: number }> = [];
  const perf: Array<{ round: number; recordsPerSec: number; beforeRatio: number; afterRatio: number }> = [];
  for (let round = 0; round < rounds; round++) {
    const order: (keyof typeof sides)[] = round % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const side of order) {
      const prefix = `${id}.${side}${round}.`;
      await createTopic(`${prefix}cost_metrics`, 4);
      await waitForQuietHost(60_000);
      const f = produce(sides[side], prefix);
      const inTopic = await topicRecordCount(`${prefix}cost_metrics`);
      if (inTopic !== events) throw new Error(`${side} round ${round}: the topic holds ${inTopic} records, expected ${events}`);
      results.push({ round, side, ...f });
      process.stdout.write(`ab-producer: round ${round} ${side}: ${Math.round(f.eventsPerSec)} events/s, ${f.cpuSeconds} CPU-s\n`);
    }
    if (values.perf) {
      const topic = `${id}.perf${round}.records`;
      await createTopic(topic, 4);
      await waitForQuietHost(60_000);
      const recordSize = Math.round(results.find((r) => r.round === round)!.avgEventBytes);
      const p = await kafkaProducerPerf({ topic, records: events, recordSize, timeoutMs: 300_000 });
      const rate = (side: keyof typeof sides) => results.find((r) => r.round === round && r.side === side)!.eventsPerSec;
      const row = { round, recordsPerSec: p.recordsPerSec, beforeRatio: Math.round((rate('before') / p.recordsPerSec) * 1000) / 1000, afterRatio: Math.round((rate('after') / p.recordsPerSec) * 1000) / 1000 };
      perf.push(row);
      process.stdout.write(`ab-producer: round ${round} ProducerPerformance: ${p.recordsPerSec} records/s (${recordSize} B); before ${row.beforeRatio}x, after ${row.afterRatio}x\n`);
    }
  }
  const { out, ratios } = writeAbResults('producer', sides, rounds, (r) => r.eventsPerSec, results, { events, client: values.client, ...(values.perf ? { producerPerformance: perf } : {}) });
  process.stdout.write(`ab-producer: after/before per round ${ratios.join(', ')}; results in ${out}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`ab-producer failed: ${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);
