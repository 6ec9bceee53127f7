import type { Server } from 'node:http';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import type { Admin } from 'kafkajs';
import { Registry } from 'prom-client';
import { openClickHouse } from '../lib/clickhouse.js';
import { ConfigError, type Config } from '../lib/config.js';
import { explainGroupCoordinatorError } from '../lib/group-access.js';
import { KafkaConnectError, createKafka, ensureTopics, topicName, type OAuthBearerProvider } from '../lib/kafka.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { createWorkerMetrics, type WorkerMetrics } from '../lib/metrics.js';
import { DISTRIBUTED_INSERT_SETTINGS, layoutOf } from '../sql/ddl.js';
import { checkRedisPersistence, createRedis, type RedisDurability } from '../lib/redis.js';
import { migrate } from '../sql/migrate.js';
import { applyRetention } from '../sql/retention.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes as allEventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { SchemaLookup } from '@kafka-clickhouse-ingest/producer/schemas/schema-lookup.js';
import type { OffsetCommitter } from './commit-offsets.js';
import { ConsumerMember, type CommittedOffsetReader } from './consumer-member.js';
import { DeadLetterQueue } from './dead-letter-queue.js';
import { letterChecks } from './letter-healer.js';
import { leavePreviousRun, platformaticMemberRemover } from './crashed-member.js';
import { installKafkaCodecs } from '@kafka-clickhouse-ingest/producer/kafka-codecs.js';
import { decodeMessage } from './decode-stage.js';
import { ReadinessProbes, startHealthServer } from './health-server.js';
import { describeClickHouse, queryEndpoint } from './query-endpoint.js';
import { bodyFormatOf, clickHouseInserter, recordInserter, type RowInserter } from './clickhouse-inserter.js';
import { LagMonitor } from './lag-monitor.js';
import { MemoryBudget, Semaphore } from './memory-budget.js';
import { committedOffsetReader, platformaticRecordReader } from './resume-position.js';
import { platformaticTopicIdReader, TopicIds } from './topic-ids.js';
import { RegistryAuthError, RegistrySchemas } from './schema-registry.js';
import { createRegistryClient } from '@kafka-clickhouse-ingest/producer/schema-registry-client.js';

export interface WorkerOptions {
  /** Event types known to this worker (default: all of schemas/). Tests pass older sets to play an old worker. */
  eventTypes?: readonly EventType[];
  /** Wraps the ClickHouse inserter, e.g. to inject failures in tests. */
  wrapInserter?: (inner: RowInserter) => RowInserter;
  /** Wraps the offset committer, e.g. to simulate a crash between insert and commit in tests. */
  wrapCommitter?: (inner: OffsetCommitter) => OffsetCommitter;
  registry?: Registry;
  log?: Logger;
  /**
   * OAUTHBEARER token source (KAFKA_SASL_MECHANISM=OAUTHBEARER), called at every
   * authentication; e.g. MSK IAM with aws-msk-iam-sasl-signer-js (docs/security.md).
   */
  oauthBearerProvider?: OAuthBearerProvider;
}

/**
 * A worker process: `consumer.concurrency` consumer-group members sharing one ClickHouse
 * client (required by the embedded engine), one memory budget, one dead-letter queue and its
 * retry worker, a lag monitor and the /metrics, /healthz, /readyz server.
 */
export class IngestWorker {
  private members: ConsumerMember[] = [];
  private stopped = false;
  private fatal: unknown;
  private fatalListeners: Array<(err: unknown) => void> = [];
  private oauthBearerProvider: OAuthBearerProvider | undefined;
  /** Set at the first fatal error; `fatal` (what the listeners hear) once it is explained. */
  private dying = false;
  private probes: ReadinessProbes | undefined;
  metricsUrl = '';
  private closeRecords: () => Promise<void> = async () => undefined;

  private constructor(
    readonly config: Readonly<Config>,
    readonly clickhouse: ClickHouseClient,
    readonly metrics: WorkerMetrics,
    readonly deadLetters: DeadLetterQueue,
    private readonly redis: Redis,
    private readonly admin: Admin,
    private readonly lag: LagMonitor,
    private server: Server | undefined,
    private readonly depthTimer: NodeJS.Timeout,
    private readonly log: Logger,
  ) {}

