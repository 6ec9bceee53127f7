import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { ROOT, killChildren, sleep, withTimeout } from '../bench/common.js';
import { WorkerChild } from '../bench/worker-child.js';
import type { CostMetricInput } from '../producers/ingest-producer.js';
import { costMetrics } from '../schemas/cost-metrics.js';
import { toEventRecord } from '../schemas/validate-event.js';
import { encodeSingleObject } from '../schemas/wire-format.js';
import { sampleEvents } from '../test/fixtures/events.js';
import { RedisServer } from '../test/helpers/redis-server.js';

/**
 * The fault suite (`npm run chaos`, `npm run chaos -- --quick`, `--only=name,name`).
 *
 * Each scenario produces valid cost events into a topic of its own while a worker child
 * (chaos/fault-worker.ts, the real worker with an insert-fault hook) consumes them on the real
 * broker, Redis and embedded ClickHouse engine; a fault strikes mid-stream and is healed; then
 * the table is audited: rows, distinct (_kafka_topic, _kafka_partition, _kafka_offset) and
 * distinct event ids must all equal the events produced (= the topic's records), with no dead
 * letters and no manual step (the suite takes none: a fault that needs a human shows up as
 * missing rows). It records how long the pipeline took to catch up after the heal.
 *
 * The suite runs its OWN broker and Redis (it kills them), on CHAOS_KAFKA_PORT (default 19092,
 * controller +1) and CHAOS_REDIS_PORT (default 16390), never the product's 9092 / 6379 / 6380.
 * Results: .cache/chaos-results.json (CHAOS_RESULTS to change). Exit code 1 if any scenario failed.
 */
const args = process.argv.slice(2);
const QUICK = args.includes('--quick') || process.env.CHAOS_QUICK === '1';
const ONLY = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const KAFKA_PORT = Number(process.env.CHAOS_KAFKA_PORT ?? 19092);
const REDIS_PORT = Number(process.env.CHAOS_REDIS_PORT ?? 16390);
for (const p of [KAFKA_PORT, KAFKA_PORT + 1, REDIS_PORT]) if ([9092, 9093, 6379, 6380].includes(p)) throw new Error(`chaos: port ${p} is the product's; choose CHAOS_KAFKA_PORT / CHAOS_REDIS_PORT elsewhere`);
const BROKERS = [`127.0.0.1:${KAFKA_PORT}`];
const RUN = new Date().toISOString().replace(/[:.]/g, '-');
/** The commit the run started on (a commit made during the run does not change the code it loaded). */
const COMMIT = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
const RUN_DIR = join(ROOT, '.cache/chaos', RUN);
const RESULTS = process.env.CHAOS_RESULTS ?? join(ROOT, '.cache/chaos-results.json');
/** Bounded: a scenario that has not caught up this long after its heal fails. */
const CATCH_UP_TIMEOUT_MS = Number(process.env.CHAOS_CATCH_UP_TIMEOUT_MS ?? 180_000);
/** Bound on one scenario, fault and catch-up included. */
const SCENARIO_TIMEOUT_MS = Number(process.env.CHAOS_SCENARIO_TIMEOUT_MS ?? (QUICK ? 360_000 : 900_000));

const log = (msg: string) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---- the suite's own services ----------------------------------------------------------------

const kafkaEnv = { ...process.env, KAFKA_PORT: String(KAFKA_PORT), KAFKA_CONTROLLER_PORT: String(KAFKA_PORT + 1), KAFKA_DATA_DIR: join(ROOT, '.cache/chaos/kafka-data'), KAFKA_HEAP: process.env.CHAOS_KAFKA_HEAP ?? '384m' };
const broker = {
  start: () => execFileSync('bash', [join(ROOT, 'scripts/kafka.sh'), 'start'], { env: kafkaEnv, stdio: ['ignore', 'ignore', 'inherit'] }),
  stop: () => execFileSync('bash', [join(ROOT, 'scripts/kafka.sh'), 'stop'], { env: kafkaEnv, stdio: ['ignore', 'ignore', 'inherit'] }),
  /** kill -9 of the broker JVM (pid from kafka.sh's pid file). */
  kill9: () => {
    const pidfile = join(ROOT, '.cache/kafka', `broker-${KAFKA_PORT}.pid`);
    const pid = Number(readFileSync(pidfile, 'utf8'));
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && alive(pid); i++) spawnSync('sleep', ['0.1']);
    rmSync(pidfile, { force: true });
  },
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const redisServer = new RedisServer(REDIS_PORT, join(ROOT, '.cache/chaos/redis'), ['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction']);

