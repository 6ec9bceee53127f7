import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { NAMED_QUERIES } from '../../sql/query-registry.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';

/**
 * Every command as an operator meets it on the first day, with no service running: `--help`, no
 * argument, and bad arguments. Each is a real process (node with tsx's loader) in a fresh, empty
 * working directory, run one after another with a 15 s bound; it must exit with its documented
 * code, print the usage or one clear line (the exact first line is checked), and create no file.
 * Where a command does its work without arguments (worker, migrate), the services it reaches for
 * are at 127.0.0.1:1, where nothing listens, so it fails at once and the failure line is checked.
 */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsx = import.meta.resolve('tsx');
/**
 * The bound catches a command that waits or retries instead of failing (a connection attempt to
 * a port where nothing listens is refused at once, so only a retry loop would reach it), not a
 * slow start: the worker loads chDB's engine and both Kafka clients before its first line, and
 * with the test suite's other files beside it on 2 cores that took over 5 s (once in CI).
 */
const EXIT_TIME_MS = 15_000;
const UUID = '123e4567-e89b-12d3-a456-426614174000';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Case {
  args: string[];
  env?: Record<string, string>;
  code: 0 | 1 | 2;
  /** The exact first line: of stdout for exit 0, of stderr otherwise. */
  first: string;
}

function run(file: string, { args, env = {} }: Case, timeout = EXIT_TIME_MS) {
  const cwd = mkdtempSync(join(tmpdir(), 'ingest-cli-'));
  const home = mkdtempSync(join(tmpdir(), 'ingest-cli-home-'));
  dirs.push(cwd, home);
  const started = Date.now();
  // A clean environment: none of the caller's settings (REDIS_URL, KAFKA_BROKERS, …) leak in.
  const result = spawnSync(process.execPath, ['--import', tsx, join(root, file), ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, ...env },
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
  });
  return { ...result, ms: Date.now() - started, files: readdirSync(cwd) };
}

/**
 * The bench tools load the whole pipeline (chDB's engine, both Kafka clients) before their first
 * line runs; on a loaded 2-core machine that alone took over 5 s. They still check their
 * arguments before producing or starting anything, which is what these cases show.
 */
const BENCH_EXIT_TIME_MS = 20_000;

