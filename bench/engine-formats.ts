import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { createRowBinaryCodec } from '../consumers/row-binary.js';
import { createRowEncoder } from '../consumers/row-encoder.js';
import { batchToken } from '../consumers/types.js';
import { binaryInsertAt } from '../lib/clickhouse.js';
import { BenchClickHouse } from './bench-clickhouse.js';
import { benchArgs } from './args.js';
import { ROOT, round, waitForQuietHost } from './common.js';
import { costEventPool, encodeCostPool } from './data.js';
import { buildBatches, forEachBatch } from './sink-limit.js';

/**
 * The embedded engine alone, TabSeparated against RowBinary, alternated: the same rows (the
 * bench's cost events, decoded once), bodies made beforehand, 50,000 rows per insert, 4 in
 * flight, each with its dedup token, into the project's tables (the rollup view runs too).
 * Each round inserts `--rows` rows per format into a fresh database, in alternating order, after
 * a quiet-host wait; both tables must then hold the same rows (count and a hash of every column).
 *
 *   npx tsx bench/engine-formats.ts [--rows 1000000] [--rounds 3]
 */
const values = benchArgs('engine-formats', `usage: npx tsx bench/engine-formats.ts [--rows N] [--rounds N]
The embedded engine alone, TabSeparated against RowBinary, N rows per format (default 1000000), alternated rounds (default 3).`, { rows: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '3' } }, ['rows', 'rounds']);
const total = Number(values.rows);
const rounds = Number(values.rounds);
const batchRows = 50_000;
const concurrency = 4;

const dir = mkdtempSync(join(tmpdir(), 'engine-formats-'));
const ch = BenchClickHouse.open(join(dir, 'chdb'));
const batches = buildBatches(encodeCostPool(costEventPool(20251123)), batchRows);
const tsvEncoder = createRowEncoder(costMetrics);
const codec = createRowBinaryCodec(costMetrics);
const tsvBodies = batches.map((b) => Buffer.from(tsvEncoder.encode(b)));
const binBodies = batches.map((b) => Buffer.from(codec.encode(b)));
const token = (first: number) => batchToken({ topic: 'bench.sink', partition: 0, firstOffset: first, lastOffset: first + batchRows - 1, firstTimestamp: 0, lastTimestamp: 0 });
const settings = (first: number) => ({ insert_deduplicate: 1, insert_deduplication_token: token(first), deduplicate_blocks_in_dependent_materialized_views: 1, async_insert: 0 });
const binary = binaryInsertAt(ch.dataPath!);

async function run(format: 'TabSeparated' | 'RowBinary', db: string) {
  await ch.freshDatabase(db);
  const quiet = await waitForQuietHost(60_000);
  const cpu0 = process.cpuUsage();
  const seconds = await forEachBatch(total, batchRows, concurrency, async (k, first) => {
    if (format === 'RowBinary') await binary(`${db}.cost_metrics_ts`, codec.columns, binBodies[k % binBodies.length]!, settings(first));
    else await ch.connection!.chdb.rawInsert({ table: `${db}.cost_metrics_ts`, columns: tsvEncoder.columns, format, values: tsvBodies[k % tsvBodies.length]!, settings: settings(first) });
  });
  const cpu = process.cpuUsage(cpu0);
  const rs = await ch.client.query({ query: `SELECT count() AS n, toString(groupBitXor(cityHash64(*))) AS h FROM ${db}.cost_metrics_ts`, format: 'JSONEachRow' });
  const [row] = await rs.json<{ n: string; h: string }>();
  if (Number(row!.n) !== total) throw new Error(`${format}: ${row!.n} rows, expected ${total}`);
  return { format, seconds: round(seconds, 2), rowsPerSec: Math.round(total / seconds), cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2), hash: row!.h, quietWait: quiet };
}

const results = [];
try {
  for (let r = 0; r < rounds; r++) {
    const order: ('TabSeparated' | 'RowBinary')[] = r % 2 === 0 ? ['TabSeparated', 'RowBinary'] : ['RowBinary', 'TabSeparated'];
    const pair: Record<string, Awaited<ReturnType<typeof run>>> = {};
    for (const f of order) pair[f] = await run(f, `ef_${r}_${f === 'RowBinary' ? 'rb' : 'tsv'}`);
    if (pair.TabSeparated!.hash !== pair.RowBinary!.hash) throw new Error(`round ${r}: the two tables differ (hash ${pair.TabSeparated!.hash} vs ${pair.RowBinary!.hash})`);
    const ratio = round(pair.RowBinary!.rowsPerSec / pair.TabSeparated!.rowsPerSec, 3);
    process.stdout.write(`round ${r} (${order.join(', ')}): TSV ${pair.TabSeparated!.rowsPerSec} rows/s (${pair.TabSeparated!.cpuSeconds} CPU-s), RowBinary ${pair.RowBinary!.rowsPerSec} rows/s (${pair.RowBinary!.cpuSeconds} CPU-s), ratio ${ratio}; tables equal\n`);
    results.push({ round: r, order, ...pair, rowBinaryOverTsv: ratio });
  }
  const out = join(ROOT, 'bench/results', `engine-formats-${new Date().toISOString()}.json`);
  writeFileSync(out, JSON.stringify({ rows: total, batchRows, concurrency, bodyBytesPerRow: { tabSeparated: round(tsvBodies.reduce((n, b) => n + b.length, 0) / (batches.length * batchRows), 1), rowBinary: round(binBodies.reduce((n, b) => n + b.length, 0) / (batches.length * batchRows), 1) }, results }, null, 2));
  process.stdout.write(`results: ${out}\n`);
} finally {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