const kafka = new Kafka({ clientId: 'chaos', brokers: BROKERS, logLevel: logLevel.NOTHING, retry: { retries: 30, maxRetryTime: 2_000 } });

// ---- events -------------------------------------------------------------------------------------

/** Valid cost events with ids unique in the run (`<tag>-<n>`), encoded as the SDK would. */
function encodeEvents(tag: string, from: number, n: number): Array<{ key: string; value: Buffer }> {
  const base = Date.now();
  return sampleEvents('cost_metrics', n, from + 1).map((e, i) => {
    const event = { ...(e as CostMetricInput), instance_id: `${tag}-${from + i}`, customer_id: (e as CostMetricInput).customer_id, timestamp: base + i };
    return { key: `${tag}-${(from + i) % 64}`, value: encodeSingleObject(costMetrics.avroType, costMetrics.fingerprint, toEventRecord(costMetrics, event)) };
  });
}

/**
 * Produces `rate` events/s in 100 ms chunks until `stop()`; idempotent (acks all, one request in
 * flight), so a send retried across a broker outage is written once and "events produced" is
 * exact. A failed send waits and is retried with the same events.
 */
class Load {
  sent = 0;
  private stopped = false;
  private readonly done: Promise<void>;
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly tag: string,
    rate: number,
    total: number,
  ) {
    this.done = this.run(rate, total);
  }
  private async run(rate: number, total: number): Promise<void> {
    const chunk = Math.max(1, Math.round(rate / 10));
    while (!this.stopped && this.sent < total) {
      const t0 = Date.now();
      const messages = encodeEvents(this.tag, this.sent, Math.min(chunk, total - this.sent));
      for (;;) {
        try {
          await this.producer.send({ topic: this.topic, acks: -1, messages });
          break;
        } catch {
          if (this.stopped) return;
          await sleep(500);
        }
      }
      this.sent += messages.length;
      await sleep(Math.max(0, 100 - (Date.now() - t0)));
    }
  }
  finish(): Promise<void> {
    return this.done;
  }
  stop(): Promise<void> {
    this.stopped = true;
    return this.done;
  }
}

// ---- a scenario's frame ------------------------------------------------------------------------

interface Result {
  scenario: string;
  fault: string;
  ok: boolean;
  eventsProduced: number;
  topicRecords: number;
  rowsFound: number;
  distinctCoordinates: number;
  distinctEventIds: number;
  deadLetters: number;
  manualSteps: number;
  secondsToRecover: number | null;
  notes: string[];
  error?: string;
  seconds: number;
}

class Scenario {
  readonly id: string;
  readonly topicPrefix: string;
  readonly topic: string;
  readonly runDir: string;
  worker: WorkerChild | undefined;
  readonly notes: string[] = [];
  /** Seconds from each fault (or its heal) until the rows reached what was produced by then. */
  private readonly recoveries: Array<Promise<number | null>> = [];
  secondsToRecover: number | null = null;
  private producer!: Producer;
  loads: Load[] = [];
  /** Runs after the worker stopped (the disk-full scenario unmounts its tmpfs). */
  onTearDown: (() => void) | undefined;

  constructor(
    readonly name: string,
    readonly workerEnv: Record<string, string> = {},
  ) {
    this.id = `chaos-${name}-${Date.now().toString(36)}`;
    this.topicPrefix = `${this.id}.`;
    this.topic = `${this.topicPrefix}cost_metrics`;
    this.runDir = join(RUN_DIR, name);
    mkdirSync(this.runDir, { recursive: true });
  }