const commands: Record<string, { file: string; usage: string; cases: Case[]; exitTimeMs?: number }> = {
  worker: {
    file: 'consumers/main.ts',
    usage: 'usage: npm run worker',
    cases: [
      // LOG_LEVEL=error: the worker's JSON logs (a warning per Redis outage) go to stderr too.
      { args: [], env: { REDIS_URL: 'redis://127.0.0.1:1', LOG_LEVEL: 'error' }, code: 1, first: 'worker: cannot reach Redis at redis://127.0.0.1:1 (connection closed)' },
      { args: ['--frobnicate'], code: 2, first: 'worker: unknown option --frobnicate; see --help' },
      { args: ['start'], code: 2, first: 'worker: unexpected argument "start"; see --help' },
      { args: [], env: { KAFKA_BROKERS: 'kafka' }, code: 2, first: 'worker: invalid configuration:' },
    ],
  },
  migrate: {
    file: 'cli/migrate.ts',
    usage: 'usage: npm run migrate',
    cases: [
      { args: [], env: { CLICKHOUSE_URL: 'http://127.0.0.1:1' }, code: 1, first: 'migrate: cannot reach ClickHouse server http://127.0.0.1:1, database ingest: connect ECONNREFUSED 127.0.0.1:1' },
      { args: ['--dry-run'], code: 2, first: 'migrate: unknown option --dry-run; see --help' },
      { args: ['up'], code: 2, first: 'migrate: unexpected argument "up"; see --help' },
      { args: [], env: { BATCH_MAXROWS: '5' }, code: 2, first: 'migrate: invalid configuration:' },
    ],
  },
  query: {
    file: 'cli/query.ts',
    usage: 'usage: npm run query -- <helper> [--flag value ...] [--format table|json] [--worker <url>]',
    cases: [
      { args: [], code: 2, first: 'query: missing helper name; see --help' },
      { args: ['frobnicate'], code: 2, first: `query: unknown helper "frobnicate" (known: ${Object.keys(NAMED_QUERIES).join(', ')}); see --help` },
      { args: ['performance-p95', '--customer-id', 'acme', '--service-id', UUID, '--hours', '5'], code: 2, first: 'query: customerId must be a UUID, got "acme"; see --help' },
      { args: ['performance-p95', '--customer-id', UUID, '--service-id', UUID, '--hours', '-5'], code: 2, first: 'query: --hours needs a value (for a value starting with "-", write --hours=-…); see --help' },
      { args: ['performance-p95', '--customer-id', UUID, '--service-id', UUID, '--hours=-5'], code: 2, first: 'query: hours must be a finite number greater than 0 and at most 87840, got -5; see --help' },
    ],
  },
  topics: {
    file: 'cli/topics.ts',
    usage: 'usage: npm run topics -- create [--partitions <n>] [--replication-factor <n>] [--retention-hours <h>|forever] [--event-types all|<a,b>] [--dry-run]',
    cases: [
      { args: [], code: 2, first: 'topics: missing subcommand (create); see --help' },
      { args: ['delete'], code: 2, first: 'topics: unknown subcommand "delete" (known: create); see --help' },
      { args: ['create', '--partitions', '0'], code: 2, first: 'topics: --partitions must be a whole number from 1 to 10000, got "0"; see --help' },
      { args: ['create', '--replication-factor', 'three'], code: 2, first: 'topics: --replication-factor must be a whole number from 1 to 10, got "three"; see --help' },
      { args: ['create', '--retention-hours', '0'], code: 2, first: 'topics: --retention-hours must be a number of hours above 0 (or "forever"), got "0"; see --help' },
      { args: ['create', '--event-types', 'cost_metrics,nope'], code: 2, first: `topics: unknown event type(s) nope; known: ${eventTypes.map((t) => t.name).join(', ')}; see --help` },
      // Checked before connecting: nothing listens at 127.0.0.1:1, yet the error is the argument's
      // (an unreachable broker is test/integration/topics-cli.test.ts's: kafkajs retries take longer than 5 s).
      { args: ['create', '--bogus'], env: { KAFKA_BROKERS: '127.0.0.1:1' }, code: 2, first: 'topics: unknown option --bogus; see --help' },
      { args: ['create', '--dry-run', '--event-types', 'llm_logs'], code: 0, first: 'would create  ingest.llm_logs (when missing)' },
    ],
  },
  dlq: {
    file: 'cli/dlq.ts',
    usage: 'usage: npm run dlq -- <command>',
    cases: [
      { args: [], code: 2, first: 'dlq: missing command (list, show, replay, drop); see --help' },
      { args: ['frobnicate'], code: 2, first: 'dlq: unknown command "frobnicate" (list, show, replay, drop); see --help' },
      { args: ['list', '--bogus'], code: 2, first: 'dlq: unknown option --bogus; see --help' },
      { args: ['replay', '42', '--all'], code: 2, first: 'dlq: replay takes an id or --all, not both; see --help' },
    ],
  },
  'schemas:export': {
    file: 'cli/export-schemas.ts',
    usage: 'usage: npm run schemas:export [-- <dir>]',
    cases: [
      // No argument: the committed schemas/avro, rewritten with the same content (checked below).
      { args: [], code: 0, first: `wrote ${join(root, 'schemas/avro/cost_metrics.avsc')}` },
      { args: ['--out', 'x'], code: 2, first: 'schemas:export: unknown option --out; see --help' },
      { args: ['a', 'b'], code: 2, first: 'schemas:export: one output directory at most, got 2; see --help' },
      { args: ['-x'], code: 2, first: 'schemas:export: unknown option -x; see --help' },
    ],
  },
  // The bench tools (BENCHMARKS.md): arguments checked before anything is produced or started.
  bench: {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/run.ts',
    usage: 'usage: npm run bench [-- --quick]   (npm run bench:quick is the same as --quick)',
    cases: [
      { args: ['--quik'], code: 2, first: 'bench: unknown option --quik; see --help' },
      { args: ['quick'], code: 2, first: 'bench: unexpected argument "quick"; see --help' },
    ],
  },
  'bench:ab': {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/ab-drain.ts',
    usage: 'usage: npm run bench:ab -- --before DIR --after DIR [--rows N] [--rounds R]',
    cases: [
      { args: [], code: 2, first: 'bench:ab: --before DIR and --after DIR are required; see --help' },
      { args: ['--before', 'a', '--after', 'b', '--rows', '2e6'], code: 2, first: 'bench:ab: --rows must be a positive integer, got "2e6"; see --help' },
    ],
  },
  'bench:ab-producer': {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/ab-producer.ts',
    usage: 'usage: npm run bench:ab-producer -- --before DIR --after DIR [--events N] [--rounds R] [--perf] [--client kafkajs|platformatic]',
    cases: [{ args: ['--before', 'a', '--after', 'b', '--rounds', '0'], code: 2, first: 'bench:ab-producer: --rounds must be a positive integer, got "0"; see --help' }],
  },
  'bench:python-sdk-ab': {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/python-sdk-ab.ts',
    usage: 'usage: npm run bench:python-sdk-ab -- --before SRC_DIR [--after SRC_DIR] [--events N] [--rounds R]',
    cases: [{ args: ['--events', '100000'], code: 2, first: 'bench:python-sdk-ab: --before SRC_DIR is required; see --help' }],
  },
  'bench:python-backends': {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/python-backends.ts',
    usage: 'usage: npm run bench:python-backends -- [--avro PYTHON] [--fastavro PYTHON] [--events N] [--rounds R]',
    cases: [{ args: ['--rounds', '-1'], code: 2, first: 'bench:python-backends: --rounds needs a value (for a value starting with "-", write --rounds=-…); see --help' }],
  },
  'engine-formats': {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/engine-formats.ts',
    usage: 'usage: npx tsx bench/engine-formats.ts [--rows N] [--rounds N]',
    cases: [{ args: ['--rows'], code: 2, first: 'engine-formats: --rows needs a value; see --help' }],
  },
  'codec-bench': {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/codec-bench.ts',
    usage: 'usage: npx tsx bench/codec-bench.ts [--events N] [--rounds R]',
    cases: [{ args: ['100000'], code: 2, first: 'codec-bench: unexpected argument "100000"; see --help' }],
  },
  // The fault suite: it deletes its data directories and starts brokers it kills, so a bad
  // argument must stop it before any of that.
  chaos: {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'chaos/run.ts',
    usage: 'usage: npm run chaos [-- --quick] [-- --only=NAME,NAME] [-- --lanes=N]   (npm run chaos:quick is the same as --quick)',
    cases: [
      { args: ['--quik'], code: 2, first: 'chaos: unknown option --quik; see --help' },
      {
        args: ['--quick', '--only=redis-down,redis-dwn'],
        code: 2,
        first:
          'chaos: --only names no scenario "redis-dwn"; the scenarios: kill-9-x5, kill-9-flushall-batch-size, redis-down, broker-kill-9, clickhouse-disk-full, clickhouse-unknown-code, topic-recreated, sigterm-during-replay, rebalance-mid-insert, topic-recreated-inflight, redis-kill-9-after-letters, rolling-upgrade-poison, multi-broker-leader-kill-9, multi-broker-leader-kill-9-kafkajs; see --help',
      },
      { args: ['--quick', '--lanes=0'], code: 2, first: 'chaos: --lanes (or CHAOS_LANES) must be 1, 2, 3 or 4; got "0"; see --help' },
    ],
  },
  'kafka-clients': {
    exitTimeMs: BENCH_EXIT_TIME_MS,
    file: 'bench/kafka-clients-main.ts',
    usage: 'usage: npx tsx bench/kafka-clients-main.ts [--total N] [--partitions P]',
    cases: [{ args: ['--partitions', 'four'], code: 2, first: 'kafka-clients: --partitions must be a positive integer, got "four"; see --help' }],
  },
};

