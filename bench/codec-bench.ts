/**
 * The SDK's throughput and bytes on the wire per record-batch codec, both clients, alternated
 * rounds in one sitting (the box is shared: compare ratios within a round, not absolute numbers
 * across runs). Bytes on the wire are the topic's log segment bytes on the local broker
 * (record batches as written: compressed, with their headers).
 *   KAFKA_BROKERS=... npx tsx bench/codec-bench.ts [--events N (default 100000)] [--rounds R (default 2)]
 * CODEC_BENCH_CLIENTS and CODEC_BENCH_CODECS (comma-separated) narrow the runs, e.g. to the
 * default client's candidate defaults; the order of the runs is reversed on even rounds, so
 * no side always runs first. Writes bench/results/codecs-<time>.json.
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KAFKA_CODECS } from '@kafka-clickhouse-ingest/producer/kafka-codecs.js';
import { PRODUCER_CLIENTS } from '@kafka-clickhouse-ingest/producer';
import { zlibHasZstd } from '@kafka-clickhouse-ingest/producer/kafka-transport.js';
import { benchArgs } from './args.js';
import { createTopic, deleteTopicsWithPrefix, topicRecordCount } from './common.js';
import { costEventPool } from './data.js';
import { benchCostProducer } from './producer-bench.js';

const root = resolve(import.meta.dirname, '..');
const dataDir = process.env.KAFKA_DATA_DIR ?? join(root, '.cache/kafka/data');
const values = benchArgs('codec-bench', `usage: npx tsx bench/codec-bench.ts [--events N] [--rounds R]
The SDK's throughput and bytes on the wire per record-batch codec and client, N events per run
(default 100000), R alternated rounds (default 2). CODEC_BENCH_CLIENTS and CODEC_BENCH_CODECS
(comma-separated) narrow the runs.`, { events: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '2' } }, ['events', 'rounds']);
const total = Number(values.events);
const rounds = Number(values.rounds);

function logBytes(topic: string): number {
  let bytes = 0;
  for (const dir of readdirSync(dataDir).filter((d) => d.startsWith(`${topic}-`))) {
    for (const f of readdirSync(join(dataDir, dir)).filter((f) => f.endsWith('.log'))) bytes += statSync(join(dataDir, dir, f)).size;
  }
  return bytes;
}

const pool = costEventPool(7);
const prefix = `codecbench${Date.now().toString(36)}`;
const rows: Record<string, unknown>[] = [];
const only = (name: string, all: readonly string[]): string[] => {
  const v = process.env[name];
  if (!v) return [...all];
  const picked = v.split(',').map((s) => s.trim());
  for (const p of picked) if (!all.includes(p)) throw new Error(`${name}: ${p} is not one of ${all.join(', ')}`);
  return picked;
};
const runs: [(typeof PRODUCER_CLIENTS)[number], (typeof KAFKA_CODECS)[number]][] = [];
for (const client of only('CODEC_BENCH_CLIENTS', PRODUCER_CLIENTS) as (typeof PRODUCER_CLIENTS)[number][]) {
  for (const compression of only('CODEC_BENCH_CODECS', KAFKA_CODECS) as (typeof KAFKA_CODECS)[number][]) {
    if (client === 'platformatic' && compression === 'zstd' && !zlibHasZstd()) continue;
    runs.push([client, compression]);
  }
}
for (let round = 1; round <= rounds; round++) {
  for (const [client, compression] of round % 2 === 0 ? [...runs].reverse() : runs) {
    {
      const topicPrefix = `${prefix}.r${round}.${client}.${compression}.`;
      const topic = `${topicPrefix}cost_metrics`;
      await createTopic(topic, 4);
      const f = await benchCostProducer({ topicPrefix, total, pool, client, compression });
      const records = await topicRecordCount(topic);
      const wire = logBytes(topic);
      const row = { round, client, compression, events: f.events, records, eventsPerSec: Math.round(f.eventsPerSec), cpuSeconds: f.cpuSeconds, wireBytesPerEvent: Math.round((wire / total) * 10) / 10, avroBytesPerEvent: f.avgEventBytes, p99CallMs: f.latencyMsPerCall.p99 };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
}
await deleteTopicsWithPrefix(prefix);
const out = join(root, 'bench/results', `codecs-${new Date().toISOString()}.json`);
writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), node: process.versions.node, total, rounds, note: process.env.CODEC_BENCH_NOTE ?? '', rows }, null, 2));
console.log(out);