  async setUp(): Promise<void> {
    await this.createTopic();
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
  }

  async createTopic(): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: this.topic, numPartitions: 4, replicationFactor: 1 }] });
    } finally {
      await admin.disconnect();
    }
  }

  load(tag: string, rate: number, total: number): Load {
    const l = new Load(this.producer, this.topic, tag, rate, total);
    this.loads.push(l);
    return l;
  }

  get produced(): number {
    return this.loads.reduce((n, l) => n + l.sent, 0);
  }

  async spawn(env: Record<string, string> = {}): Promise<WorkerChild> {
    this.worker = await WorkerChild.spawn(
      {
        id: this.id,
        topicPrefix: this.topicPrefix,
        runDir: this.runDir,
        brokers: BROKERS,
        redisUrl: redisServer.url,
        script: 'chaos/fault-worker.ts',
        env: { LOG_LEVEL: process.env.CHAOS_WORKER_LOG_LEVEL ?? 'warn', BATCH_MAX_ROWS: '1000', BATCH_MAX_WAIT_MS: '500', ...this.workerEnv, ...env },
      },
      120_000,
    );
    return this.worker;
  }

  kill9(): void {
    this.worker?.proc.kill('SIGKILL');
  }

  async waitDead(): Promise<void> {
    await this.worker?.waitExit();
  }

  async rows(): Promise<number> {
    return (await this.worker?.count('cost_metrics_ts').catch(() => -1)) ?? -1;
  }

  /**
   * Starts a recovery clock at `at` (default now: the heal): it stops when the table holds as
   * many rows as events were produced by then, polled every 250 ms (bounded by the catch-up
   * timeout). For a kill -9 the clock starts at the kill, the restart being part of recovery.
   */
  healed(at = Date.now()): void {
    const target = this.produced;
    const deadline = at + CATCH_UP_TIMEOUT_MS;
    this.recoveries.push(
      (async () => {
        while (Date.now() < deadline) {
          if ((await this.rows()) >= target) return Math.round((Date.now() - at) / 100) / 10;
          await sleep(250);
        }
        return null;
      })(),
    );
  }

  /** Waits until every produced event is a row (bounded), noting when the heal target was reached. */
  async catchUp(): Promise<void> {
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    for (;;) {
      const n = await this.rows();
      if (n >= this.produced && this.loads.every((l) => l.sent > 0)) {
        // Anything still in flight (a duplicate, a late re-insert) lands within a few batches.
        await sleep(3_000);
        return;
      }
      if (Date.now() > deadline) {
        this.notes.push(`not caught up after ${CATCH_UP_TIMEOUT_MS / 1000} s: ${n} of ${this.produced} rows`);
        return;
      }
      await sleep(500);
    }
  }

  async audit(started: number, fault: string, error?: unknown): Promise<Result> {
    const times = await Promise.all(this.recoveries);
    this.secondsToRecover = times.length === 0 || times.includes(null) ? null : Math.max(...(times as number[]));
    if (times.length > 1) this.notes.push(`recoveries ${times.join(', ')} s`);
    const w = this.worker;
    let rowsFound = -1;
    let distinctCoordinates = -1;
    let distinctEventIds = -1;
    try {
      if (w?.alive) {
        // The topic tag (before '-') tells the incarnations of a recreated topic apart: their offsets repeat.
        const [s] = await w.query<Record<string, string>>(
          "SELECT count() AS n, uniqExact(_kafka_topic, _kafka_partition, _kafka_offset, splitByChar('-', instance_id)[1]) AS coords, uniqExact(instance_id) AS ids FROM cost_metrics_ts",
        );
        rowsFound = Number(s!.n);
        distinctCoordinates = Number(s!.coords);
        distinctEventIds = Number(s!.ids);
      }
    } catch (err) {
      this.notes.push(`audit query failed: ${String(err)}`);
    }
    const topicRecords = await this.topicRecords().catch(() => -1);
    const deadLetters = await countDeadLetters(this.id).catch(() => -1);
    const eventsProduced = this.produced;
    const ok =
      !error &&
      eventsProduced > 0 &&
      topicRecords === (this.name === 'topic-recreated' ? eventsProduced - this.loads[0]!.sent : eventsProduced) &&
      rowsFound === eventsProduced &&
      distinctCoordinates === eventsProduced &&
      distinctEventIds === eventsProduced &&
      deadLetters === 0;
    return {
      scenario: this.name,
      fault,
      ok,
      eventsProduced,
      topicRecords,
      rowsFound,
      distinctCoordinates,
      distinctEventIds,
      deadLetters,
      manualSteps: 0,
      secondsToRecover: this.secondsToRecover,
      notes: this.notes,
      ...(error ? { error: String((error as Error)?.stack ?? error).split('\n').slice(0, 3).join(' | ') } : {}),
      seconds: Math.round((Date.now() - started) / 1000),
    };
  }

  async topicRecords(): Promise<number> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(this.topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
  }

  async tearDown(): Promise<void> {
    await Promise.all(this.loads.map((l) => l.stop()));
    await this.producer?.disconnect().catch(() => undefined);
    if (this.worker?.alive) await this.worker.stop(30_000);
  }
}

