/**
 * Two copies of the Python SDK alternated on one broker, through bench/python-producer-bench.ts's
 * step (same cost events, every event acknowledged, exact topic counts, confluent-kafka alone on
 * each side's bytes): for a before/after comparison of an SDK change on a busy machine. Each round
 * runs both sides, the order flipping on odd rounds, with the benchmark's interpreter
 * (bench/python-env.ts: the fastavro venv; INGEST_PYTHON overrides).
 *
 *   git worktree add /tmp/sdk-before <commit>
 *   npx tsx bench/python-sdk-ab.ts --before /tmp/sdk-before/producers/python/src [--after DIR] [--events 100000] [--rounds 3]
 *
 * --after defaults to this checkout's producers/python/src. Results go to
 * bench/results/python-sdk-ab-<time>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchArgs } from './args.js';
import { ROOT, createTopic, pathForResults, waitForQuietHost } from './common.js';
import { COST_POOL_SIZE, costEventPool } from './data.js';
import { benchPythonProducer, type PythonProducerFigures } from './python-producer-bench.js';

const values = benchArgs(
  'bench:python-sdk-ab',
  `usage: npm run bench:python-sdk-ab -- --before SRC_DIR [--after SRC_DIR] [--events N] [--rounds R]
Two copies of the Python SDK (their producers/python/src) alternated through the benchmark's
Python step: N cost events each (default 100000), R rounds (default 3); --after defaults to this
checkout's SDK.`,
  { before: { type: 'string' }, after: { type: 'string', default: join(ROOT, 'producers/python/src') }, events: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } },
  ['events', 'rounds'],
);
if (!values.before) {
  process.stderr.write('bench:python-sdk-ab: --before SRC_DIR is required; see --help\n');
  process.exit(2);
}
const events = Number(values.events);
const rounds = Number(values.rounds);
const sides = { before: values.before, after: values.after! } as const;
type Side = keyof typeof sides;

async function main(): Promise<void> {
  const id = `pyab${Date.now().toString(36)}`;
  const pool = costEventPool(20_251_123, COST_POOL_SIZE);
  const results: ({ round: number; side: Side; quiet: unknown } & PythonProducerFigures)[] = [];
  for (let round = 0; round < rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const side of order) {
      const prefix = `${id}.${side}${round}.`;
      await createTopic(`${prefix}cost_metrics`, 4);
      const quiet = await waitForQuietHost(60_000);
      const f = await benchPythonProducer({ topicPrefix: prefix, total: events, pool, timeoutMs: 600_000, partitions: 4, sdkSrc: sides[side] });
      results.push({ round, side, quiet, ...f });
      const raw = f.confluentSameBytes!;
      process.stdout.write(
        `python-sdk-ab: round ${round} ${side} (${f.avroBackend}): ${f.eventsPerSec} events/s, CPU ${f.cpuSeconds} s; validate + encode alone ${f.validateEncodeOnlyEventsPerSec}/s; ` +
          `confluent-kafka on the same bytes ${raw.eventsPerSec}/s, CPU ${raw.cpuSeconds} s; SDK / confluent ${(f.eventsPerSec / raw.eventsPerSec).toFixed(3)}\n`,
      );
    }
  }
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `python-sdk-ab-${new Date().toISOString()}.json`);
  writeFileSync(file, `${JSON.stringify({ events, rounds, sides: { before: pathForResults(sides.before), after: pathForResults(sides.after) }, results }, null, 2)}\n`);
  process.stdout.write(`python-sdk-ab: results in bench/results/${file.slice(dir.length + 1)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`python-sdk-ab: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
