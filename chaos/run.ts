import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build as esbuild } from 'esbuild';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { benchArgs } from '../bench/args.js';
import { ROOT, killChildren, round, sleep, withTimeout } from '../bench/common.js';
import { WorkerChild } from '../bench/worker-child.js';
import { queueName } from '../consumers/dead-letter-queue.js';
import { createTopicsWithLeaders } from '../lib/kafka.js';
import { decodeRange, tokenOf } from '../consumers/partition-ledger.js';
import { IngestProducer, type ProducerClient } from '@kafka-clickhouse-ingest/producer';
import { RedisServer } from '../test/helpers/redis-server.js';
import { Load, PythonLoad, SdkLoad, defaultMix, poisonOnlyMix, upgradeMix, type Kind, type Source } from './mixed-load.js';
import { auditRollup, type RollupMismatch } from './rollup-audit.js';

/**
 * The fault suite (`npm run chaos`, `npm run chaos -- --quick`, `--only=name,name`).
 *
 * Each scenario produces cost events into a topic of its own, 5% of them poison (bytes that are
 * not the wire format, a writer-schema fingerprint no worker knows: chaos/mixed-load.ts), while
 * a worker child (chaos/fault-worker.ts, the real worker with an insert-fault hook) consumes
 * them on the real broker, Redis and embedded ClickHouse engine; a fault strikes mid-stream and
 * is healed; then it audits, per source of events:
 *  - rows, distinct (_kafka_topic, _kafka_partition, _kafka_offset) and distinct event ids all
 *    equal the valid events produced; the topic's records equal the messages produced;
 *  - the dead-letter queue holds exactly one letter per poison message, by job id (no letter
 *    missing, none extra);
 *  - the hourly rollup (cost_metrics_hourly) holds, per hour, the raw table's count and sum
 *    (chaos/rollup-audit.ts);
 *  - the scenario's own checks (what its fault must prove: a signal inside a replay, letters
 *    kept across a Redis kill -9, …);
 * with no manual step (the suite takes none: a fault that needs a human shows up as missing
 * rows). It records how long the pipeline took to catch up after the heal.
 *
 * The suite runs its OWN brokers and Redis servers (it kills them), never the product's
 * 9092 / 6379 / 6380. Scenarios run in lanes (`--lanes`; 2 at quick size, 1 at full size: see
 * LANES_TEXT): each lane has a broker and a Redis of its own and runs one scenario at a time,
 * taking the next from a queue ordered longest first, so a fault in one lane (a broker killed,
 * Redis flushed) never touches another lane's scenario. At quick size most of a scenario's time
 * is a fault lasting or a load paced at 1,000 events/s, not CPU, so two lanes fit two cores.
 * Lane i: broker CHAOS_KAFKA_PORT + 2i (default 19092, controller +1), Redis CHAOS_REDIS_PORT + i
 * (default 16390), the multi-broker scenarios' cluster of 3 (scripts/kafka-cluster.sh)
 * CHAOS_CLUSTER_PORT + 10i (default 29092-29097). Results: .cache/chaos-results.json
 * (CHAOS_RESULTS to change). Exit code 1 if any scenario failed.
 */
const args = benchArgs(
  'chaos',
  `usage: npm run chaos [-- --quick] [-- --only=NAME,NAME] [-- --lanes=N]   (npm run chaos:quick is the same as --quick)
  --quick        CI size (about 7 minutes with 2 lanes; CHAOS_QUICK=1 does the same); without it, full size
  --only=NAMES   only these scenarios, comma-separated (an unknown name is refused before anything starts)
  --lanes=N      scenarios run side by side in N lanes, each with its own broker and Redis (1-4;
                 default 2 with --quick, 1 at full size; CHAOS_LANES does the same)
Runs its own brokers, Redis servers and 3-broker clusters, which it kills: lane i on
CHAOS_KAFKA_PORT + 2i (19092), CHAOS_REDIS_PORT + i (16390) and CHAOS_CLUSTER_PORT + 10i (29092);
results in .cache/chaos-results.json (CHAOS_RESULTS). docs/reliability.md describes every scenario.`,
  { quick: { type: 'boolean', default: false }, only: { type: 'string' }, lanes: { type: 'string' } },
);
const QUICK = args.quick === true || process.env.CHAOS_QUICK === '1';
const ONLY = args.only === undefined ? undefined : args.only.split(',').map((n) => n.trim());
const KAFKA_PORT = Number(process.env.CHAOS_KAFKA_PORT ?? 19092);
const REDIS_PORT = Number(process.env.CHAOS_REDIS_PORT ?? 16390);
const CLUSTER_PORT = Number(process.env.CHAOS_CLUSTER_PORT ?? 29092);
/**
 * Two lanes at quick size (1,000 events/s per scenario): recoveries as one at a time (slowest
 * 7.5-9 s). Not at full size: at 2,000 events/s two lanes' catch-ups after their faults share
 * the two cores, and recoveries reached 10.0 and 10.6 s against the 10 s bound.
 */
const LANES_TEXT = args.lanes ?? process.env.CHAOS_LANES ?? (QUICK ? '2' : '1');
if (!/^[1-4]$/.test(LANES_TEXT)) {
  process.stderr.write(`chaos: --lanes (or CHAOS_LANES) must be 1, 2, 3 or 4; got ${JSON.stringify(LANES_TEXT)}; see --help\n`);
  process.exit(2);
}
const LANES = Number(LANES_TEXT);
/** Lane i's ports: its broker (and controller), its Redis, its cluster's six. */
const lanePorts = (i: number) => ({ kafka: KAFKA_PORT + 2 * i, redis: REDIS_PORT + i, cluster: CLUSTER_PORT + 10 * i });
for (let i = 0; i < LANES; i++) {
  const l = lanePorts(i);
  for (const p of [l.kafka, l.kafka + 1, l.redis, ...[0, 1, 2, 3, 4, 5].map((k) => l.cluster + k)]) if ([9092, 9093, 6379, 6380].includes(p)) throw new Error(`chaos: port ${p} is the product's; choose CHAOS_KAFKA_PORT / CHAOS_REDIS_PORT / CHAOS_CLUSTER_PORT elsewhere`);
}
const RUN = new Date().toISOString().replace(/[:.]/g, '-');
/** The commit the run started on (a commit made during the run does not change the code it loaded). */
const COMMIT = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
const RUN_DIR = join(ROOT, '.cache/chaos', RUN);
const RESULTS = process.env.CHAOS_RESULTS ?? join(ROOT, '.cache/chaos-results.json');
/**
 * Bounded: a scenario that has not caught up this long after its heal fails. Shorter at quick
 * size (its backlogs drain in seconds), so a scenario that lost something costs CI one minute.
 */