/** Every job in the worker's dead-letter queue (waiting, delayed, active, failed): 0 expected. */
async function countDeadLetters(id: string): Promise<number> {
  const connection = new Redis(redisServer.url, { maxRetriesPerRequest: 3 });
  const queue = new Queue(`${id.replace(/[^A-Za-z0-9_-]/g, '-')}-dead-letters`, { connection });
  try {
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized', 'completed');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

const rand = (min: number, max: number) => min + Math.random() * (max - min);

// ---- the scenarios -------------------------------------------------------------------------------

/** Sizes: full for `npm run chaos`, quick for CI (scripts/test.sh). */
const S = QUICK
  ? { rate: 1_000, seconds: 24, kills: 3, redisDownS: 30, brokerDownS: 20, diskFullS: 20, unknownCodeS: 15 }
  : { rate: 2_000, seconds: 90, kills: 5, redisDownS: 30, brokerDownS: 20, diskFullS: 180, unknownCodeS: 60 };

type Run = (s: Scenario) => Promise<string>;
const scenarios: Record<string, Run> = {
  async 'kill-9-x5'(s) {
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds);
    const spacing = (S.seconds * 1000) / (S.kills + 1);
    for (let k = 0; k < S.kills; k++) {
      await sleep(rand(0.5, 1.5) * spacing);
      const killedAt = Date.now();
      s.kill9();
      await s.waitDead();
      await s.spawn();
      s.healed(killedAt);
    }
    await load.finish();
    return `kill -9 of the worker x${S.kills} at random moments, restarted at once`;
  },

  async 'kill-9-flushall-batch-size'(s) {
    await s.spawn({ BATCH_MAX_ROWS: '1000' });
    const load = s.load('a', S.rate, S.rate * S.seconds);
    await sleep(rand(0.3, 0.6) * S.seconds * 1000);
    const killedAt = Date.now();
    s.kill9();
    await s.waitDead();
    redisServer.cli('flushall');
    await s.spawn({ BATCH_MAX_ROWS: '1700' });
    s.healed(killedAt);
    await load.finish();
    return 'kill -9 mid-stream, Redis FLUSHALL, restart with BATCH_MAX_ROWS 1000 -> 1700';
  },

  async 'redis-down'(s) {
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds + S.rate * S.redisDownS);
    await sleep(S.seconds * 300);
    await redisServer.stop();
    await sleep(S.redisDownS * 1000);
    await redisServer.start();
    s.healed();
    await load.finish();
    return `Redis down ${S.redisDownS} s (SHUTDOWN, restarted on its AOF) while events flow`;
  },

  async 'broker-kill-9'(s) {
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds);
    await sleep(S.seconds * 300);
    broker.kill9();
    await sleep(S.brokerDownS * 1000);
    broker.start();
    s.healed();
    await load.finish();
    return `broker kill -9, down ${S.brokerDownS} s, restarted with scripts/kafka.sh`;
  },

  async 'clickhouse-disk-full'(s) {
    // The embedded engine's data directory on a small tmpfs, filled to the last byte, then enlarged.
    const dataDir = join(s.runDir, `chdb-${s.id}`);
    mkdirSync(dataDir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dataDir]);
    s.onTearDown = () => void spawnSync('umount', ['-l', dataDir]);
    s.notes.push('engine data dir on tmpfs size=64m');
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds + S.rate * S.diskFullS);
    await sleep(S.seconds * 300);
    spawnSync('dd', ['if=/dev/zero', `of=${join(dataDir, 'filler')}`, 'bs=1M'], { stdio: 'ignore' });
    s.notes.push(`filled: ${spawnSync('df', ['--output=avail', dataDir], { encoding: 'utf8' }).stdout.split('\n')[1]?.trim()} KiB free`);
    await sleep(S.diskFullS * 1000);
    execFileSync('mount', ['-o', 'remount,size=1g', dataDir]);
    s.healed();
    await load.finish();
    return `ClickHouse data dir full for ${S.diskFullS} s (tmpfs filled), then remounted at 1 GiB`;
  },

  async 'clickhouse-unknown-code'(s) {
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds + S.rate * S.unknownCodeS);
    await sleep(S.seconds * 300);
    await s.worker!.request('fault', { fault: { errorCode: 394 } });
    await sleep(S.unknownCodeS * 1000);
    // The worker may have died of it (the bug this proves): then the restart is the "manual" fix
    // a supervisor would do; it is noted, and the counts say whether anything was lost.
    if (s.worker!.alive) await s.worker!.request('fault', { fault: {} });
    else {
      s.notes.push('worker exited during the injected errors; restarted');
      await s.spawn();
    }
    s.healed();
    await load.finish();
    return `every insert fails with ClickHouse code 394 (not in the allow-list) for ${S.unknownCodeS} s`;
  },

  async 'topic-recreated'(s) {
    await s.spawn();
    const first = s.load('a', S.rate, (S.rate * S.seconds) / 2);
    await first.finish();
    await s.catchUp();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [s.topic] });
    await sleep(3_000);
    await admin.disconnect();
    await s.createTopic();
    await s.load('b', S.rate, (S.rate * S.seconds) / 2).finish();
    // Recovery here: from the last new event sent until every new event is a row.
    s.healed();
    return 'topic deleted and created again under the running worker, then as many new events';
  },

  async 'sigterm-during-replay'(s) {
    // Slow inserts keep ranges pending; kill -9 leaves them journaled; the restart re-forms them
    // (slowly) and gets SIGTERM while doing so; a third start finishes.
    await s.spawn({ CHAOS_FAULT: JSON.stringify({ delayMs: 1_500 }) });
    const load = s.load('a', S.rate, S.rate * S.seconds);
    await sleep(S.seconds * 300);
    s.kill9();
    await s.waitDead();
    const replaying = await s.spawn({ CHAOS_FAULT: JSON.stringify({ delayMs: 3_000 }) });
    await sleep(1_000);
    replaying.proc.kill('SIGTERM');
    const code = await replaying.waitExit();
    s.notes.push(`SIGTERM during the replay: exit ${code}`);
    await s.spawn();
    s.healed();
    await load.finish();
    return 'kill -9 with pending ranges, restart re-forming them (slow inserts), SIGTERM 1 s into it, restart';
  },

  async 'rebalance-mid-insert'(s) {
    await s.spawn({ CHAOS_FAULT: JSON.stringify({ delayMs: 2_000 }) });
    const load = s.load('a', S.rate, S.rate * S.seconds);
    await sleep(S.seconds * 300);
    // A second worker (same group, same engine) joins while inserts take 2 s each.
    await s.worker!.request('startSecond');
    await sleep(5_000);
    await s.worker!.request('fault', { fault: {} });
    s.healed();
    await load.finish();
    return 'a second worker joins the group while every insert takes 2 s';
  },
};

