/**
 * The Python SDK with each Avro library it can write with, alternated on one broker: Apache
 * `avro` (what Debian packages) and `fastavro` (C-accelerated, `pip install
 * './producers/python[fast]'`). The SDK picks fastavro when it is importable, so each side is an
 * interpreter: one without fastavro, one with it (for example a venv made with
 * `--system-site-packages` from the first, plus `pip install fastavro`). Each round runs both
 * (the order flips on odd rounds) through bench/python-producer-bench.ts's step: same cost
 * events, every event acknowledged, exact topic count.
 *
 *   npx tsx bench/python-backends.ts [--avro /usr/bin/python3] [--fastavro /path/venv/bin/python] [--events 100000] [--rounds 3]
 *
 * Without --fastavro, the benchmark's own venv (bench/python-env.ts: .cache/python-bench, made
 * from /usr/bin/python3 with --system-site-packages plus `pip install fastavro`).
 *
 * Results go to bench/results/python-backends-<time>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchArgs } from './args.js';
import { ROOT, createTopic, waitForQuietHost } from './common.js';
import { COST_POOL_SIZE, costEventPool } from './data.js';
import { fastavroVenvPython } from './python-env.js';
import { benchPythonProducer, type PythonProducerFigures } from './python-producer-bench.js';

const values = benchArgs(
  'bench:python-backends',
  `usage: npm run bench:python-backends -- [--avro PYTHON] [--fastavro PYTHON] [--events N] [--rounds R]
The Python SDK writing with Apache avro (--avro, default /usr/bin/python3) and with fastavro
(--fastavro, default the benchmark's venv in .cache/python-bench), alternated: N cost events
each (default 100000), R rounds (default 3).`,
  { avro: { type: 'string', default: '/usr/bin/python3' }, fastavro: { type: 'string' }, events: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } },
  ['events', 'rounds'],
);
const events = Number(values.events);
const rounds = Number(values.rounds);
const sides = { avro: values.avro!, fastavro: values.fastavro ?? fastavroVenvPython(values.avro) } as const;

async function main(): Promise<void> {
  const id = `pyb${Date.now().toString(36)}`;
  const pool = costEventPool(20_251_123, COST_POOL_SIZE);
  const results: ({ round: number; side: keyof typeof sides; quiet: unknown } & PythonProducerFigures)[] = [];
  for (let round = 0; round < rounds; round++) {
    const order: (keyof typeof sides)[] = round % 2 === 0 ? ['avro', 'fastavro'] : ['fastavro', 'avro'];
    for (const side of order) {
      const prefix = `${id}.${side}${round}.`;
      await createTopic(`${prefix}cost_metrics`, 4);
      const quiet = await waitForQuietHost(60_000);
      process.env.INGEST_PYTHON = sides[side];
      const f = await benchPythonProducer({ topicPrefix: prefix, total: events, pool, timeoutMs: 600_000, partitions: 4 });
      // The SDK chooses its library itself: a side that did not get the one it names is a set-up error.
      if (f.avroBackend !== side) throw new Error(`${sides[side]} wrote with ${f.avroBackend}, not ${side}: check which interpreter has fastavro`);
      results.push({ round, side, quiet, ...f });
      process.stdout.write(`python-backends: round ${round} ${side}: ${f.eventsPerSec} events/s, encode alone ${f.validateEncodeOnlyEventsPerSec}/s, CPU ${f.cpuSeconds} s\n`);
    }
  }
  const ratios = Array.from({ length: rounds }, (_, round) => {
    const of = (side: keyof typeof sides) => results.find((r) => r.round === round && r.side === side)!;
    return {
      round,
      eventsPerSec: Math.round((of('fastavro').eventsPerSec / of('avro').eventsPerSec) * 1000) / 1000,
      encodeOnly: Math.round((of('fastavro').validateEncodeOnlyEventsPerSec / of('avro').validateEncodeOnlyEventsPerSec) * 1000) / 1000,
    };
  });
  for (const r of ratios) process.stdout.write(`python-backends: round ${r.round} fastavro/avro: ${r.eventsPerSec} (produce + flush), ${r.encodeOnly} (validate + encode alone)\n`);
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `python-backends-${new Date().toISOString()}.json`);
  writeFileSync(file, `${JSON.stringify({ events, rounds, results, ratios }, null, 2)}\n`);
  process.stdout.write(`python-backends: results in bench/results/${file.slice(dir.length + 1)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`python-backends: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
