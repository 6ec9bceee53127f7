import { accessSync, constants } from 'node:fs';
import { z } from 'zod';
import { ConfigError, KAFKA_ENV, KAFKA_SECRET_ENV, KAFKA_SETTINGS, commaList, issueMessage, kafkaSecurityProblems } from '@kafka-clickhouse-ingest/producer/kafka-settings.js';
import { REGISTRY_ENV, REGISTRY_SECRET_ENV, REGISTRY_SETTINGS, registryEnvName, registryProblems } from '@kafka-clickhouse-ingest/producer/schema-registry-settings.js';
import { resolveSecretFiles } from './secrets.js';

// The Kafka connection settings (brokers, client id, topic prefix, TLS and SASL) are the producer
// package's: the SDK reads the same KAFKA_* variables with the same checks.
export { ConfigError, SASL_MECHANISMS, SECURITY_PROTOCOLS, brokerProblem, kafkaSecurityProblems, type KafkaSecurity, type SaslMechanism, type SecurityProtocol } from '@kafka-clickhouse-ingest/producer/kafka-settings.js';

/**
 * The one configuration object. Parsed and validated once at start-up
 * (`loadConfig`), frozen, and each component receives only its own section.
 * Every default is documented in docs/configuration.md; units are in the names.
 */
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = commaList;

