import type { Admin, ITopicConfig } from 'kafkajs';
import type { Config } from './config.js';
import { kafkaSecurity, platformaticSecurityOptions, type OAuthBearerProvider } from '@kafka-clickhouse-ingest/producer/kafka-security.js';

// The kafkajs client factory, the security resolution and the Kafka errors are the producer
// package's (the SDK connects with them too); the worker imports them from here.
export { createKafka, kafkaRetry, topicName, type KafkaClientConfig } from '@kafka-clickhouse-ingest/producer/kafka-client.js';
export { kafkaSecurity, platformaticSecurityOptions, type OAuthBearerProvider, type ResolvedKafkaSecurity } from '@kafka-clickhouse-ingest/producer/kafka-security.js';
export { KafkaAuthorizationError, KafkaConnectError, asAuthorizationError } from '@kafka-clickhouse-ingest/producer/kafka-errors.js';
export { KAFKA_SECURITY_ENV } from '@kafka-clickhouse-ingest/producer/kafka-settings.js';

/**
 * The connection options of the worker's @platformatic/kafka clients (topic ids, single-record
 * reads, member removal, diagnosis): the worker's brokers, connect timeout and security, under a
 * client id naming what the client is for.
 */
export function platformaticClientOptions(config: Config['kafka'], purpose: string, oauthBearerProvider?: OAuthBearerProvider) {
  return {
    clientId: `${config.clientId}-${purpose}`,
    bootstrapBrokers: [...config.brokers],
    connectTimeout: config.connectionTimeoutMs,
    ...platformaticSecurityOptions(kafkaSecurity(config, oauthBearerProvider)),
  };
}

/**
 * The retry options of a consumer: few attempts, so a consumer that cannot reach a broker
 * crashes and restarts (kafkajs restarts it after maxRetryTime at most) within a few seconds.
 * kafkajs learns a new partition leader or group coordinator only when it (re)starts or on
 * errors other than a refused connection: with a leader or coordinator killed, a consumer that
 * kept retrying fetched from and heartbeated to the dead broker until it came back (the fault
 * suite's broker kill -9 in a 3-broker cluster: 18-29 s; restarted quickly, a few seconds after
 * Kafka moved the leadership).
 */
export function consumerRetry(maxRetryTime = 2_000): { initialRetryTime: number; maxRetryTime: number; retries: number } {
  return { initialRetryTime: Math.min(250, maxRetryTime), maxRetryTime, retries: 3 };
}

/**
 * Creates the topics that do not exist yet with the configured partitions and replication.
 * For development and tests; production topics are provisioned by the operator
 * (docs/deployment.md), with KAFKA_CREATE_TOPICS=false.
 */
export async function ensureTopics(admin: Admin, config: Pick<Config['kafka'], 'topicPartitions' | 'replicationFactor'>, topics: string[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length === 0) return;
  await createTopicsWithLeaders(admin, missing.map((topic) => ({ topic, numPartitions: config.topicPartitions, replicationFactor: config.replicationFactor })));
}

/**
 * kafkajs `createTopics`, then a wait until every partition of them has a leader. Not kafkajs's
 * own `waitForLeaders`: a broker can answer the metadata request right after the creation with
 * UNKNOWN_TOPIC_OR_PARTITION (its metadata cache not yet updated; seen on a busy broker), which
 * kafkajs's wait gives up on at once, so a worker starting with KAFKA_CREATE_TOPICS failed.
 * Here that answer, like a partition without a leader, means asking again, up to `timeoutMs`.
 * Topics another client created in between count as created. Resolves to whether this call
 * created all of them (kafkajs's answer).
 */
export async function createTopicsWithLeaders(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<boolean> {
  let created: boolean;
  try {
    created = await admin.createTopics({ waitForLeaders: false, topics });
  } catch (err) {
    if (!isTopicAlreadyExists(err)) throw err;
    created = false;
  }
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let waiting: string;
    try {
      const meta = await admin.fetchTopicMetadata({ topics: names });
      const leaderless = meta.topics.flatMap((t) => t.partitions.filter((p) => p.leader < 0).map((p) => `${t.name}[${p.partitionId}]`));
      if (leaderless.length === 0) return created;
      waiting = `no leader yet for ${leaderless.slice(0, 5).join(', ')}`;
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') throw err;
      waiting = `the broker answers ${type}`;
    }
    if (Date.now() >= deadline) throw new Error(`created topics ${names.join(', ')}, but after ${timeoutMs} ms ${waiting}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** kafkajs's refusal of a topic that exists (alone, or as each error of its aggregate). */
export function isTopicAlreadyExists(err: unknown): boolean {
  const e = err as { type?: string; message?: string; errors?: unknown[] };
  if (e?.type === 'TOPIC_ALREADY_EXISTS') return true;
  if (Array.isArray(e?.errors) && e.errors.length > 0) return e.errors.every(isTopicAlreadyExists);
  return /already exists/i.test(String(e?.message ?? ''));
}