describe.sequential('commands explain themselves (no service running, a fresh empty directory)', () => {
  for (const [name, { file, usage, cases, exitTimeMs = EXIT_TIME_MS }] of Object.entries(commands)) {
    // --help wins over anything else on the line (checked once, with dlq).
    const help: Case[] = name === 'dlq' ? [{ args: ['--help'], code: 0, first: usage }, { args: ['frobnicate', '-h'], code: 0, first: usage }] : [{ args: ['--help'], code: 0, first: usage }];
    const all = [...help, ...cases];
    it(`${name}: --help, no argument, bad arguments`, () => {
      const avsc = name === 'schemas:export' ? readFileSync(join(root, 'schemas/avro/cost_metrics.avsc'), 'utf8') : '';
      for (const c of all) {
        const what = `${name} ${JSON.stringify(c.args)} ${JSON.stringify(c.env ?? {})}`;
        const r = run(file, c, exitTimeMs);
        expect(r.error, `${what} ran within ${exitTimeMs} ms`).toBeUndefined();
        expect(r.status, `${what}: exit code (stderr: ${r.stderr})`).toBe(c.code);
        const out = c.code === 0 ? r.stdout : r.stderr;
        expect(out.split('\n')[0], `${what}: first line`).toBe(c.first);
        expect(r.files, `${what}: created no file`).toEqual([]);
        if (c.code === 0 && c.args.some((a) => a === '--help' || a === '-h')) {
          expect(r.stderr, `${what}: nothing on stderr`).toBe('');
          expect(r.stdout, `${what}: documents the exit codes`).toMatch(/exit codes:\n {2}0 .*\n {2}1 .*\n(.*\n)* {2}2 /);
        }
        if (c.code !== 0 && !c.first.endsWith('invalid configuration:')) {
          expect(r.stderr.trimEnd().split('\n'), `${what}: one line on stderr`).toHaveLength(1);
          expect(r.stderr, `${what}: no stack`).not.toMatch(/\n\s+at /);
        }
      }
      if (avsc) expect(readFileSync(join(root, 'schemas/avro/cost_metrics.avsc'), 'utf8')).toBe(avsc);
    }, 120_000);
  }
});