  static async start(config: Readonly<Config>, opts: WorkerOptions = {}): Promise<IngestWorker> {
    const log = opts.log ?? createLogger({ component: 'worker', group: config.consumer.groupId });
    const types = selectEventTypes(config.consumer.eventTypes, opts.eventTypes ?? allEventTypes);
    const typeOfTopic = new Map(types.map((t) => [topicName(config.kafka, t.name), t] as const));
    const lookup = new SchemaLookup(opts.eventTypes ?? allEventTypes);
    const metrics = createWorkerMetrics(opts.registry ?? new Registry(), { defaults: true });
    // First, before any connection: a registry that refuses our credentials stops the start.
    const registry = await startRegistry(config, lookup, typeOfTopic, log, metrics);

    // Zero-valued series from the start, so rate() sees the first increase after a scrape.
    for (const [topic, type] of typeOfTopic) {
      metrics.messagesConsumed.inc({ topic }, 0);
      metrics.rowsInserted.inc({ table: type.table }, 0);
      metrics.rowsDeduplicated.inc({ table: type.table }, 0);
      metrics.bytesInserted.inc({ table: type.table }, 0);
    }
    // Redis first: a Redis that would lose the dead letters is refused before anything else starts.
    const redis = createRedis(config.redis, {}, log.child({ component: 'redis' }));
    await redis.connect();
    let durability: RedisDurability;
    try {
      ({ durability } = await checkRedisPersistence(redis, config.redis.url, config.redis.allowVolatile, log));
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    const clickhouse = await openClickHouse(config.clickhouse);
    const layout = layoutOf(config.clickhouse);
    const applied = await migrate(clickhouse, undefined, { layout });
    if (applied.applied.length > 0) log.info('migrations applied', { applied: applied.applied });
    await applyRetention(clickhouse, config.retention, layout);

    const baseInsert = clickHouseInserter(clickhouse, opts.eventTypes ?? allEventTypes, layout.kind === 'sharded' ? DISTRIBUTED_INSERT_SETTINGS : {});
    const insert = opts.wrapInserter ? opts.wrapInserter(baseInsert) : baseInsert;
    // A letter write resolves once durable, as the start-up check found this Redis can promise.
    const deadLetters = new DeadLetterQueue(redis, config.deadLetter, metrics, log.child({ component: 'dead-letters' }), { durability, durabilityTimeoutMs: config.redis.durabilityTimeoutMs });
    // BullMQ re-emits its connection's errors on the queue and, with no listener, prints them
    // with console.error (multi-line); the Redis client already logged the outage once.
    deadLetters.queue.on('error', (err) => log.debug('dead-letter queue: redis error', { err: { name: err.name, message: err.message } }));
    installKafkaCodecs();
    // With an instance id, the members connect under a client id of their own, which tells this
    // worker's previous run's members apart in the group (crashed-member.ts previousRunMembers).
    const clientIdSuffix = config.consumer.instanceId ? `-${config.consumer.instanceId}` : '';
    const kafka = createKafka(config.kafka, clientIdSuffix, (topic) => metrics.offsetResets.inc({ topic }), opts.oauthBearerProvider);
    const admin = kafka.admin();
    try {
      await admin.connect();
    } catch (err) {
      redis.disconnect();
      await clickhouse.close().catch(() => undefined);
      throw new KafkaConnectError(config.kafka.brokers, config.kafka, err);
    }
    if (config.consumer.createTopics) await ensureTopics(admin, config.kafka, [...typeOfTopic.keys()]);
    if (config.deadLetter.runRetryWorker) {
      // A letter is healed only once the group committed past it and its row is not in the
      // table yet (healPoisonLetter): Kafka's committed offsets and ClickHouse.
      deadLetters.startRetryWorker({
        insert: recordInserter(insert, opts.eventTypes ?? allEventTypes),
        decode: (topic, value) => {
          const type = typeOfTopic.get(topic);
          if (!type) throw new Error(`topic ${topic} is not consumed by this worker`);
          return { table: type.table, record: decodeMessage(lookup, type, value) };
        },
        ...letterChecks(admin, config.consumer.groupId, clickhouse, opts.eventTypes ?? allEventTypes),
      });
    }

    const lag = new LagMonitor(admin, clickhouse, config.consumer.groupId, typeOfTopic, metrics, { intervalMs: config.metrics.lagIntervalMs, stuckAfterMs: config.metrics.stuckAfterMs }, log);
    const depthTimer = setInterval(() => void deadLetters.depth().catch(() => undefined), config.metrics.lagIntervalMs);
    const worker = new IngestWorker(config, clickhouse, metrics, deadLetters, redis, admin, lag, undefined, depthTimer, log);
    worker.oauthBearerProvider = opts.oauthBearerProvider;

    const budget = new MemoryBudget(config.memory.maxBufferedBytes, (total) => metrics.bufferedBytes.set(total));
    const limiter = new Semaphore(config.insert.concurrency);
    // The partitions' offset protocol reads back what Kafka holds (offset and metadata), not
    // Redis; a partition with no committed offset (offsets expired, group deleted or renamed)
    // resumes above the rows its table holds of the same log (resume-position.ts).
    const records = platformaticRecordReader(config.kafka, opts.oauthBearerProvider);
    // A member that crashed and restarts leaves under its old id, so the rebalance does not wait out its session.
    const memberRemover = platformaticMemberRemover(config.kafka, config.consumer.groupId, opts.oauthBearerProvider);
    // Every offset commit first checks that its topic is still the log its assignment read (topic-ids.ts).
    const topicIdReader = platformaticTopicIdReader(config.kafka, opts.oauthBearerProvider);
    const topicIds = new TopicIds(topicIdReader.read);
    worker.closeRecords = async () => {
      await memberRemover.close();
      await records.close();
      await topicIdReader.close();
    };
    // A restart of this instance (a kill -9, a container restarted): its previous run's members
    // would hold their partitions until their sessions expire.
    if (config.consumer.instanceId) await leavePreviousRun(memberRemover, `${config.kafka.clientId}${clientIdSuffix}`, Math.max(5_000, config.kafka.connectionTimeoutMs), log);
    const readCommitted: CommittedOffsetReader = committedOffsetReader({ clickhouse, admin, records, lookup, registry }, config.consumer.groupId, typeOfTopic, log);
    for (let i = 0; i < config.consumer.concurrency; i++) {
      const member = new ConsumerMember(
        i,
        kafka,
        config,
        { config, lookup, registry, typeOfTopic, insert, bodyFormat: bodyFormatOf(clickhouse), deadLetters, budget, limiter, metrics, log: log.child({ member: i }) },
        (err) => worker.die(err),
        topicIds,
        opts.wrapCommitter,
        readCommitted,
        memberRemover.remove,
      );
      worker.members.push(member);
    }
    await Promise.all(worker.members.map((m) => m.start([...typeOfTopic.keys()])));
    lag.start();
    // /readyz is false while a dependency does not answer: a cheap round trip to each, on a timer.
    worker.probes = new ReadinessProbes(
      {
        kafka: () => admin.describeCluster(),
        clickhouse: () => clickhouse.command({ query: 'SELECT 1' }),
        // A disconnected client queues commands until it reconnects: say so at once instead.
        redis: () => (redis.status === 'ready' ? redis.ping() : Promise.reject(new Error(`connection ${redis.status}`))),
      },
      config.metrics.readyProbeIntervalMs,
      (name, ok) => metrics.dependencyUp.set({ dependency: name }, ok ? 1 : 0),
    );
    await worker.probes.start();
    const probes = worker.probes;
    const { server, url } = await startHealthServer(
      metrics.registry,
      {
        live: () => !worker.dying,
        ready: () => !worker.dying && !worker.stopped && worker.members.every((m) => m.ready),
        failing: () => probes.failing(),
      },
      config.metrics.port,
      config.metrics.host,
      config.metrics.queryEndpoint ? queryEndpoint(clickhouse, { describe: describeClickHouse(config.clickhouse), token: config.metrics.queryToken }) : undefined,
    );
    worker.server = server;
    worker.metricsUrl = url;
    log.info('worker started', { topics: [...typeOfTopic.keys()], members: config.consumer.concurrency, metrics: `${url}/metrics`, clickhouse: config.clickhouse.url ? 'server' : `embedded ${config.clickhouse.dataPath}` });
    return worker;
  }

  get partitionsAssigned(): number {
    return this.members.reduce((n, m) => n + Object.values(m.assigned).reduce((k, p) => k + p.length, 0), 0);
  }

  /** Resolves with the error that stopped the worker; registers before it happens. */
  onFatal(listener: (err: unknown) => void): void {
    if (this.fatal) listener(this.fatal);
    else this.fatalListeners.push(listener);
  }

  private die(err: unknown): void {
    if (this.dying) return;
    this.dying = true;
    // kafkajs says only "Failed to find group coordinator" when the principal has no ACL on the
    // group: ask the broker why before reporting (lib/group-access.ts).
    void explainGroupCoordinatorError(err, this.config.kafka, this.config.consumer.groupId, this.oauthBearerProvider)
      .catch(() => err)
      .then((explained) => {
        this.fatal = explained;
        this.log.error('fatal error: stopping without committing further offsets', { err: explained as Error });
        return Promise.all(this.members.map((m) => m.abort()));
      })
      .finally(() => this.fatalListeners.forEach((l) => l(this.fatal)));
  }

  /** Graceful stop: stop fetching, flush, commit, disconnect; bounded by shutdown.timeoutMs. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const timeoutMs = this.config.shutdown.timeoutMs;
    const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`shutdown exceeded ${timeoutMs} ms`)), timeoutMs).unref());
    // The dead-letter retry worker stops beside the flush, not after it: it writes back every
    // letter it holds, which took seconds past the bound when it came last.
    void this.deadLetters.stopRetrying().catch(() => undefined);
    try {
      await Promise.race([Promise.all(this.members.map((m) => m.stop(timeoutMs))), deadline]);
    } finally {
      clearInterval(this.depthTimer);
      this.probes?.stop();
      await this.lag.stop().catch(() => undefined);
      await this.deadLetters.close().catch(() => undefined);
      await this.closeRecords().catch(() => undefined);
      await this.admin.disconnect().catch(() => undefined);
      this.redis.disconnect();
      await new Promise((r) => (this.server ? this.server.close(r) : r(undefined)));
      await this.clickhouse.close().catch(() => undefined);
    }
  }
}

/**
 * The registry lookup of Confluent-framed messages, when SCHEMA_REGISTRY_URL is set, after the
 * start-up check: each topic's subject and whether the registry's latest schema resolves into
 * the event type's reader schema, one log line per subject. Refused credentials are a ConfigError
 * (exit 2); a registry that does not answer is a warning (single-object messages need none, and
 * Confluent-framed ones wait in Kafka).
 */
async function startRegistry(config: Readonly<Config>, lookup: SchemaLookup, typeOfTopic: ReadonlyMap<string, EventType>, log: Logger, metrics: WorkerMetrics): Promise<RegistrySchemas | undefined> {
  const settings = config.schemaRegistry;
  if (!settings.url) return undefined;
  const registryLog = log.child({ component: 'schema-registry' });
  const registry = new RegistrySchemas(createRegistryClient({ ...settings, url: settings.url }, config.kafka.clientId), lookup, registryLog, metrics.registryLookups);
  let checks;
  try {
    checks = await registry.checkSubjects(typeOfTopic);
  } catch (err) {
    if (!(err instanceof RegistryAuthError)) throw err;
    const how = settings.token ? 'SCHEMA_REGISTRY_TOKEN' : settings.username ? 'SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD' : 'no credentials (SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_TOKEN)';
    throw new ConfigError(`schema registry ${settings.url}: ${err.message}; check ${how}`);
  }
  for (const c of checks) {
    const fields = { subject: c.subject, topic: c.topic, latestSchemaId: c.latestId, resolvable: c.resolvable, problem: c.problem };
    if (c.resolvable === false) registryLog.warn('schema registry subject: its latest schema is not one this worker can read', fields);
    else if (c.problem && c.latestId === undefined && !c.problem.startsWith('no schema')) registryLog.warn('schema registry subject not checked', fields);
    else registryLog.info('schema registry subject read by this worker', fields);
  }
  return registry;
}

export function selectEventTypes(selection: Config['consumer']['eventTypes'], known: readonly EventType[]): EventType[] {
  if (selection === 'all') return [...known];
  const byName = new Map(known.map((t) => [t.name, t]));
  const unknown = selection.filter((n) => !byName.has(n));
  if (unknown.length > 0) throw new ConfigError(`consumer.eventTypes (env INGEST_EVENT_TYPES): unknown event type(s) ${unknown.join(', ')}; known: ${[...byName.keys()].join(', ')}`);
  return selection.map((n) => byName.get(n)!);
}