const CATCH_UP_TIMEOUT_MS = Number(process.env.CHAOS_CATCH_UP_TIMEOUT_MS ?? (QUICK ? 60_000 : 180_000));
/** The promise: back to every event landed within this long of a fault (or its heal). */
const MAX_RECOVERY_S = Number(process.env.CHAOS_MAX_RECOVERY_S ?? 10);
/**
 * The worker child, compiled to JavaScript at the suite's start (compileFaultWorker), as
 * production runs it (the image's dist/): through tsx every restart after a kill -9 spent about
 * 0.9 s more loading modules (2.4 s against 1.5 s on an idle host, more on a busy one), all of it
 * inside the recovery the suite measures.
 */
const BUILD_DIR = join('.cache/chaos', RUN, 'build');
const FAULT_WORKER = join(BUILD_DIR, 'chaos/fault-worker.js');
/** Bound on one scenario, fault and catch-up included. */
const SCENARIO_TIMEOUT_MS = Number(process.env.CHAOS_SCENARIO_TIMEOUT_MS ?? (QUICK ? 360_000 : 900_000));

const log = (msg: string) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---- the suite's own services: one lane each ---------------------------------------------------

const run = promisify(execFile);
const KAFKA_CACHE = process.env.KAFKA_CACHE_DIR ?? join(ROOT, '.cache/kafka');

/** The suite's admin and raw-producer client of `brokers` (a lane's broker or a scenario's cluster). */
const chaosKafka = (brokers: string[]) => new Kafka({ clientId: 'chaos', brokers, logLevel: logLevel.NOTHING, retry: { retries: 30, maxRetryTime: 2_000 } });

/**
 * A lane: a broker and a Redis of its own, for one scenario at a time. Its commands run
 * asynchronously (a broker start takes seconds): the other lanes' loads and recovery clocks go
 * on meanwhile.
 */
class Lane {
  readonly ports: ReturnType<typeof lanePorts>;
  readonly brokers: string[];
  readonly kafka: Kafka;
  // fsync at every write (DURABLE_ARGS): a letter Redis acknowledged survives its kill -9 (redis-kill-9-after-letters).
  readonly redis: RedisServer;
  private readonly kafkaEnv: NodeJS.ProcessEnv;
  private readonly kafkaData: string;
  /** The environment of scripts/kafka-cluster.sh for this lane's cluster of three (the multi-broker scenarios). */
  readonly clusterEnv: NodeJS.ProcessEnv;

  constructor(readonly index: number) {
    this.ports = lanePorts(index);
    this.brokers = [`127.0.0.1:${this.ports.kafka}`];
    this.kafkaData = join(ROOT, `.cache/chaos/kafka-data-${index}`);
    this.kafkaEnv = { ...process.env, KAFKA_PORT: String(this.ports.kafka), KAFKA_CONTROLLER_PORT: String(this.ports.kafka + 1), KAFKA_DATA_DIR: this.kafkaData, KAFKA_HEAP: process.env.CHAOS_KAFKA_HEAP ?? '384m' };
    this.redis = new RedisServer(this.ports.redis, join(ROOT, `.cache/chaos/redis-${index}`), [...RedisServer.DURABLE_ARGS]);
    this.kafka = chaosKafka(this.brokers);
    this.clusterEnv = { ...process.env, KAFKA_CLUSTER_PORT: String(this.ports.cluster), KAFKA_CLUSTER_DIR: join(ROOT, `.cache/chaos/cluster-${index}`), KAFKA_CLUSTER_HEAP: process.env.CHAOS_CLUSTER_HEAP ?? '320m' };
  }

  async cluster(...command: string[]): Promise<void> {
    await run('bash', [join(ROOT, 'scripts/kafka-cluster.sh'), ...command], { env: this.clusterEnv });
  }

  async startBroker(): Promise<void> {
    await this.kafkaSh('start');
  }

  async stopBroker(): Promise<void> {
    await this.kafkaSh('stop');
  }

  async brokerAnswers(): Promise<boolean> {
    return this.kafkaSh('status').then(
      () => true,
      () => false,
    );
  }

  /** kill -9 of the broker JVM (pid from kafka.sh's pid file). */
  async killBroker(): Promise<void> {
    const pidfile = join(KAFKA_CACHE, `broker-${this.ports.kafka}.pid`);
    const pid = Number(readFileSync(pidfile, 'utf8'));
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    rmSync(pidfile, { force: true });
  }

  /** Fresh data: a lane starts from an empty broker and Redis. */
  async start(): Promise<void> {
    rmSync(this.kafkaData, { recursive: true, force: true });
    rmSync(this.redis.dir, { recursive: true, force: true });
    await this.redis.start();
    await this.startBroker();
  }

  /** Everything the lane started: its broker, its Redis and a cluster a scenario left running. */
  async stop(): Promise<void> {
    await Promise.all([this.stopBroker().catch(() => undefined), this.cluster('stop').catch(() => undefined), this.redis.stop()]);
  }

  private async kafkaSh(command: string): Promise<void> {
    try {
      await run('bash', [join(ROOT, 'scripts/kafka.sh'), command], { env: this.kafkaEnv });
    } catch (err) {
      // kafka.sh's own message (stderr) says why; `status` failing is an answer, not an error.
      if (command !== 'status') process.stderr.write(String((err as { stderr?: unknown }).stderr ?? err));
      throw err;
    }
  }
}