describe('the demo explains itself before it installs or starts anything', () => {
  const demo = (args: string[]) => {
    // Its own empty directory as the working directory: anything the script wrote would show there.
    const cwd = mkdtempSync(join(tmpdir(), 'ingest-demo-args-'));
    const started = Date.now();
    const r = spawnSync('bash', [join(root, 'scripts/demo.sh'), ...args], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8', timeout: EXIT_TIME_MS, killSignal: 'SIGKILL' });
    return { ...r, ms: Date.now() - started, files: readdirSync(cwd) };
  };
  it('--help prints its usage and exit codes; three bad arguments exit 2 with one line; nothing is started', () => {
    const help = demo(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout.split('\n')[0]).toBe('usage: bash scripts/demo.sh [--once] [--per-type] [--registry]');
    expect(help.stdout).toMatch(/exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 /);
    expect(help.stderr).toBe('');
    for (const args of [['--bogus'], ['--once', 'now'], ['-x', '--per-type']]) {
      const r = demo(args);
      expect(r.error, `${args.join(' ')} ran within ${EXIT_TIME_MS} ms`).toBeUndefined();
      expect(r.status, args.join(' ')).toBe(2);
      const bad = args.find((a) => a !== '--once' && a !== '--per-type')!;
      expect(r.stderr).toBe(`demo: unknown argument ${bad}; see --help\n`);
      expect(r.stdout).toBe(''); // no "services: …" line: nothing was started
      expect(r.files).toEqual([]);
    }
  }, 60_000);
});

describe('the project scripts explain themselves before they install, start or run anything', () => {
  const scripts: Array<{ file: string; usage: string; name: string }> = [
    { file: 'scripts/test.sh', usage: 'usage: bash scripts/test.sh        (TEST_MODE=unit|integration|all; default all)', name: 'test.sh' },
    { file: 'scripts/check-deploy.sh', usage: 'usage: bash scripts/check-deploy.sh', name: 'check-deploy.sh' },
    { file: 'bench/install-clients.sh', usage: 'usage: bash bench/install-clients.sh', name: 'install-clients.sh' },
    { file: 'producers/python/run-tests.sh', usage: 'usage: bash producers/python/run-tests.sh [--deps]   (TEST_MODE=unit|integration|all; default all)', name: 'run-tests.sh' },
  ];
  const bash = (file: string, args: string[]) => {
    const cwd = mkdtempSync(join(tmpdir(), 'ingest-script-args-'));
    dirs.push(cwd);
    const r = spawnSync('bash', [join(root, file), ...args], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8', timeout: EXIT_TIME_MS, killSignal: 'SIGKILL' });
    return { ...r, files: readdirSync(cwd) };
  };
  for (const { file, usage, name } of scripts) {
    it(`${file}: --help prints its usage and exit codes; a stray argument exits 2 with one line`, () => {
      const help = bash(file, ['--help']);
      expect(help.status, help.stderr).toBe(0);
      expect(help.stdout.split('\n')[0]).toBe(usage);
      expect(help.stdout).toMatch(/exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 /);
      expect(help.stderr).toBe('');
      const bad = bash(file, ['--frobnicate']);
      expect(bad.error, 'exited within the bound').toBeUndefined();
      expect(bad.status).toBe(2);
      expect(bad.stderr).toBe(`${name}: unexpected argument --frobnicate; see --help\n`);
      expect(bad.stdout).toBe('');
      expect([...help.files, ...bad.files]).toEqual([]);
    });
  }

  it('spec:sync: --help, no directory, a stray option', () => {
    const help = run('test/helpers/spec-queries.ts', { args: ['--help'], code: 0, first: '' }, BENCH_EXIT_TIME_MS);
    expect(help.status).toBe(0);
    expect(help.stdout.split('\n')[0]).toBe('usage: npm run spec:sync -- <directory holding evolution-tables.md and metrics-tables.md>');
    expect(help.stdout).toMatch(/exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 /);
    const none = run('test/helpers/spec-queries.ts', { args: [], code: 2, first: '' }, BENCH_EXIT_TIME_MS);
    expect([none.status, none.stderr]).toEqual([2, 'usage: npm run spec:sync -- <directory holding evolution-tables.md and metrics-tables.md>\n']);
    const stray = run('test/helpers/spec-queries.ts', { args: ['--all'], code: 2, first: '' }, BENCH_EXIT_TIME_MS);
    expect([stray.status, stray.stderr]).toEqual([2, 'spec:sync: expected one directory, got "--all"; see --help\n']);
  }, 60_000);
});
