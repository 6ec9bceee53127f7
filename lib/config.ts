import { z } from 'zod';

/**
 * The one configuration object. Parsed and validated once at start-up
 * (`loadConfig`), frozen, and each component receives only its own section.
 * Every default is documented in docs/configuration.md; units are in the names.
 */
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.string().min(1)).min(1),
);

export const configSchema = z.strictObject({
  kafka: z.strictObject({
    /** Bootstrap brokers, host:port. Env KAFKA_BROKERS (comma-separated). */
    brokers: list.default(['127.0.0.1:9092']),
    /** kafkajs client id. Env KAFKA_CLIENT_ID. */
    clientId: z.string().min(1).default('ingest'),
    /** Prefix of every topic: topic = prefix + event type name. Env KAFKA_TOPIC_PREFIX. */
    topicPrefix: z.string().regex(/^[A-Za-z0-9._-]*$/, 'only letters, digits, ".", "_" and "-"').default('ingest.'),
    /** Partitions for topics the worker creates when missing. Env KAFKA_TOPIC_PARTITIONS. */
    topicPartitions: int(1, 10_000).default(4),
    /** Replication factor for topics the worker creates. Env KAFKA_REPLICATION_FACTOR. */
    replicationFactor: int(1, 10).default(1),
    connectionTimeoutMs: int(100).default(10_000),
  }),
  clickhouse: z.strictObject({
    /** Real ClickHouse server, e.g. http://user:pass@host:8123. Unset: embedded chDB. Env CLICKHOUSE_URL. */
    url: z.string().url().optional(),
    /** Database holding the tables. Env CLICKHOUSE_DATABASE. */
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a plain identifier').default('ingest'),
    /** Data directory of the embedded engine; one process owns it. Env CHDB_PATH. */
    dataPath: z.string().min(1).default('./data/chdb'),
    requestTimeoutMs: int(100).default(60_000),
  }),
  redis: z.strictObject({
    /** Env REDIS_URL. */
    url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
    /**
     * Accept a Redis that keeps nothing on disk (no AOF, no RDB) or evicts keys; it loses the
     * dead letters at its restart, so only for throwaway setups. Env REDIS_ALLOW_VOLATILE.
     */
    allowVolatile: z.coerce.boolean().default(false),
  }),
  consumer: z.strictObject({
    /** Kafka consumer group. Env INGEST_GROUP_ID. */
    groupId: z.string().min(1).default('ingest-workers'),
    /** Consumer-group members run by this process (they share one ClickHouse client). Env INGEST_CONCURRENCY. */
    concurrency: int(1, 64).default(1),
    /** Event types this worker consumes; "all" or a comma list of names. Env INGEST_EVENT_TYPES. */
    eventTypes: z.union([z.literal('all'), list]).default('all'),
    /**
     * A member silent this long (crashed) loses its partitions. Short, so a worker restarted
     * after a kill -9 consumes again within about 10 s (it waits out the dead member's session).
     * Safe because nothing blocks heartbeats: fetch callbacks return at once and inserts retry
     * off the fetch loop. Env INGEST_SESSION_TIMEOUT_MS.
     */
    sessionTimeoutMs: int(6_000, 300_000).default(8_000),
    /** Heartbeat interval to the group coordinator; well under a third of the session timeout. Env INGEST_HEARTBEAT_INTERVAL_MS. */
    heartbeatIntervalMs: int(100, 60_000).default(1_000),
    /**
     * How long a rebalance waits for every member to rejoin. A member that crashed holds the
     * whole group back this long, so keep it short: our members never block in a fetch
     * callback. Env INGEST_REBALANCE_TIMEOUT_MS.
     */
    rebalanceTimeoutMs: int(1_000, 600_000).default(10_000),
    /** Create missing topics at start-up (dev/test). Env KAFKA_CREATE_TOPICS. */
    createTopics: z.coerce.boolean().default(true),
    /** Where a new group starts reading. Env INGEST_FROM_BEGINNING. */
    fromBeginning: z.coerce.boolean().default(true),
  }),
  batch: z.strictObject({
    /**
     * Flush a partition's batch at this many rows. Env BATCH_MAX_ROWS. 50k rather than 10k:
     * fewer, larger parts mean far fewer merges; a 1M-row drain went from 34-47k to 51-66k rows/s
     * (BENCHMARKS.md). Slow partitions flush by age (maxWaitMs) long before they get there.
     */
    maxRows: int(1, 10_000_000).default(50_000),
    /** Flush at this many encoded bytes. Env BATCH_MAX_BYTES. */
    maxBytes: int(1_024).default(16 * 1024 * 1024),
    /** Flush a batch this long after its first message was sent (see BatchStage.ageStart). Env BATCH_MAX_WAIT_MS. */
    maxWaitMs: int(1, 3_600_000).default(1_000),
  }),
  insert: z.strictObject({
    /**
     * First retry wait of a failing insert (or offset commit), doubling per attempt up to
     * maxBackoffMs, each drawn with full jitter in [0, ceiling]. Retries never stop on their own:
     * the rows wait in Kafka (see insert-stage.ts). Env INSERT_INITIAL_BACKOFF_MS.
     */
    initialBackoffMs: int(1).default(200),
    /** Ceiling of the retry wait of a failing insert. Env INSERT_MAX_BACKOFF_MS. */
    maxBackoffMs: int(1).default(10_000),
    /** Batches inserted at once across all tables. Env INSERT_CONCURRENCY. */
    concurrency: int(1, 64).default(4),
  }),
  memory: z.strictObject({
    /** Budget for the estimated memory of all buffered messages (see memoryCost); past it fetching pauses. Env MAX_BUFFERED_BYTES. */
    maxBufferedBytes: int(1_024).default(256 * 1024 * 1024),
  }),
  deadLetter: z.strictObject({
    /** BullMQ queue `${queuePrefix}-dead-letters`: failed batches retry there, dead letters rest in its failed state. Env DLQ_QUEUE_PREFIX. */
    queuePrefix: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-"').default('ingest'),
    /** Attempts of the retry worker before a failed batch rests as dead. Env DLQ_ATTEMPTS. */
    attempts: int(1, 1_000).default(8),
    /** First retry delay; doubles each attempt. Env DLQ_BACKOFF_MS. */
    backoffMs: int(0).default(1_000),
    /** Run the retry worker in this process. Env DLQ_RETRY_WORKER. */
    runRetryWorker: z.coerce.boolean().default(true),
    /** Stop the worker when more than this share of a window's messages is poison (a bad deploy). Env DLQ_MAX_POISON_RATIO. */
    maxPoisonRatio: z.coerce.number().min(0).max(1).default(0.5),
    /** Messages per window for the poison ratio; below this count the limit does not apply. Env DLQ_POISON_WINDOW. */
    poisonWindow: int(1).default(1_000),
  }),
  metrics: z.strictObject({
    /** /metrics, /healthz, /readyz port; 0 picks a free port. Env METRICS_PORT. */
    port: int(0, 65_535).default(9464),
    host: z.string().default('0.0.0.0'),
    /** How often consumer lag and freshness are read. Env LAG_INTERVAL_MS. */
    lagIntervalMs: int(100).default(5_000),
    /** A partition with lag and no committed progress for this long counts as stuck. Env STUCK_AFTER_MS. */
    stuckAfterMs: int(1_000).default(300_000),
    /** How often /readyz's probes of Kafka, ClickHouse and Redis run (each bounded by this too). Env READY_PROBE_INTERVAL_MS. */
    readyProbeIntervalMs: int(100, 600_000).default(2_000),
  }),
  retention: z.strictObject({
    /** Days llm_logs rows are kept; 0 keeps them forever. Applied by the worker and `npm run migrate`. Env LLM_LOGS_TTL_DAYS. */
    llmLogsDays: int(0, 36_500).default(0),
    /** Days agent_actions rows are kept; 0 keeps them forever. Env AGENT_ACTIONS_TTL_DAYS. */
    agentActionsDays: int(0, 36_500).default(0),
  }),
  shutdown: z.strictObject({
    /** Bound on flush + commit + disconnect at SIGTERM. Env SHUTDOWN_TIMEOUT_MS. */
    timeoutMs: int(100).default(30_000),
  }),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };
export type ConfigOverrides = DeepPartial<{ [K in keyof ConfigInput]: NonNullable<ConfigInput[K]> }>;

/** Environment variable → config path. Unknown INGEST_* variables are rejected, so typos surface. */
const ENV: Record<string, [keyof Config, string]> = {
  KAFKA_BROKERS: ['kafka', 'brokers'],
  KAFKA_CLIENT_ID: ['kafka', 'clientId'],
  KAFKA_TOPIC_PREFIX: ['kafka', 'topicPrefix'],
  KAFKA_TOPIC_PARTITIONS: ['kafka', 'topicPartitions'],
  KAFKA_REPLICATION_FACTOR: ['kafka', 'replicationFactor'],
  KAFKA_CREATE_TOPICS: ['consumer', 'createTopics'],
  CLICKHOUSE_URL: ['clickhouse', 'url'],
  CLICKHOUSE_DATABASE: ['clickhouse', 'database'],
  CHDB_PATH: ['clickhouse', 'dataPath'],
  REDIS_URL: ['redis', 'url'],
  REDIS_ALLOW_VOLATILE: ['redis', 'allowVolatile'],
  INGEST_GROUP_ID: ['consumer', 'groupId'],
  INGEST_CONCURRENCY: ['consumer', 'concurrency'],
  INGEST_EVENT_TYPES: ['consumer', 'eventTypes'],
  INGEST_FROM_BEGINNING: ['consumer', 'fromBeginning'],
  INGEST_SESSION_TIMEOUT_MS: ['consumer', 'sessionTimeoutMs'],
  INGEST_REBALANCE_TIMEOUT_MS: ['consumer', 'rebalanceTimeoutMs'],
  INGEST_HEARTBEAT_INTERVAL_MS: ['consumer', 'heartbeatIntervalMs'],
  BATCH_MAX_ROWS: ['batch', 'maxRows'],
  BATCH_MAX_BYTES: ['batch', 'maxBytes'],
  BATCH_MAX_WAIT_MS: ['batch', 'maxWaitMs'],
  INSERT_INITIAL_BACKOFF_MS: ['insert', 'initialBackoffMs'],
  INSERT_MAX_BACKOFF_MS: ['insert', 'maxBackoffMs'],
  INSERT_CONCURRENCY: ['insert', 'concurrency'],
  MAX_BUFFERED_BYTES: ['memory', 'maxBufferedBytes'],
  DLQ_QUEUE_PREFIX: ['deadLetter', 'queuePrefix'],
  DLQ_ATTEMPTS: ['deadLetter', 'attempts'],
  DLQ_BACKOFF_MS: ['deadLetter', 'backoffMs'],
  DLQ_RETRY_WORKER: ['deadLetter', 'runRetryWorker'],
  DLQ_MAX_POISON_RATIO: ['deadLetter', 'maxPoisonRatio'],
  DLQ_POISON_WINDOW: ['deadLetter', 'poisonWindow'],
  METRICS_PORT: ['metrics', 'port'],
  METRICS_HOST: ['metrics', 'host'],
  LAG_INTERVAL_MS: ['metrics', 'lagIntervalMs'],
  STUCK_AFTER_MS: ['metrics', 'stuckAfterMs'],
  READY_PROBE_INTERVAL_MS: ['metrics', 'readyProbeIntervalMs'],
  SHUTDOWN_TIMEOUT_MS: ['shutdown', 'timeoutMs'],
  LLM_LOGS_TTL_DAYS: ['retention', 'llmLogsDays'],
  AGENT_ACTIONS_TTL_DAYS: ['retention', 'agentActionsDays'],
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const BOOL_ENV = new Set(['true', 'false', '1', '0']);

/**
 * Builds the config from environment variables and explicit overrides (overrides win).
 * Throws ConfigError listing every bad value with the variable or path that set it.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Readonly<Config> {
  const raw: Record<string, Record<string, unknown>> = {};
  for (const key of Object.keys(configSchema.shape)) raw[key] = {};
  const problems: string[] = [];
  const fromEnv = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    const target = ENV[name];
    if (!target) {
      if (name.startsWith('INGEST_')) problems.push(`${name}: unknown setting (known: ${Object.keys(ENV).filter((k) => k.startsWith('INGEST_')).join(', ')})`);
      continue;
    }
    const [section, key] = target;
    const isBool = ['createTopics', 'fromBeginning', 'runRetryWorker', 'allowVolatile'].includes(key);
    if (isBool && !BOOL_ENV.has(value)) {
      problems.push(`${name}: expected true, false, 1 or 0, got ${JSON.stringify(value)}`);
      continue;
    }
    raw[section]![key] = isBool ? value === 'true' || value === '1' : value;
    fromEnv.set(`${section}.${key}`, name);
  }
  for (const [section, values] of Object.entries(overrides)) {
    if (!(section in raw)) {
      problems.push(`${section}: unknown config section`);
      continue;
    }
    Object.assign(raw[section]!, values);
    for (const key of Object.keys(values ?? {})) fromEnv.delete(`${section}.${key}`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.join('.');
      const envName = fromEnv.get(path);
      problems.push(`${path}${envName ? ` (env ${envName})` : ''}: ${issue.message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return deepFreeze(parsed.data!);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