/** The lanes of this run (main), for the SIGINT handler. */
const lanes: Lane[] = [];

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Scenarios that set up a Kafka of their own (a cluster of three brokers, not the lane's broker).
 * They never run at the same time in two lanes: a cluster's start-up (three JVMs at once) would
 * slow the other's failover.
 */
const OWN_CLUSTER = new Set(['multi-broker-leader-kill-9', 'multi-broker-leader-kill-9-kafkajs']);

/**
 * Seconds each scenario took at quick size (a 2-lane run on 2 cores), for the queue's order
 * only: longest first, so the lanes finish close together. A scenario missing here goes first.
 */
const QUICK_SECONDS: Record<string, number> = {
  'broker-kill-9': 71,
  'multi-broker-leader-kill-9': 68,
  'redis-down': 67,
  'multi-broker-leader-kill-9-kafkajs': 64,
  'clickhouse-disk-full': 52,
  'kill-9-x5': 46,
  'clickhouse-unknown-code': 46,
  'sigterm-during-replay': 42,
  'topic-recreated': 39,
  'rebalance-mid-insert': 33,
  'kill-9-flushall-batch-size': 32,
  'rolling-upgrade-poison': 32,
  'redis-kill-9-after-letters': 32,
  'topic-recreated-inflight': 29,
};

// ---- a scenario's frame ------------------------------------------------------------------------

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

interface Result {
  scenario: string;
  fault: string;
  ok: boolean;
  /** Events that must be rows (valid, and healable ones a later worker decodes). */
  eventsProduced: number;
  /** Poison messages produced: each must rest as one dead letter. */
  poisonProduced: number;
  topicRecords: number;
  expectedTopicRecords: number;
  rowsFound: number;
  distinctCoordinates: number;
  distinctEventIds: number;
  /** Distinct letters of the poison produced, found in the scenario's queue. */
  deadLetters: number;
  lettersMissing: number;
  /** Letters that are none of the poison produced (nor a healed letter of a newer schema). */
  lettersExtra: number;
  /** Letters of a newer schema that an upgraded worker landed (completed jobs). */
  lettersHealed: number;
  /** Letters of a newer schema still retrying or dead at the end. */
  lettersUnhealed: number;
  rollup: { hours: number; rawRows: number; rollupRows: number; mismatches: number; first?: RollupMismatch };
  checks: Check[];
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
  /** Extra checks a scenario makes (what its fault must prove); each must hold. */
  readonly checks: Check[] = [];
  /** Seconds from each fault (or its heal) until the rows reached what was produced by then. */
  private readonly recoveries: Array<Promise<number | null>> = [];
  secondsToRecover: number | null = null;
  private producer!: Producer;
  readonly sources: Source[] = [];
  /** Sources whose messages are no longer in the topic (deleted with it): not in its watermarks. */
  readonly goneFromTopic = new Set<Source>();
  /**
   * Sources part of whose messages were deleted with the topic before a worker read them: their
   * rows and letters may fall short (never over, never twice); the others must be exact.
   */
  readonly partial = new Set<Source>();
  /** Letters the fault itself deletes (Redis FLUSHALL): expected gone, not counted as missing. */
  readonly flushedLetters = new Set<string>();
  /** Runs after the worker stopped (the disk-full scenario unmounts its tmpfs). */
  onTearDown: (() => void | Promise<void>) | undefined;
  kafka: Kafka;
  brokers: string[];
  partitions = 4;
  replicationFactor = 1;
  topicConfig: Array<{ name: string; value: string }> = [];

  constructor(
    readonly name: string,
    readonly lane: Lane,
    readonly workerEnv: Record<string, string> = {},
  ) {
    this.kafka = lane.kafka;
    this.brokers = lane.brokers;
    this.id = `chaos-${name}-${Date.now().toString(36)}`;
    this.topicPrefix = `${this.id}.`;
    this.topic = `${this.topicPrefix}cost_metrics`;
    this.runDir = join(RUN_DIR, name);
    mkdirSync(this.runDir, { recursive: true });
  }

  get groupId(): string {
    return `${this.id}-group`;
  }

  /** On another cluster than the suite's broker (the multi-broker scenario). */
  useCluster(brokers: string[], replicationFactor: number, topicConfig: Array<{ name: string; value: string }>): void {
    this.brokers = brokers;
    this.kafka = chaosKafka(brokers);
    this.replicationFactor = replicationFactor;
    this.topicConfig = topicConfig;
  }

  async setUp(): Promise<void> {
    await this.createTopic();
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
  }

  async createTopic(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await createTopicsWithLeaders(admin, [{ topic: this.topic, numPartitions: this.partitions, replicationFactor: this.replicationFactor, configEntries: this.topicConfig }]);
    } finally {
      await admin.disconnect();
    }
  }

  async deleteTopic(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [this.topic] });
    } finally {
      await admin.disconnect();
    }
  }

  /** Valid events with poison mixed in (chaos/mixed-load.ts defaultMix, 5%), or another mix. */
  load(tag: string, rate: number, total: number, mix: (n: number) => Kind = defaultMix): Load {
    const l = new Load(this.producer, this.topic, tag, rate, total, mix, this.partitions);
    this.sources.push(l);
    return l;
  }

  add<T extends Source>(source: T): T {
    this.sources.push(source);
    return source;
  }

  /** Events that must be rows, so far. */
  get produced(): number {
    return this.sources.reduce((n, l) => n + l.valid, 0);
  }

  async spawn(env: Record<string, string> = {}): Promise<WorkerChild> {
    this.worker = await WorkerChild.spawn(
      {
        id: this.id,
        topicPrefix: this.topicPrefix,
        runDir: this.runDir,
        brokers: this.brokers,
        redisUrl: this.lane.redis.url,
        script: FAULT_WORKER,
        // An instance id, as the Kubernetes manifest gives each pod (its name): a worker restarted
        // after a kill -9 removes its previous run's members as it starts (crashed-member.ts), so the
        // group does not wait for their sessions to expire. A 6 s session (the broker's minimum; the
        // worker's default is 8 s) bounds the recovery where that removal could not be sent.
        env: { LOG_LEVEL: process.env.CHAOS_WORKER_LOG_LEVEL ?? 'warn', BATCH_MAX_ROWS: '1000', BATCH_MAX_WAIT_MS: '500', INGEST_INSTANCE_ID: this.id, INGEST_SESSION_TIMEOUT_MS: '6000', INGEST_HEARTBEAT_INTERVAL_MS: '1000', ...this.workerEnv, ...env },
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

  /** The group's committed offsets and their metadata (the ranges named in Kafka), by partition. */
  async committed(): Promise<Map<number, { offset: number; metadata: string | null }>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const [t] = await admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] });
      return new Map((t?.partitions ?? []).map((p) => [p.partition, { offset: Number(p.offset), metadata: p.metadata }]));
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Starts a recovery clock at `at` (default now: the heal): it stops when the table holds as
   * many rows as events were produced by then, polled every 250 ms (bounded by the catch-up
   * timeout). For a kill -9 the clock starts at the kill, the restart being part of recovery.
   */
  healed(at = Date.now()): void {
    const target = this.expectedRowsAtLeast;
    const deadline = at + CATCH_UP_TIMEOUT_MS;
    this.recoveries.push(
      (async () => {
        while (Date.now() < deadline) {
          if ((await this.landed()) >= target) return Math.round((Date.now() - at) / 100) / 10;
          await sleep(250);
        }
        return null;
      })(),
    );
  }

  /**
   * Distinct events landed, of the sources that must be exact (a source partly deleted with a
   * topic cannot reach its count). Distinct ids, not rows: duplicates must not make a scenario
   * look caught up while events are still missing.
   */
  async landed(): Promise<number> {
    const partial = [...this.partial].map((l) => `'${l.tag}'`).join(',');
    const where = partial ? ` WHERE splitByChar('-', instance_id)[1] NOT IN (${partial})` : '';
    const [r] = (await this.worker?.query<{ n: string }>(`SELECT uniqExact(instance_id) AS n FROM cost_metrics_ts${where}`).catch(() => undefined)) ?? [];
    return r ? Number(r.n) : -1;
  }

  /** Rows the table must hold at the end: every source's valid events, but what was deleted with a topic. */
  private get expectedRowsAtLeast(): number {
    return this.sources.filter((l) => !this.partial.has(l)).reduce((n, l) => n + l.valid, 0);
  }

  /**
   * Waits (bounded) until every produced event landed, every poison message is a letter and
   * every letter of a newer schema has landed (completed).
   */
  async catchUp(): Promise<void> {
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    const wanted = new Set(this.sources.filter((l) => !this.partial.has(l)).flatMap((l) => [...l.letterIds].filter((id) => !this.flushedLetters.has(id))));
    const healable = new Set(this.sources.flatMap((l) => [...l.healableIds]));
    for (;;) {
      const n = await this.landed();
      const letters = await letterStates(this.lane.redis.url, this.id).catch(() => new Map<string, string>());
      const lettersIn = [...wanted].filter((id) => letters.has(id)).length;
      const unhealed = [...letters].filter(([id, state]) => healable.has(id) && state !== 'completed').length;
      if (n >= this.expectedRowsAtLeast && lettersIn >= wanted.size && unhealed === 0 && this.sources.every((l) => l.messages > 0)) {
        // Anything still in flight (a duplicate, a late re-insert) lands within a few batches.
        await sleep(3_000);
        return;
      }
      if (Date.now() > deadline) {
        this.notes.push(`not caught up after ${CATCH_UP_TIMEOUT_MS / 1000} s: ${n} of ${this.expectedRowsAtLeast} events, ${lettersIn} of ${wanted.size} letters, ${unhealed} letters of schema v2 not landed`);
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
    let rowsOk = false;
    let rollup: Result['rollup'] = { hours: -1, rawRows: -1, rollupRows: -1, mismatches: -1 };
    const eventsProduced = this.produced;
    try {
      if (w?.alive) {
        // Per source (the event id's tag); the tag also tells the incarnations of a recreated topic apart: their offsets repeat.
        const perTag = await w.query<{ tag: string; n: string; coords: string; ids: string }>(
          "SELECT splitByChar('-', instance_id)[1] AS tag, count() AS n, uniqExact(_kafka_topic, _kafka_partition, _kafka_offset) AS coords, uniqExact(instance_id) AS ids FROM cost_metrics_ts GROUP BY tag",
        );
        const byTag = new Map(perTag.map((r) => [r.tag, { n: Number(r.n), coords: Number(r.coords), ids: Number(r.ids) }]));
        rowsFound = [...byTag.values()].reduce((a, r) => a + r.n, 0);
        distinctCoordinates = [...byTag.values()].reduce((a, r) => a + r.coords, 0);
        distinctEventIds = [...byTag.values()].reduce((a, r) => a + r.ids, 0);
        rowsOk = [...byTag.keys()].every((tag) => this.sources.some((l) => l.tag === tag));
        if (!rowsOk) this.notes.push(`rows of unknown sources: ${[...byTag.keys()].filter((t) => !this.sources.some((l) => l.tag === t)).join(', ')}`);
        for (const l of this.sources) {
          const r = byTag.get(l.tag) ?? { n: 0, coords: 0, ids: 0 };
          const exact = r.n === r.coords && r.n === r.ids && (this.partial.has(l) ? r.n <= l.valid : r.n === l.valid);
          if (!exact) rowsOk = false;
          if (this.partial.has(l) || !exact) this.notes.push(`${l.tag}: ${r.n} rows (${r.coords} coordinates, ${r.ids} ids) of ${l.valid} events${this.partial.has(l) ? ', the rest deleted with the topic' : ''}`);
        }
        const a = await auditRollup((sql) => w.query(sql));
        rollup = { hours: a.hours, rawRows: a.rawRows, rollupRows: a.rollupRows, mismatches: a.mismatches.length, ...(a.mismatches[0] ? { first: a.mismatches[0] } : {}) };
        if (a.mismatches.length > 0) this.notes.push(`rollup: ${a.mismatches.length} of ${a.hours} hours differ, e.g. ${a.mismatches[0]!.hour}: raw ${a.mismatches[0]!.rawRows} rows / ${round(a.mismatches[0]!.rawSum, 4)}, rollup ${a.mismatches[0]!.rollupRows} / ${round(a.mismatches[0]!.rollupSum, 4)}`);
      }
    } catch (err) {
      this.notes.push(`audit query failed: ${String(err)}`);
    }
    const topicRecords = await this.topicRecords().catch(() => -1);
    const expectedTopicRecords = this.sources.filter((l) => !this.goneFromTopic.has(l)).reduce((n, l) => n + l.messages, 0);
    if (topicRecords !== expectedTopicRecords) this.notes.push(`topic records ${topicRecords} for ${expectedTopicRecords} messages acknowledged`);
    // Letters: set-based, so a letter missing and another one extra do not cancel out.
    const states = await letterStates(this.lane.redis.url, this.id).catch((err) => {
      this.notes.push(`letters unreadable: ${String(err)}`);
      return undefined;
    });
    const exactIds = new Set(this.sources.filter((l) => !this.partial.has(l)).flatMap((l) => [...l.letterIds].filter((id) => !this.flushedLetters.has(id))));
    const partialIds = new Set([...this.partial].flatMap((l) => [...l.letterIds]));
    const healable = new Set(this.sources.flatMap((l) => [...l.healableIds]));
    let deadLetters = -1;
    let lettersMissing = -1;
    let lettersExtra = -1;
    let lettersHealed = -1;
    let lettersUnhealed = -1;
    if (states) {
      const ids = [...states.keys()];
      deadLetters = ids.filter((id) => exactIds.has(id) || partialIds.has(id)).length;
      lettersMissing = [...exactIds].filter((id) => !states.has(id)).length;
      lettersExtra = ids.filter((id) => !exactIds.has(id) && !partialIds.has(id) && !healable.has(id)).length;
      if (this.flushedLetters.size > 0) this.notes.push(`${this.flushedLetters.size} letters acknowledged before the FLUSHALL deleted by it (${ids.filter((id) => this.flushedLetters.has(id)).length} of them back)`);
      lettersHealed = ids.filter((id) => healable.has(id) && states.get(id) === 'completed').length;
      lettersUnhealed = ids.filter((id) => healable.has(id) && states.get(id) !== 'completed').length;
      const healedPoison = ids.filter((id) => (exactIds.has(id) || partialIds.has(id)) && states.get(id) === 'completed').length;
      if (healedPoison > 0) this.notes.push(`${healedPoison} letters of poison completed (landed?)`);
      if (lettersMissing || lettersExtra) this.notes.push(`letters: ${lettersMissing} missing, ${lettersExtra} extra`);
      if (lettersHealed > 0 || lettersUnhealed > 0) this.notes.push(`letters of schema v2: ${lettersHealed} healed, ${lettersUnhealed} not`);
    }
    const poisonProduced = this.sources.reduce((n, l) => n + l.poison, 0);
    const failures = this.sources.flatMap((l) => l.failures.map((f) => `${l.tag}: ${f}`));
    if (failures.length) this.checks.push({ name: 'producers acknowledged every send', ok: false, detail: failures.slice(0, 3).join('; ') });
    const recoveryOk = this.secondsToRecover !== null && this.secondsToRecover <= MAX_RECOVERY_S;
    if (!recoveryOk) this.checks.push({ name: `recovered within ${MAX_RECOVERY_S} s`, ok: false, detail: this.secondsToRecover === null ? 'not recovered (or no recovery measured)' : `${this.secondsToRecover} s` });
    const rollupOk = rollup.mismatches === 0 && rollup.hours > 0 && rollup.rawRows === rollup.rollupRows;
    const ok =
      !error &&
      eventsProduced > 0 &&
      topicRecords === expectedTopicRecords &&
      rowsOk &&
      (this.partial.size > 0 || (rowsFound === eventsProduced && distinctCoordinates === eventsProduced && distinctEventIds === eventsProduced)) &&
      lettersMissing === 0 &&
      lettersExtra === 0 &&
      lettersUnhealed === 0 &&
      (this.partial.size > 0 || deadLetters === poisonProduced - this.flushedLetters.size) &&
      rollupOk &&
      this.checks.every((c) => c.ok);
    return {
      scenario: this.name,
      fault,
      ok,
      eventsProduced,
      poisonProduced,
      topicRecords,
      expectedTopicRecords,
      rowsFound,
      distinctCoordinates,
      distinctEventIds,
      deadLetters,
      lettersMissing,
      lettersExtra,
      lettersHealed,
      lettersUnhealed,
      rollup,
      checks: this.checks,
      manualSteps: 0,
      secondsToRecover: this.secondsToRecover,
      notes: this.notes,
      ...(error ? { error: String((error as Error)?.stack ?? error).split('\n').slice(0, 3).join(' | ') } : {}),
      seconds: Math.round((Date.now() - started) / 1000),
    };
  }

  async topicRecords(): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(this.topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
  }

  async tearDown(): Promise<void> {
    await Promise.all(this.sources.map((l) => l.stop()));
    await this.producer?.disconnect().catch(() => undefined);
    if (this.worker?.alive) await this.worker.stop(30_000);
  }
}

/**
 * Every poison letter in the worker's dead-letter queue (consumers/dead-letter-queue.ts: queue
 * `${DLQ_QUEUE_PREFIX}-dead-letters`, job ids `poison-…`, BullMQ's job hash at
 * `bull:<queue>:<job id>`), by job id: 'completed' (landed) or 'open' (retrying or dead). Read
 * from the job hashes, not from the state lists: a retried letter moves between lists
 * (delayed, waiting, active) and a scan of one list after another can miss it.
 */
async function letterStates(redisUrl: string, id: string): Promise<Map<string, 'completed' | 'open'>> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  const prefix = `bull:${queueName({ queuePrefix: id.replace(/[^A-Za-z0-9_-]/g, '-') })}:`;
  try {
    const ids: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}poison-*`, 'COUNT', 1000);
      cursor = next;
      // Job ids hold no ':' (letterIdentity); longer keys are a job's lock or logs.
      for (const k of keys) if (!k.slice(prefix.length).includes(':')) ids.push(k.slice(prefix.length));
    } while (cursor !== '0');
    const pipeline = redis.pipeline();
    for (const jobId of ids) pipeline.zscore(`${prefix}completed`, jobId);
    const scores = (await pipeline.exec()) ?? [];
    return new Map(ids.map((jobId, i) => [jobId, scores[i]?.[1] != null ? 'completed' : 'open']));
  } finally {
    redis.disconnect();
  }
}

/** A counter's value in a Prometheus text exposition (sum over the series matching every label given). */
function metricSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const rand = (min: number, max: number) => min + Math.random() * (max - min);

// ---- the scenarios -------------------------------------------------------------------------------

/** Sizes: full for `npm run chaos`, quick for CI (scripts/test.sh). */
const S = QUICK
  ? { rate: 1_000, seconds: 24, kills: 3, redisDownS: 30, brokerDownS: 20, diskFullS: 20, unknownCodeS: 15, redisKillDownS: 5, clusterSeconds: 30, clusterNodeDownS: 10 }
  : { rate: 2_000, seconds: 90, kills: 5, redisDownS: 30, brokerDownS: 20, diskFullS: 180, unknownCodeS: 60, redisKillDownS: 10, clusterSeconds: 90, clusterNodeDownS: 30 };

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
    // FLUSHALL deletes the letters of the poison already committed past: the fault's own loss,
    // not the pipeline's. The letters of every later poison message must all be there.
    const committed = await s.committed();
    for (const p of load.poisonAt) if (p.offset < (committed.get(p.partition)?.offset ?? -1)) s.flushedLetters.add(p.jobId);
    s.lane.redis.cli('flushall');
    await s.spawn({ BATCH_MAX_ROWS: '1700' });
    s.healed(killedAt);
    await load.finish();
    return 'kill -9 mid-stream, Redis FLUSHALL, restart with BATCH_MAX_ROWS 1000 -> 1700';
  },

  async 'redis-down'(s) {
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds + S.rate * S.redisDownS);
    await sleep(S.seconds * 300);
    await s.lane.redis.stop();
    await sleep(S.redisDownS * 1000);
    await s.lane.redis.start();
    s.healed();
    await load.finish();
    return `Redis down ${S.redisDownS} s (SHUTDOWN, restarted on its AOF) while events flow`;
  },

  async 'broker-kill-9'(s) {
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds);
    await sleep(S.seconds * 300);
    await s.lane.killBroker();
    await sleep(S.brokerDownS * 1000);
    await s.lane.startBroker();
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
    // The disk fills between the engine's writes: inserts held before the engine, merges stopped,
    // and none writing. Filled under a write, the engine itself (chDB 26.7) can commit a part it
    // cannot read afterwards (an empty marks file): chaos/engine-disk-full.ts shows it without
    // the pipeline, and docs/reliability.md says how often. The pipeline's part starts here: every
    // insert from now on finds the disk full.
    const worker = s.worker!;
    await worker.request('fault', { fault: { hold: true } });
    await worker.request('command', { sql: 'SYSTEM STOP MERGES' });
    let writing = await worker.request<number>('writing');
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && writing > 0; writing = await worker.request<number>('writing')) await sleep(20);
    // Said, not hidden: the disk then fills under a write after all.
    if (writing > 0) s.notes.push(`${writing} insert(s) still inside the engine after 30 s: the disk filled under them`);
    // dd stops (exit 1) when the disk is full: that is the fault.
    await run('dd', ['if=/dev/zero', `of=${join(dataDir, 'filler')}`, 'bs=1M']).catch(() => undefined);
    s.notes.push(`filled: ${spawnSync('df', ['--output=avail', dataDir], { encoding: 'utf8' }).stdout.split('\n')[1]?.trim()} KiB free`);
    await worker.request('fault', { fault: {} });
    await sleep(S.diskFullS * 1000);
    execFileSync('mount', ['-o', 'remount,size=1g', dataDir]);
    await worker.request('command', { sql: 'SYSTEM START MERGES' });
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
    await s.deleteTopic();
    s.goneFromTopic.add(first);
    await sleep(3_000);
    await s.createTopic();
    await s.load('b', S.rate, (S.rate * S.seconds) / 2).finish();
    // Recovery here: from the last new event sent until every new event is a row.
    s.healed();
    return 'topic deleted and created again under the running worker, then as many new events';
  },

  async 'sigterm-during-replay'(s) {
    // Slow inserts keep ranges pending; kill -9 leaves them named in Kafka's commit metadata; the
    // restart re-forms them (slowly) and gets SIGTERM while a re-formed range is being inserted
    // (proved, not assumed: see replayProof); a third start finishes.
    await s.spawn({ CHAOS_FAULT: JSON.stringify({ delayMs: 1_500 }) });
    const load = s.load('a', S.rate, S.rate * S.seconds);
    await sleep(S.seconds * 300);
    s.kill9();
    await s.waitDead();
    // The ranges the restart must re-form: named by the metadata of the committed offsets.
    const committed = await s.committed();
    const replayTokens = new Set<string>();
    for (const [partition, c] of committed) {
      const r = decodeRange(c.metadata);
      if (r && r.firstOffset === c.offset) replayTokens.add(tokenOf(s.topic, partition, r));
    }
    s.notes.push(`${replayTokens.size} ranges named in Kafka at the kill`);
    const replaying = await s.spawn({ CHAOS_FAULT: JSON.stringify({ delayMs: 3_000 }) });
    // SIGTERM as soon as an insert of a re-formed range is in flight (bounded wait).
    const deadline = Date.now() + 20_000;
    let replayFlushes = 0;
    while (Date.now() < deadline && replaying.alive) {
      const inflight = await replaying.request<Array<{ token: string }>>('inflight').catch(() => []);
      replayFlushes = metricSum(await replaying.metricsText().catch(() => ''), 'ingest_flushes_total', { reason: 'replay' });
      if (inflight.some((i) => replayTokens.has(i.token))) break;
      await sleep(100);
    }
    replaying.proc.kill('SIGTERM');
    const code = await replaying.waitExit();
    s.notes.push(`SIGTERM during the replay: exit ${code}`);
    // The proof: the fault worker wrote the inserts in flight when the signal arrived.
    const line = readFileSync(replaying.logPath, 'utf8').split('\n').filter((l) => l.startsWith('chaos-sigterm ')).at(-1);
    const atSignal = line ? (JSON.parse(line.slice('chaos-sigterm '.length)) as { inflight: Array<{ token: string; rows: number; ms: number }> }).inflight : [];
    const inside = atSignal.filter((i) => replayTokens.has(i.token));
    s.checks.push({
      name: 'SIGTERM landed inside a re-formed range',
      ok: replayTokens.size > 0 && inside.length > 0 && replayFlushes > 0,
      detail: `${inside.length} re-formed range(s) being inserted at the signal (${inside.map((i) => `${i.rows} rows, ${i.ms} ms in`).join('; ') || 'none'}), ${atSignal.length} inserts in flight, ingest_flushes_total{reason="replay"} ${replayFlushes}`,
    });
    await s.spawn();
    s.healed();
    await load.finish();
    return 'kill -9 with pending ranges, restart re-forming them (3 s inserts), SIGTERM while a re-formed range is being inserted, restart';
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

  async 'topic-recreated-inflight'(s) {
    // Inserts take 2 s, so the worker is inserting (and holding more) when the topic goes.
    await s.spawn({ CHAOS_FAULT: JSON.stringify({ delayMs: 2_000 }) });
    const first = s.load('a', S.rate, (S.rate * S.seconds) / 2);
    await sleep(S.seconds * 200);
    await first.stop();
    let before: Array<{ token: string }> = [];
    for (let i = 0; i < 100 && before.length === 0; i++) {
      before = await s.worker!.request<Array<{ token: string }>>('inflight');
      if (before.length === 0) await sleep(50);
    }
    await s.deleteTopic();
    const after = await s.worker!.request<Array<{ token: string }>>('inflight');
    s.goneFromTopic.add(first);
    s.partial.add(first);
    s.checks.push({ name: 'inserts in flight when the topic was deleted', ok: before.length > 0, detail: `${before.length} in flight before the delete, ${after.length} (${after.filter((a) => before.some((b) => b.token === a.token)).length} the same) when it returned` });
    await sleep(3_000);
    await s.createTopic();
    const second = s.load('b', S.rate, (S.rate * S.seconds) / 2);
    await second.finish();
    await s.worker!.request('fault', { fault: {} });
    s.healed();
    return 'topic deleted and created again while inserts (2 s each) are in flight, then as many new events';
  },

  async 'redis-kill-9-after-letters'(s) {
    await s.spawn();
    const load = s.load('a', S.rate, S.rate * S.seconds);
    await sleep(S.seconds * 300);
    // Kill Redis right after the worker acknowledged letters: after a poll of the group's
    // commits finds new poison offsets committed past (a batch commits only once its letters
    // are durable in Redis, consumers/dead-letter-queue.ts).
    const acknowledged = (c: Map<number, { offset: number }>) => load.poisonAt.filter((p) => p.offset < (c.get(p.partition)?.offset ?? -1));
    let seen = acknowledged(await s.committed()).length;
    let acked = load.poisonAt.slice(0, 0);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      acked = acknowledged(await s.committed());
      if (acked.length > seen) break;
      seen = acked.length;
      await sleep(20);
    }
    await s.lane.redis.stop(true);
    s.notes.push(`kill -9 of Redis ${acked.length - seen} letters after the last commit seen, ${acked.length} acknowledged in all`);
    await sleep(S.redisKillDownS * 1000);
    await s.lane.redis.start();
    // Recovery counts from the restart, as for the other outages: while Redis is down a batch
    // with poison in it cannot commit (its letters are not durable), so a partition holding
    // poison waits for Redis by design.
    const restartedAt = Date.now();
    const after = await letterStates(s.lane.redis.url, s.id);
    const lost = acked.filter((p) => !after.has(p.jobId));
    s.checks.push({ name: 'letters acknowledged before the kill are there after the restart', ok: acked.length > 0 && lost.length === 0, detail: `${acked.length - lost.length} of ${acked.length} acknowledged letters found after the restart (appendfsync always)` });
    s.healed(restartedAt);
    await load.finish();
    return `kill -9 of Redis right after letters were acknowledged (offsets committed past them), down ${S.redisKillDownS} s, restarted on its AOF`;
  },

  async 'rolling-upgrade-poison'(s) {
    // The old worker knows cost schema v1 only: v2 events (1 in 5) are unknown_fingerprint
    // poison to it. Its inserts are slow and its shutdown grace short, so it is replaced with
    // ranges pending whose v2 messages it already dead-lettered.
    const dlq = { DLQ_BACKOFF_MS: '500', DLQ_MAX_BACKOFF_MS: '2000' };
    const old = await s.spawn({ ...dlq, CHAOS_FAULT: JSON.stringify({ delayMs: 1_500 }), SHUTDOWN_TIMEOUT_MS: '1000' });
    const load = s.load('u', S.rate, S.rate * S.seconds, upgradeMix);
    await sleep(S.seconds * 400);
    const v2Letters = metricSum(await old.metricsText().catch(() => ''), 'ingest_poison_messages_total', { reason: 'unknown_fingerprint' });
    const stoppedAt = Date.now();
    old.proc.kill('SIGTERM');
    const code = await old.waitExit();
    s.notes.push(`old worker: ${v2Letters} unknown_fingerprint letters (v2 events and real poison), SIGTERM with a 1 s shutdown bound: exit ${code}`);
    await s.spawn({ ...dlq, CHAOS_SCHEMA: 'v2' });
    s.healed(stoppedAt);
    await load.finish();
    return 'old worker (schema v1) while v2 events arrive among the poison; SIGTERM with a 1 s shutdown bound during 1.5 s inserts; the upgraded worker (v2, its migration) takes over';
  },

  'multi-broker-leader-kill-9': leaderKill(),
  // The same with the SDK's other Kafka client: its per-partition requests meet the failover differently.
  'multi-broker-leader-kill-9-kafkajs': leaderKill('kafkajs'),
};

/**
 * Three brokers of a cluster of their own (scripts/kafka-cluster.sh): the topic replicated 3
 * times, min.insync.replicas 2; the TS SDK (with `client`, else its default or
 * INGEST_PRODUCER_CLIENT) and the Python SDK produce valid events, a raw producer poison; the
 * group's coordinator gets kill -9 and is restarted.
 */
function leaderKill(client?: ProducerClient): Run {
  return async (s) => {
    const port = s.lane.ports.cluster;
    const cluster = (...a: string[]) => s.lane.cluster(...a);
    const stopCluster = () => cluster('stop').catch(() => undefined);
    rmSync(s.lane.clusterEnv.KAFKA_CLUSTER_DIR!, { recursive: true, force: true });
    s.onTearDown = stopCluster;
    const t0 = Date.now();
    await cluster('start');
    s.notes.push(`cluster of 3 up in ${round((Date.now() - t0) / 1000, 1)} s`);
    const brokers = [0, 1, 2].map((i) => `127.0.0.1:${port + i}`);
    s.useCluster(brokers, 3, [{ name: 'min.insync.replicas', value: '2' }]);
    await s.setUp();
    await s.spawn();
    const total = (S.rate / 2) * S.clusterSeconds;
    const sdk = await IngestProducer.connect({ brokers, topicPrefix: s.topicPrefix, ...(client ? { client } : {}) });
    s.notes.push(`TS SDK client ${sdk.events.client}`);
    s.onTearDown = async () => {
      await sdk.close().catch(() => undefined);
      await stopCluster();
    };
    const ts = s.add(new SdkLoad(sdk, 'ts', S.rate / 2, total));
    const py = s.add(new PythonLoad(brokers, s.topicPrefix, 'py', S.rate / 2, total));
    const poison = s.load('p', S.rate / 20, (S.rate / 20) * S.clusterSeconds, poisonOnlyMix);
    await sleep(S.clusterSeconds * 300);
    // The node killed is the group's coordinator (the leader of its __consumer_offsets
    // partition), the worst case: heartbeats, commits and leadership of some partitions move at
    // once. Which node that is depends on the group name, so it is computed, not left to chance.
    const admin = s.kafka.admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: [s.topic, '__consumer_offsets'] });
    await admin.disconnect();
    const offsetsTopic = meta.topics.find((t) => t.name === '__consumer_offsets')!;
    const coordinatorPartition = javaStringHash(s.groupId) % offsetsTopic.partitions.length;
    const leader = offsetsTopic.partitions.find((p) => p.partitionId === coordinatorPartition)!.leader;
    const led = meta.topics.find((t) => t.name === s.topic)!.partitions.filter((p) => p.leader === leader).map((p) => p.partitionId);
    const killedAt = Date.now();
    await cluster('kill9', String(leader));
    s.notes.push(`kill -9 of node ${leader}, the group's coordinator and leader of partition(s) ${led.join(', ') || 'none'} of 4`);
    // Recovery counts from Kafka's failover, as it counts from the restart for the other
    // outages: until another node leads the partitions and coordinates the group (the broker
    // session timeout, then loading the group), no client can consume. The failover's own
    // length is a note.
    const failedOverAt = await waitForFailover(s, leader, CATCH_UP_TIMEOUT_MS);
    s.notes.push(failedOverAt === undefined ? 'Kafka did not fail over' : `Kafka failed over in ${round((failedOverAt - killedAt) / 1000, 1)} s`);
    s.healed(failedOverAt ?? killedAt);
    await sleep(S.clusterNodeDownS * 1000);
    await cluster('start-node', String(leader));
    s.healed();
    await Promise.all([ts.finish(), py.finish(), poison.finish()]);
    // The stream ends on valid events, as production traffic does. The raw poison producer
    // awaits each send, so it falls behind during the failover and can end after both SDKs: a
    // topic whose last 1,000 messages are more than half poison is held by the poison limit
    // (by design) until good messages follow, and the letters of that tail would never come.
    await s.add(new SdkLoad(sdk, 'tail', S.rate / 2, 1_000)).finish();
    await sdk.close();
    return `kill -9 of the leader of a busy partition of a 3-broker cluster (RF 3, min ISR 2), down ${S.clusterNodeDownS} s, while the TS (client ${sdk.events.client}) and Python SDKs produce`;
  };
}

