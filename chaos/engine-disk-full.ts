import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from '../bench/args.js';
import { openClickHouse } from '../lib/clickhouse.js';
import { loadConfig } from '../lib/config.js';

/**
 * The embedded engine alone, without the pipeline, on a disk that fills while it writes: three
 * writers insert parts of 1,000 rows into a MergeTree table on a 64 MiB tmpfs, `dd` fills it, it
 * is enlarged, and the table is read back. With chDB 26.7 the read fails in many rounds: the
 * engine committed a part (often a merge's) with an empty marks file ("Empty marks file …: 0,
 * must be: N"), and every SELECT on the table fails from then on. This is why the fault suite's
 * clickhouse-disk-full scenario fills the disk between writes (docs/reliability.md). Needs mount
 * (root or CAP_SYS_ADMIN).
 */
const args = benchArgs(
  'engine-disk-full',
  `usage: npx tsx chaos/engine-disk-full.ts [--rounds=N]
  --rounds=N   rounds, each on a fresh tmpfs and engine (default 5)
The embedded ClickHouse engine alone on a 64 MiB tmpfs that fills while three writers insert;
prints, per round, the inserts that landed and failed and whether the table can still be read.
Needs mount (root or CAP_SYS_ADMIN). Exit 1 if any round left the table unreadable.`,
  { rounds: { type: 'string', default: '5' } },
  ['rounds'],
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const row = (i: number) => `('2026-12-07 10:00:00.000', 'k${i % 50}', ${i / 7}, '${'x'.repeat(200)}${i}')`;

async function round(n: number): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'engine-disk-full-'));
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir]);
  let readable = true;
  try {
    const ch = await openClickHouse(loadConfig({ CHDB_PATH: dir, CLICKHOUSE_DATABASE: 'repro' }).clickhouse);
    await ch.command({ query: 'CREATE TABLE t (ts DateTime64(3), k String, v Float64, s String) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (k, ts)' });
    let stop = false;
    let landed = 0;
    let failed = 0;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const values = Array.from({ length: 1_000 }, (_, j) => row((w * 1e6 + i) * 1_000 + j)).join(',');
        await ch.command({ query: `INSERT INTO t VALUES ${values}` }).then(() => landed++, () => failed++);
      }
    };
    const writers = [0, 1, 2].map(writer);
    await sleep(3_000);
    spawnSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=1M']);
    await sleep(5_000);
    execFileSync('mount', ['-o', 'remount,size=1g', dir]);
    await sleep(3_000);
    stop = true;
    await Promise.all(writers);
    let outcome = 'the table reads back';
    try {
      await (await ch.query({ query: 'SELECT count(), sum(length(s)) FROM t', format: 'TabSeparated' })).text();
    } catch (err) {
      readable = false;
      outcome = `UNREADABLE: ${String((err as Error).message).split(':').slice(0, 2).join(':').slice(0, 200)}`;
    }
    process.stdout.write(`round ${n}: ${landed} inserts landed, ${failed} failed; ${outcome}\n`);
    await ch.close();
  } finally {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
  return readable;
}

let unreadable = 0;
const rounds = Number(args.rounds);
for (let n = 1; n <= rounds; n++) if (!(await round(n))) unreadable++;
process.stdout.write(`${unreadable} of ${rounds} rounds left the table unreadable\n`);
process.exit(unreadable > 0 ? 1 : 0);
