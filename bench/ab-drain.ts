/**
 * Alternated A/B drains of one backlog by the workers of two checkouts, for a change on the hot
 * path: the box is shared and noisy, so each round runs `before` then `after` (or the reverse on
 * odd rounds) on the same topic and the same broker state, and the report gives each round's
 * ratio beside the rates.
 *
 *   npx tsx bench/ab-drain.ts --before DIR --after DIR [--rows 2000000] [--rounds 3]
 *
 * DIR is a checkout with its own node_modules (a git worktree with node_modules linked works).
 * The backlog is produced once through this checkout's SDK (cost events, 4 partitions); each
 * drain is bench/drain-bench.ts's: a fresh group, database and chDB directory, reading from the
 * beginning, exact count required. Results go to bench/results/ab-drain-<time>.json.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchArgs } from './args.js';
import { ROOT, abRatios, createTopic, killChildren, topicRecordCount, waitForQuietHost, writeAbResults } from './common.js';
import { COST_POOL_SIZE, costEventPool } from './data.js';
import { drain, type DrainFigures } from './drain-bench.js';
import { benchCostProducer } from './producer-bench.js';

const USAGE = `usage: npm run bench:ab -- --before DIR --after DIR [--rows N] [--rounds R]
Alternated drains of one backlog (N cost events, default 2000000) by the workers of two
checkouts, R rounds (default 3); results in bench/results/ab-drain-<time>.json.`;
const values = benchArgs('bench:ab', USAGE, { before: { type: 'string' }, after: { type: 'string' }, rows: { type: 'string', default: '2000000' }, rounds: { type: 'string', default: '3' } }, ['rows', 'rounds']);
if (!values.before || !values.after) {
  process.stderr.write('bench:ab: --before DIR and --after DIR are required; see --help\n');
  process.exit(2);
}
const rows = Number(values.rows);
const rounds = Number(values.rounds);
const sides = { before: resolve(values.before), after: resolve(values.after) } as const;

async function main(): Promise<void> {
  const id = `ab${Date.now().toString(36)}`;
  const prefix = `${id}.drain.`;
  const runDir = join(ROOT, '.cache/bench', id);
  mkdirSync(runDir, { recursive: true });
  await createTopic(`${prefix}cost_metrics`, 4);
  process.stdout.write(`ab-drain: producing ${rows} cost events into ${prefix}cost_metrics\n`);
  await benchCostProducer({ topicPrefix: prefix, total: rows, pool: costEventPool(20_251_123, COST_POOL_SIZE) });
  const inTopic = await topicRecordCount(`${prefix}cost_metrics`);
  if (inTopic !== rows) throw new Error(`topic holds ${inTopic} records, expected ${rows}`);
  const results: { round: number; side: keyof typeof sides; rowsPerSec: number; steadyRowsPerSec: number; peakRssMiB: number; workerCpuSeconds: number; mainThreadCpuSeconds: number; quiet: unknown }[] = [];
  for (let round = 0; round < rounds; round++) {
    const order: (keyof typeof sides)[] = round % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const side of order) {
      const quiet = await waitForQuietHost(60_000);
      const f: DrainFigures = await drain({ label: `${side}-${round}`, id: `${id}_${side}_${round}`, topicPrefix: prefix, expected: rows, runDir, root: sides[side], minRowsPerSec: 2_000 });
      results.push({ round, side, rowsPerSec: f.rowsPerSec, steadyRowsPerSec: f.steadyRowsPerSec, peakRssMiB: Math.round(f.memory.peakRssHwmBytes / 2 ** 20), workerCpuSeconds: Math.round(f.threadCpu.totalSeconds * 10) / 10, mainThreadCpuSeconds: Math.round(f.threadCpu.mainThreadSeconds * 100) / 100, quiet });
      process.stdout.write(`ab-drain: round ${round} ${side}: ${f.rowsPerSec} rows/s (steady ${f.steadyRowsPerSec})\n`);
    }
  }
  const { out, ratios } = writeAbResults('drain', sides, rounds, (r) => r.rowsPerSec, results, { rows });
  // Main-thread CPU per drain: steadier than rows/s on a shared box (it does not count waiting).
  const cpuRatios = abRatios(results, rounds, (r) => r.mainThreadCpuSeconds);
  process.stdout.write(`ab-drain: after/before per round ${ratios.join(', ')} (rows/s), ${cpuRatios.join(', ')} (main-thread CPU); results in ${out}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`ab-drain failed: ${String((err as Error)?.stack ?? err)}\n`);
    killChildren();
    process.exit(1);
  },
);