/**
 * When Kafka has failed over from the killed node: no partition of the topic is led by it any
 * more and the group's coordinator answers (describeGroups finds the coordinator afresh each
 * time). Undefined if that did not happen within `timeoutMs`.
 */
async function waitForFailover(s: Scenario, killed: number, timeoutMs: number): Promise<number | undefined> {
  // No retries inside kafkajs: each poll answers at once, so the moment is known to ~100 ms.
  const admin = s.kafka.admin({ retry: { retries: 0 } });
  await admin.connect();
  try {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
      try {
        const meta = await admin.fetchTopicMetadata({ topics: [s.topic] });
        if (meta.topics[0]!.partitions.some((p) => p.leader === killed || p.leader < 0)) continue;
        const { groups } = await admin.describeGroups([s.groupId]);
        if (groups[0] !== undefined) return Date.now();
      } catch {
        // the coordinator is not there yet (or is loading the group)
      }
    }
    return undefined;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Compiles the worker child's sources (chaos/, bench/, consumers/, lib/, sql/) file by file into
 * BUILD_DIR with esbuild, keeping the tree: no type check (npm run typecheck does that), and each
 * module keeps its own import.meta.url (PACKAGE_ROOT finds the repository from there). Packages,
 * the producer SDK included, load from node_modules as they do in production.
 */
async function compileFaultWorker(): Promise<void> {
  const dirs = ['chaos', 'bench', 'consumers', 'lib', 'sql'];
  const entryPoints = dirs.flatMap((d) => readdirSync(join(ROOT, d)).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => join(ROOT, d, f)));
  await esbuild({ entryPoints, outdir: join(ROOT, BUILD_DIR), outbase: ROOT, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
}

/** Kafka's choice of a group's __consumer_offsets partition: Java's String.hashCode, made non-negative (Utils.abs). */
function javaStringHash(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
  return h & 0x7fffffff;
}

async function main(): Promise<void> {
  // Checked before anything is started, deleted or connected to.
  const unknown = (ONLY ?? []).filter((n) => !(n in scenarios));
  if (unknown.length > 0) {
    process.stderr.write(`chaos: --only names no scenario ${JSON.stringify(unknown.join(','))}; the scenarios: ${Object.keys(scenarios).join(', ')}; see --help\n`);
    process.exit(2);
  }
  const names = Object.keys(scenarios).filter((n) => !ONLY || ONLY.includes(n));
  await compileFaultWorker();
  lanes.push(...Array.from({ length: Math.min(LANES, names.length) }, (_, i) => new Lane(i)));
  log(`${QUICK ? 'quick' : 'full'} run of ${names.join(', ')}; ${lanes.map((l) => `lane ${l.index}: broker ${l.brokers[0]}, redis ${l.redis.url}`).join('; ')}; run dir ${RUN_DIR}`);
  const results = new Map<string, Result>();
  // Longest first (the order only: each lane takes the next one when it is free).
  const queue = [...names].sort((a, b) => (QUICK_SECONDS[b] ?? 1e9) - (QUICK_SECONDS[a] ?? 1e9));
  const running = new Set<string>();
  const next = (): string | undefined => {
    const i = queue.findIndex((n) => !(OWN_CLUSTER.has(n) && [...running].some((r) => OWN_CLUSTER.has(r))));
    return i < 0 ? undefined : queue.splice(i, 1)[0];
  };
  // Lanes waiting for a cluster scenario (OWN_CLUSTER) to end look at the queue again when any scenario ends.
  const waiting = new Set<() => void>();
  const ended = () => {
    for (const wake of waiting) wake();
    waiting.clear();
  };
  const laneRun = async (lane: Lane) => {
    await lane.start();
    while (queue.length > 0) {
      const name = next();
      if (name === undefined) {
        await new Promise<void>((r) => waiting.add(r));
        continue;
      }
      running.add(name);
      try {
        results.set(name, await runScenario(name, lane));
      } finally {
        running.delete(name);
        ended();
      }
    }
  };
  let ordered: Result[] = [];
  try {
    const outcomes = await Promise.allSettled(lanes.map(laneRun));
    for (const o of outcomes) if (o.status === 'rejected') log(`a lane stopped: ${String((o.reason as Error)?.stack ?? o.reason)}`);
  } finally {
    killChildren();
    await Promise.all(lanes.map((l) => l.stop().catch(() => undefined)));
    ordered = names.flatMap((n) => results.get(n) ?? []);
    mkdirSync(join(RESULTS, '..'), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify({ run: new Date().toISOString(), mode: QUICK ? 'quick' : 'full', lanes: lanes.length, commit: COMMIT, results: ordered }, null, 2)}\n`);
    writeFileSync(RESULTS.replace(/\.json$/, '.md'), resultsTable(ordered));
    log(`results in ${RESULTS}`);
  }
  const failed = ordered.filter((r) => !r.ok);
  const missing = names.filter((n) => !results.has(n));
  log(`${ordered.length - failed.length} of ${names.length} scenarios passed${failed.length ? `; failed: ${failed.map((r) => r.scenario).join(', ')}` : ''}${missing.length ? `; not run: ${missing.join(', ')}` : ''}`);
  process.exitCode = failed.length > 0 || missing.length > 0 ? 1 : 0;
}

/** One scenario on `lane`: set up, fault, catch up, audit, tear down; then the lane's services are up again. */
async function runScenario(name: string, lane: Lane): Promise<Result> {
  const started = Date.now();
  const s = new Scenario(name, lane);
  log(`${name}: start (lane ${lane.index})`);
  let fault = name;
  let error: unknown;
  try {
    // Bounded: a scenario that hangs fails by itself and the suite goes on.
    await withTimeout(name, SCENARIO_TIMEOUT_MS, async () => {
      if (!OWN_CLUSTER.has(name)) await s.setUp();
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
  await Promise.resolve(s.onTearDown?.()).catch(() => undefined);
  const failedChecks = r.checks.map((c) => `${c.ok ? 'check' : 'CHECK FAILED'}: ${c.name} (${c.detail})`);
  log(
    `${r.ok ? 'PASS' : 'FAIL'} ${name} (${r.seconds} s, lane ${lane.index}): events ${r.eventsProduced} + poison ${r.poisonProduced}, topic records ${r.topicRecords} of ${r.expectedTopicRecords}, rows ${r.rowsFound}, distinct coordinates ${r.distinctCoordinates}, distinct ids ${r.distinctEventIds}, dead letters ${r.deadLetters} (missing ${r.lettersMissing}, extra ${r.lettersExtra}), rollup ${r.rollup.rollupRows} rows for ${r.rollup.rawRows} raw over ${r.rollup.hours} hours (${r.rollup.mismatches} differ), manual steps ${r.manualSteps}, recovered in ${r.secondsToRecover ?? '-'} s${failedChecks.length ? `; ${failedChecks.join('; ')}` : ''}${r.notes.length ? `; ${r.notes.join('; ')}` : ''}${r.error ? `; error: ${r.error}` : ''}`,
  );
  // Services the scenario killed come back for the lane's next one.
  await lane.redis.start().catch(() => undefined);
  if (!(await lane.brokerAnswers())) await lane.startBroker();
  return r;
}

/** The fault matrix of docs/reliability.md, from a run's results. */
function resultsTable(results: Result[]): string {
  const head =
    '| scenario | result | events produced | rows found | distinct coordinates | distinct ids | poison produced | dead letters | rollup rows / raw rows | manual steps | seconds to recover | notes |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  const fmt = (n: number) => (n < 0 ? 'n/a' : n.toLocaleString('en-US'));
  const notes = (r: Result) => [...r.checks.map((c) => `${c.ok ? '' : 'FAILED: '}${c.name}: ${c.detail}`), ...r.notes, ...(r.error ? [r.error] : [])].join('; ').replace(/\|/g, '\\|').slice(0, 400);
  return (
    head +
    results
      .map(
        (r) =>
          `| \`${r.scenario}\` | ${r.ok ? 'pass' : '**FAIL**'} | ${fmt(r.eventsProduced)} | ${fmt(r.rowsFound)} | ${fmt(r.distinctCoordinates)} | ${fmt(r.distinctEventIds)} | ${fmt(r.poisonProduced)} | ${fmt(r.deadLetters)} | ${fmt(r.rollup.rollupRows)} / ${fmt(r.rollup.rawRows)}${r.rollup.mismatches > 0 ? ` (${r.rollup.mismatches} of ${r.rollup.hours} hours differ)` : ''} | ${r.manualSteps} | ${r.secondsToRecover ?? 'not recovered'} | ${notes(r)} |`,
      )
      .join('\n') +
    '\n'
  );
}


// Interrupted: the workers, then every lane's broker, Redis and cluster (bounded), not left running.
process.on('SIGINT', () => {
  killChildren();
  void Promise.race([Promise.all(lanes.map((l) => l.stop().catch(() => undefined))), sleep(30_000)]).finally(() => process.exit(130));
});
await main();
process.exit(process.exitCode ?? 0);