export const configSchema = z.strictObject({
  kafka: z.strictObject({
    /** Bootstrap brokers, host:port. Env KAFKA_BROKERS (comma-separated). */
    brokers: KAFKA_SETTINGS.brokers.default(['127.0.0.1:9092']),
    /** kafkajs client id. Env KAFKA_CLIENT_ID. */
    clientId: KAFKA_SETTINGS.clientId.default('ingest'),
    /** Prefix of every topic: topic = prefix + event type name. Env KAFKA_TOPIC_PREFIX. */
    topicPrefix: KAFKA_SETTINGS.topicPrefix.default('ingest.'),
    /** Partitions for topics the worker creates when missing. Env KAFKA_TOPIC_PARTITIONS. */
    topicPartitions: int(1, 10_000).default(4),
    /** Replication factor for topics the worker creates. Env KAFKA_REPLICATION_FACTOR. */
    replicationFactor: int(1, 10).default(1),
    connectionTimeoutMs: int(100).default(10_000),
    /**
     * Longest wait between two attempts of a Kafka request, and before a crashed consumer
     * restarts. kafkajs's own default (30 s, doubling from 300 ms) makes a leader or coordinator
     * election of a few seconds cost 20 s and more of ingest; capped, the client tries again
     * within this long of the cluster being back. Env KAFKA_RETRY_MAX_MS.
     */
    retryMaxMs: int(100, 60_000).default(2_000),
    // Security (docs/security.md): KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*, as the
    // producer package defines them. Cross-field rules (a mechanism needs its credentials, ...)
    // are checked by kafkaSecurityProblems. Unset protocol means PLAINTEXT.
    securityProtocol: KAFKA_SETTINGS.securityProtocol,
    saslMechanism: KAFKA_SETTINGS.saslMechanism,
    saslUsername: KAFKA_SETTINGS.saslUsername,
    saslPassword: KAFKA_SETTINGS.saslPassword,
    saslOauthbearerTokenFile: KAFKA_SETTINGS.saslOauthbearerTokenFile,
    sslCaLocation: KAFKA_SETTINGS.sslCaLocation,
    sslCertificateLocation: KAFKA_SETTINGS.sslCertificateLocation,
    sslKeyLocation: KAFKA_SETTINGS.sslKeyLocation,
    sslKeyPassword: KAFKA_SETTINGS.sslKeyPassword,
  }),
  clickhouse: z.strictObject({
    /** Real ClickHouse server, e.g. http://user:pass@host:8123. Unset: embedded chDB. Env CLICKHOUSE_URL. */
    url: z.string().url().optional(),
    /** Database holding the tables. Env CLICKHOUSE_DATABASE. */
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a plain identifier').default('ingest'),
    /** Data directory of the embedded engine; one process owns it. Env CHDB_PATH. */
    dataPath: z.string().min(1).default('./data/chdb'),
    requestTimeoutMs: int(100).default(60_000),
    /** User, when not in the URL. Env CLICKHOUSE_USER. */
    username: z.string().min(1).optional(),
    /** Secret; wins over a password in the URL. Env CLICKHOUSE_PASSWORD (or CLICKHOUSE_PASSWORD_FILE). */
    password: z.string().min(1).optional(),
    /** PEM CA file an https:// server's certificate must chain to; unset: the system CAs. Env CLICKHOUSE_CA_CERT. */
    caCert: z.string().min(1).optional(),
    /** PEM client certificate (mutual TLS), with tlsKey. Env CLICKHOUSE_TLS_CERT. */
    tlsCert: z.string().min(1).optional(),
    /** PEM private key of tlsCert. Env CLICKHOUSE_TLS_KEY. */
    tlsKey: z.string().min(1).optional(),
    /**
     * Cluster of the tables: the migrations create them ON CLUSTER with Replicated engines
     * (sql/ddl.ts, docs/deployment.md). Unset: a single server (also right for ClickHouse Cloud).
     * Env CLICKHOUSE_CLUSTER.
     */
    cluster: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a plain identifier').optional(),
    /** With a cluster: local tables on every shard plus Distributed tables over them. Env CLICKHOUSE_SHARDING. */
    sharding: z.coerce.boolean().optional(),
  }).refine((c) => !c.sharding || c.cluster, { message: 'sharding needs a cluster (CLICKHOUSE_CLUSTER)', path: ['sharding'] }),
  schemaRegistry: z.strictObject({
    /**
     * Base URL of the schema registry's Confluent-compatible API, for Confluent-framed messages
     * (docs/schema-registry.md). Unset: no registry; single-object messages need none. Env SCHEMA_REGISTRY_URL.
     */
    url: REGISTRY_SETTINGS.url.optional(),
    /** Basic auth user. Env SCHEMA_REGISTRY_USERNAME (or SCHEMA_REGISTRY_USERNAME_FILE). */
    username: REGISTRY_SETTINGS.username,
    /** Secret: basic auth password. Env SCHEMA_REGISTRY_PASSWORD (or SCHEMA_REGISTRY_PASSWORD_FILE). */
    password: REGISTRY_SETTINGS.password,
    /** Secret: bearer token, instead of basic auth. Env SCHEMA_REGISTRY_TOKEN (or SCHEMA_REGISTRY_TOKEN_FILE). */
    token: REGISTRY_SETTINGS.token,
    /** PEM CA file an https:// registry's certificate must chain to; unset: the system CAs. Env SCHEMA_REGISTRY_CA_CERT. */
    caCert: REGISTRY_SETTINGS.caCert,
  }),
  redis: z.strictObject({
    /**
     * Env REDIS_URL. The default is the project's own Redis (scripts/services.sh, port
     * REDIS_PORT=6380 of scripts/env.sh), not a machine's Redis on 6379, which may keep nothing
     * on disk.
     */
    url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').default('redis://127.0.0.1:6380'),
    /** ACL user, when not in the URL. Env REDIS_USERNAME. */
    username: z.string().min(1).optional(),
    /** Secret (requirepass or the ACL user's); wins over a password in the URL. Env REDIS_PASSWORD (or REDIS_PASSWORD_FILE). */
    password: z.string().min(1).optional(),
    /** PEM CA file a rediss:// server's certificate must chain to; unset: the system CAs. Env REDIS_CA_CERT. */
    caCert: z.string().min(1).optional(),
    /**
     * Accept a Redis that cannot keep what it acknowledges (no AOF, RDB snapshots only,
     * appendfsync everysec or no, without WAITAOF or a replica to wait on) or evicts keys; it can
     * lose dead letters the worker has committed past, so only for throwaway setups. Env
     * REDIS_ALLOW_VOLATILE.
     */
    allowVolatile: z.coerce.boolean().default(false),
    /**
     * Longest wait for a dead letter to be durable (WAITAOF on Redis ≥ 7.2, WAIT on a replicated
     * Redis) before its write fails and is retried; the partition waits meanwhile. Default
     * 5,000 ms. Env REDIS_DURABILITY_TIMEOUT_MS.
     */
    durabilityTimeoutMs: int(1, 600_000).default(5_000),
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
    /**
     * A name for this worker that its restarts keep (a pod's name, a container's name), unique
     * among the group's workers. A worker with one removes its previous run's members from the
     * group as it starts (crashed-member.ts), so after a kill -9 and a restart it takes their
     * partitions at once instead of after their session timeout. Unset: the dead members leave
     * when their sessions expire. Env INGEST_INSTANCE_ID.
     */
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, ".", "_" and "-" only, at most 100 characters (it becomes part of the Kafka client id)')
      .optional(),
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
    /**
     * How long a healable poison letter (unknown_fingerprint: a newer writer schema; rejected_by_clickhouse:
     * a row the table refused) is retried by the retry worker before it rests as dead. Default a day. Env DLQ_RETRY_PERIOD_MS.
     */
    retryPeriodMs: int(0).default(24 * 60 * 60 * 1_000),
    /** Cap of the doubling retry delay of healable letters (from backoffMs). Env DLQ_MAX_BACKOFF_MS. */
    maxBackoffMs: int(0).default(10 * 60 * 1_000),
    /** Bound of the queue in letters not yet landed or dropped; when reached the worker waits (nothing dropped). Env DLQ_MAX_LETTERS. */
    maxLetters: int(1).default(100_000),
    /** Bound of the queue in bytes of those letters (payload and detail). Env DLQ_MAX_BYTES. */
    maxBytes: int(1_024).default(512 * 1024 * 1024),
    /** First pause of a topic stopped by the poison limit (poison share, or its table refusing every row); doubles. Env DLQ_STOP_INITIAL_PAUSE_MS. */
    stopInitialPauseMs: int(1).default(5_000),
    /** Longest pause of a stopped topic between probes. Env DLQ_STOP_MAX_PAUSE_MS. */
    stopMaxPauseMs: int(1).default(5 * 60 * 1_000),
  }),
  metrics: z.strictObject({
    /** /metrics, /healthz, /readyz port; 0 picks a free port. Env METRICS_PORT. */
    port: int(0, 65_535).default(9464),
    host: z.string().default('0.0.0.0'),
    /**
     * Serve the read-only query endpoint (GET /query/<helper>, consumers/query-endpoint.ts) on
     * this port, so `npm run query` works while the worker owns the embedded engine. Off by
     * default: it reads the data, and the metrics port is the one Prometheus (and so a whole
     * monitoring namespace) can reach. `npm run demo` turns it on. Env QUERY_ENDPOINT.
     */
    queryEndpoint: z.coerce.boolean().default(false),
    /**
     * Bearer token the query endpoint requires (`Authorization: Bearer <token>`); /metrics,
     * /healthz and /readyz stay open. Required when the endpoint listens beyond loopback
     * (METRICS_HOST other than 127.0.0.1 / ::1 / localhost). At least 16 characters. Env
     * QUERY_TOKEN (or QUERY_TOKEN_FILE); clients send the same variable.
     */
    queryToken: z.string().min(16, 'at least 16 characters').optional(),
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

/**
 * Environment variable → config path. An unknown variable under one of GUARDED_PREFIXES is
 * rejected (naming the nearest setting), so typos surface.
 */
export const ENV: Readonly<Record<string, [keyof Config, string]>> = {
  // KAFKA_BROKERS, KAFKA_CLIENT_ID, KAFKA_TOPIC_PREFIX, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*.
  ...Object.fromEntries(Object.entries(KAFKA_ENV).map(([name, key]) => [name, ['kafka', key] as [keyof Config, string]])),
  KAFKA_TOPIC_PARTITIONS: ['kafka', 'topicPartitions'],
  KAFKA_REPLICATION_FACTOR: ['kafka', 'replicationFactor'],
  KAFKA_RETRY_MAX_MS: ['kafka', 'retryMaxMs'],
  KAFKA_CREATE_TOPICS: ['consumer', 'createTopics'],
  // SCHEMA_REGISTRY_URL, _USERNAME, _PASSWORD, _TOKEN, _CA_CERT, as the producer package defines them.
  ...Object.fromEntries(Object.entries(REGISTRY_ENV).map(([name, key]) => [name, ['schemaRegistry', key] as [keyof Config, string]])),
  CLICKHOUSE_URL: ['clickhouse', 'url'],
  CLICKHOUSE_DATABASE: ['clickhouse', 'database'],
  CHDB_PATH: ['clickhouse', 'dataPath'],
  CLICKHOUSE_CLUSTER: ['clickhouse', 'cluster'],
  CLICKHOUSE_SHARDING: ['clickhouse', 'sharding'],
  REDIS_URL: ['redis', 'url'],
  REDIS_USERNAME: ['redis', 'username'],
  REDIS_PASSWORD: ['redis', 'password'],
  REDIS_CA_CERT: ['redis', 'caCert'],
  CLICKHOUSE_USER: ['clickhouse', 'username'],
  CLICKHOUSE_PASSWORD: ['clickhouse', 'password'],
  CLICKHOUSE_CA_CERT: ['clickhouse', 'caCert'],
  CLICKHOUSE_TLS_CERT: ['clickhouse', 'tlsCert'],
  CLICKHOUSE_TLS_KEY: ['clickhouse', 'tlsKey'],
  REDIS_ALLOW_VOLATILE: ['redis', 'allowVolatile'],
  REDIS_DURABILITY_TIMEOUT_MS: ['redis', 'durabilityTimeoutMs'],
  INGEST_GROUP_ID: ['consumer', 'groupId'],
  INGEST_CONCURRENCY: ['consumer', 'concurrency'],
  INGEST_EVENT_TYPES: ['consumer', 'eventTypes'],
  INGEST_FROM_BEGINNING: ['consumer', 'fromBeginning'],
  INGEST_INSTANCE_ID: ['consumer', 'instanceId'],
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
  DLQ_RETRY_PERIOD_MS: ['deadLetter', 'retryPeriodMs'],
  DLQ_MAX_BACKOFF_MS: ['deadLetter', 'maxBackoffMs'],
  DLQ_MAX_LETTERS: ['deadLetter', 'maxLetters'],
  DLQ_MAX_BYTES: ['deadLetter', 'maxBytes'],
  DLQ_STOP_INITIAL_PAUSE_MS: ['deadLetter', 'stopInitialPauseMs'],
  DLQ_STOP_MAX_PAUSE_MS: ['deadLetter', 'stopMaxPauseMs'],
  METRICS_PORT: ['metrics', 'port'],
  METRICS_HOST: ['metrics', 'host'],
  QUERY_ENDPOINT: ['metrics', 'queryEndpoint'],
  QUERY_TOKEN: ['metrics', 'queryToken'],
  LAG_INTERVAL_MS: ['metrics', 'lagIntervalMs'],
  STUCK_AFTER_MS: ['metrics', 'stuckAfterMs'],
  READY_PROBE_INTERVAL_MS: ['metrics', 'readyProbeIntervalMs'],
  SHUTDOWN_TIMEOUT_MS: ['shutdown', 'timeoutMs'],
  LLM_LOGS_TTL_DAYS: ['retention', 'llmLogsDays'],
  AGENT_ACTIONS_TTL_DAYS: ['retention', 'agentActionsDays'],
};

/**
 * Settings that may hold a secret: each is also read from a file, `${name}_FILE` (Docker and
 * Kubernetes secrets), and no error message ever echoes their values.
 */
export const SECRET_ENV = [...KAFKA_SECRET_ENV, ...REGISTRY_SECRET_ENV, 'CLICKHOUSE_URL', 'CLICKHOUSE_PASSWORD', 'REDIS_URL', 'REDIS_PASSWORD', 'QUERY_TOKEN'] as const;

/**
 * Prefixes of our settings. A variable under one of them that is neither a setting (ENV, or a
 * secret's `_FILE`) nor listed in NOT_CONFIG_ENV is refused, naming the nearest setting: a typo
 * such as BATCH_MAXROWS must not leave the default silently in place. The short names of single
 * settings (MAX_BUFFERED_BYTES, LAG_INTERVAL_MS, ...) are guarded by their first two words, so
 * that unrelated MAX_* or LAG_* variables pass. DEAD_LETTER_ is not ours, but it is the name
 * one would guess for a DLQ_ setting.
 */
export const GUARDED_PREFIXES = [
  'KAFKA_', 'SCHEMA_REGISTRY_', 'CLICKHOUSE_', 'CHDB_', 'REDIS_', 'INGEST_', 'BATCH_', 'INSERT_', 'DLQ_', 'DEAD_LETTER_', 'METRICS_', 'QUERY_', 'SHUTDOWN_',
  'MAX_BUFFERED_', 'LLM_LOGS_', 'AGENT_ACTIONS_', 'LAG_INTERVAL_', 'STUCK_AFTER_', 'READY_PROBE_',
] as const;

/**
 * Variables under GUARDED_PREFIXES that are not configuration but legitimately set where a worker
 * or a command runs; each is accepted and ignored by loadConfig.
 */
const NOT_CONFIG_ENV: ReadonlySet<string> = new Set([
  // The local services' ports and directories: exported by scripts/env.sh, read by
  // scripts/kafka.sh and scripts/services.sh, the test helpers, chaos/ and bench/.
  'KAFKA_PORT',
  'KAFKA_CONTROLLER_PORT',
  'KAFKA_SECURE_PORT',
  'KAFKA_HEAP',
  'KAFKA_DATA_DIR',
  'KAFKA_CACHE_DIR',
  'REDIS_PORT',
  // Apache Kafka's own command-line tools (kafka-run-class.sh), where an operator uses them.
  'KAFKA_HEAP_OPTS',
  'KAFKA_OPTS',
  'KAFKA_JVM_PERFORMANCE_OPTS',
  'KAFKA_LOG4J_OPTS',
  'KAFKA_JMX_OPTS',
  'KAFKA_GC_LOG_OPTS',
  'KAFKA_DEBUG',
  // The producer SDK's defaults (producers/), in a process that both produces and consumes,
  // and scripts/test.sh's run of the SDK's tests with INGEST_PRODUCER_CLIENT=platformatic.
  'INGEST_PRODUCER_CLIENT',
  'INGEST_PRODUCER_COMPRESSION',
  'INGEST_PRODUCER_WIRE_FORMAT',
  // The Python interpreter of the Python SDK's tests and benchmark.
  'INGEST_PYTHON',
  // The Python SDK's flush at interpreter exit (producers/python, ingest_sdk/exit_flush.py).
  'INGEST_FLUSH_AT_EXIT',
  // npm run query: the worker to query through (cli/query.ts), not a worker setting.
  'QUERY_WORKER_URL',
]);

/**
 * Kubernetes injects, for every Service of the namespace (unless the pod sets
 * enableServiceLinks: false), <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT[_<PORT NAME>],
 * <NAME>_PORT=tcp://…, <NAME>_PORT_<n>_TCP[_PROTO|_PORT|_ADDR]: a Service called
 * ingest-worker, kafka or redis would otherwise stop the worker.
 */
function isServiceLink(name: string, value: string): boolean {
  if (/^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$/.test(name)) return true;
  return /^[A-Z0-9_]+_PORT$/.test(name) && /^(tcp|udp|sctp):\/\//.test(value);
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** Every variable loadConfig reads: the settings and the `_FILE` of each secret. */
const KNOWN_ENV: readonly string[] = [...Object.keys(ENV), ...SECRET_ENV.map((n) => `${n}_FILE`)];

/** The known variable nearest to `name` (DEAD_LETTER_x is also compared as DLQ_x). */
export function nearestSetting(name: string): string {
  const forms = name.startsWith('DEAD_LETTER_') ? [name, `DLQ_${name.slice('DEAD_LETTER_'.length)}`] : [name];
  let best = KNOWN_ENV[0]!;
  let bestDistance = Infinity;
  for (const known of KNOWN_ENV) {
    const distance = Math.min(...forms.map((f) => editDistance(f, known)));
    if (distance < bestDistance) [best, bestDistance] = [known, distance];
  }
  return best;
}

/** Why `name` is refused as an unknown setting, or undefined when it is no concern of ours. */
function unknownVariableProblem(name: string, value: string): string | undefined {
  if (ENV[name] || KNOWN_ENV.includes(name) || NOT_CONFIG_ENV.has(name)) return undefined;
  if (!GUARDED_PREFIXES.some((p) => name.startsWith(p))) return undefined;
  if (isServiceLink(name, value)) return undefined;
  return `${name}: unknown setting; did you mean ${nearestSetting(name)}? (docs/configuration.md lists every setting)`;
}

/** Settings naming a file the process must be able to read at start-up. */
const FILE_SETTINGS: Record<string, string> = {
  'kafka.saslOauthbearerTokenFile': 'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE',
  'kafka.sslCaLocation': 'KAFKA_SSL_CA_LOCATION',
  'kafka.sslCertificateLocation': 'KAFKA_SSL_CERTIFICATE_LOCATION',
  'kafka.sslKeyLocation': 'KAFKA_SSL_KEY_LOCATION',
  'clickhouse.caCert': 'CLICKHOUSE_CA_CERT',
  'clickhouse.tlsCert': 'CLICKHOUSE_TLS_CERT',
  'clickhouse.tlsKey': 'CLICKHOUSE_TLS_KEY',
  'redis.caCert': 'REDIS_CA_CERT',
  'schemaRegistry.caCert': 'SCHEMA_REGISTRY_CA_CERT',
};

const BOOL_ENV = new Set(['true', 'false', '1', '0']);

/**
 * Builds the config from environment variables and explicit overrides (overrides win).
 * Throws ConfigError listing every bad value with the variable or path that set it.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Readonly<Config> {
  const raw: Record<string, Record<string, unknown>> = {};
  for (const key of Object.keys(configSchema.shape)) raw[key] = {};
  const { values, problems } = resolveSecretFiles(env, SECRET_ENV);
  const fromEnv = new Map<string, string>();
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === '') continue;
    const target = ENV[name];
    if (!target) {
      const problem = unknownVariableProblem(name, value);
      if (problem) problems.push(problem);
      continue;
    }
    const [section, key] = target;
    const isBool = ['createTopics', 'fromBeginning', 'runRetryWorker', 'queryEndpoint', 'sharding', 'allowVolatile'].includes(key);
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
  // A database in CLICKHOUSE_URL's path (https://host:8443/db) names the database, unless
  // CLICKHOUSE_DATABASE (or an override) does.
  const chUrl = raw.clickhouse!.url;
  if (typeof chUrl === 'string' && raw.clickhouse!.database === undefined) {
    const db = URL.canParse(chUrl) ? decodeURIComponent(new URL(chUrl).pathname.replace(/^\/+|\/+$/g, '')) : '';
    if (db) raw.clickhouse!.database = db;
  }
  const parsed = configSchema.safeParse(raw);
  // A setting is `section.key`; an issue of a list item (kafka.brokers.1) belongs to its list.
  const settingOf = (path: string) => path.split('.').slice(0, 2).join('.');
  const setting = (path: string) => {
    const envName = fromEnv.get(settingOf(path));
    return `${path}${envName ? ` (env ${envName})` : ''}`;
  };
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.join('.');
      // Zod quotes the received value in some messages; never for a setting that may hold a secret.
      const secret = SECRET_ENV.some((n) => fromEnv.get(settingOf(path)) === n) || /password|url|token/i.test(path);
      problems.push(`${setting(path)}: ${issueMessage(issue.message, secret)}`);
    }
  } else {
    const envOf = (field: string) => [...Object.entries(ENV)].find(([, [sec, key]]) => sec === 'kafka' && key === field)?.[0] ?? field;
    problems.push(...kafkaSecurityProblems(parsed.data.kafka, 'unknown', (f) => envOf(f)));
    for (const [path, envName] of Object.entries(FILE_SETTINGS)) {
      const [section, key] = path.split('.') as [keyof Config, string];
      const file = (parsed.data[section] as Record<string, unknown>)[key];
      if (typeof file !== 'string') continue;
      try {
        accessSync(file, constants.R_OK);
      } catch (err) {
        problems.push(`${envName} (${path}): cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    const c = parsed.data.clickhouse;
    if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) problems.push('CLICKHOUSE_TLS_CERT and CLICKHOUSE_TLS_KEY go together (a client certificate and its key)');
    if ((c.caCert || c.tlsCert) && !c.url?.startsWith('https://')) problems.push('CLICKHOUSE_CA_CERT / CLICKHOUSE_TLS_CERT need an https:// CLICKHOUSE_URL');
    if (parsed.data.redis.caCert && !parsed.data.redis.url.startsWith('rediss://')) problems.push('REDIS_CA_CERT needs a rediss:// REDIS_URL (TLS)');
    problems.push(...registryProblems(parsed.data.schemaRegistry, (f) => `schemaRegistry.${f} (env ${registryEnvName(f)})`));
    const m = parsed.data.metrics;
    // An unauthenticated reader of the data must not be one network hop away.
    if (m.queryEndpoint && !m.queryToken && !isLoopback(m.host)) {
      problems.push(`QUERY_ENDPOINT is true and METRICS_HOST is ${m.host}: set QUERY_TOKEN (the endpoint then requires it as a bearer token) or listen on 127.0.0.1`);
    }
    problems.push(...crossFieldProblems(parsed.data, setting));
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return deepFreeze(parsed.data!);
}

/**
 * Rules between settings, each naming both (`insert.maxBackoffMs (env INSERT_MAX_BACKOFF_MS)`).
 * Not a rule: BATCH_MAX_BYTES above MAX_BUFFERED_BYTES. The budget then pauses fetching before
 * a batch fills by bytes, and batches seal by rows or age instead (a small budget is a tested
 * setup, test/integration/backpressure.test.ts).
 */
function crossFieldProblems(c: Config, setting: (path: string) => string): string[] {
  const problems: string[] = [];
  const value = (path: string) => {
    const [section, key] = path.split('.') as [keyof Config, string];
    return (c[section] as Record<string, unknown>)[key] as number;
  };
  const rule = (subject: string, relation: '<' | '>=' | '>', other: string, why: string) => {
    const [a, b] = [value(subject), value(other)];
    const ok = relation === '<' ? a < b : relation === '>' ? a > b : a >= b;
    const words = { '<': 'less than', '>': 'greater than', '>=': 'at least' }[relation];
    if (!ok) problems.push(`${setting(subject)}: ${a} must be ${words} ${setting(other)} = ${b}; ${why}`);
  };
  rule('insert.maxBackoffMs', '>=', 'insert.initialBackoffMs', 'the ceiling of an insert retry wait cannot be below its first wait');
  rule('deadLetter.maxBackoffMs', '>=', 'deadLetter.backoffMs', 'the cap of a letter retry delay cannot be below its first delay');
  rule('deadLetter.stopMaxPauseMs', '>=', 'deadLetter.stopInitialPauseMs', 'the longest pause of a stopped topic cannot be below its first');
  rule('consumer.heartbeatIntervalMs', '<', 'consumer.sessionTimeoutMs', 'a member that does not heartbeat within its session timeout is dropped from the group (keep it under a third)');
  rule('metrics.stuckAfterMs', '>', 'metrics.lagIntervalMs', 'lag is read every LAG_INTERVAL_MS, so a shorter stuck time would flag every partition with lag');
  return problems;
}

/** A host only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