async function main(): Promise<void> {
  const names = Object.keys(scenarios).filter((n) => !ONLY || ONLY.includes(n));
  log(`${QUICK ? 'quick' : 'full'} run of ${names.join(', ')}; broker 127.0.0.1:${KAFKA_PORT}, redis ${redisServer.url}; run dir ${RUN_DIR}`);
  rmSync(join(ROOT, '.cache/chaos/kafka-data'), { recursive: true, force: true });
  rmSync(join(ROOT, '.cache/chaos/redis'), { recursive: true, force: true });
  await redisServer.start();
  broker.start();
  const results: Result[] = [];
  try {
    for (const name of names) {
      const started = Date.now();
      const s = new Scenario(name);
      log(`${name}: start`);
      let fault = name;
      let error: unknown;
      try {
        // Bounded: a scenario that hangs fails by itself and the suite goes on.
        await withTimeout(name, SCENARIO_TIMEOUT_MS, async () => {
          await s.setUp();
          fault = await scenarios[name]!(s);
          if (!s.worker?.alive) {
            s.notes.push('worker not running at the end of the fault; restarted');
            await s.spawn();
          }
          await s.catchUp();
        });
      } catch (err) {
        error = err;
      }
      const r = await s.audit(started, fault, error);
      await s.tearDown().catch((err) => s.notes.push(`teardown: ${String(err)}`));
      s.onTearDown?.();
      results.push(r);
      log(
        `${r.ok ? 'PASS' : 'FAIL'} ${name}: events ${r.eventsProduced}, topic records ${r.topicRecords}, rows ${r.rowsFound}, distinct coordinates ${r.distinctCoordinates}, distinct ids ${r.distinctEventIds}, dead letters ${r.deadLetters}, manual steps ${r.manualSteps}, recovered in ${r.secondsToRecover ?? '-'} s${r.notes.length ? `; ${r.notes.join('; ')}` : ''}${r.error ? `; error: ${r.error}` : ''}`,
      );
      // Services the scenario killed come back for the next one.
      await redisServer.start().catch(() => undefined);
      try {
        execFileSync('bash', [join(ROOT, 'scripts/kafka.sh'), 'status'], { env: kafkaEnv });
      } catch {
        broker.start();
      }
    }
  } finally {
    killChildren();
    broker.stop();
    await redisServer.stop();
    mkdirSync(join(RESULTS, '..'), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify({ run: new Date().toISOString(), mode: QUICK ? 'quick' : 'full', commit: COMMIT, results }, null, 2)}\n`);
    writeFileSync(RESULTS.replace(/\.json$/, '.md'), resultsTable(results));
    log(`results in ${RESULTS}`);
  }
  const failed = results.filter((r) => !r.ok);
  log(`${results.length - failed.length} of ${results.length} scenarios passed${failed.length ? `; failed: ${failed.map((r) => r.scenario).join(', ')}` : ''}`);
  process.exitCode = failed.length > 0 || results.length !== names.length ? 1 : 0;
}

/** The fault matrix of docs/reliability.md, from a run's results. */
function resultsTable(results: Result[]): string {
  const head = '| scenario | result | events produced | rows found | distinct coordinates | distinct ids | dead letters | manual steps | seconds to recover | notes |\n|---|---|---|---|---|---|---|---|---|---|\n';
  const fmt = (n: number) => (n < 0 ? 'n/a' : n.toLocaleString('en-US'));
  return head + results.map((r) => `| \`${r.scenario}\` | ${r.ok ? 'pass' : '**FAIL**'} | ${fmt(r.eventsProduced)} | ${fmt(r.rowsFound)} | ${fmt(r.distinctCoordinates)} | ${fmt(r.distinctEventIds)} | ${fmt(r.deadLetters)} | ${r.manualSteps} | ${r.secondsToRecover ?? 'not recovered'} | ${[...r.notes, ...(r.error ? [r.error] : [])].join('; ').replace(/\|/g, '\\|').slice(0, 300)} |`).join('\n') + '\n';
}


process.on('SIGINT', () => {
  killChildren();
  process.exit(130);
});
await main();
process.exit(process.exitCode ?? 0);
