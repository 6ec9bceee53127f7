import { Kafka, logLevel, type Admin, type LogEntry } from 'kafkajs';
import type { Config } from './config.js';
import { createLogger } from './logger.js';

/** The one kafkajs client factory; kafkajs log lines go through our structured logger. */
export function createKafka(config: Config['kafka'], clientIdSuffix = ''): Kafka {
  const log = createLogger({ component: 'kafkajs' });
  return new Kafka({
    clientId: `${config.clientId}${clientIdSuffix}`,
    brokers: [...config.brokers],
    connectionTimeout: config.connectionTimeoutMs,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        // kafkajs logs expected rebalance churn at ERROR ("The group is rebalancing"); keep it at warn.
        if (level <= logLevel.WARN) log.warn(message, rest);
        else if (level === logLevel.INFO) log.info(message, rest);
      },
  });
}

export function topicName(config: Pick<Config['kafka'], 'topicPrefix'>, eventTypeName: string): string {
  return `${config.topicPrefix}${eventTypeName}`;
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
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((topic) => ({ topic, numPartitions: config.topicPartitions, replicationFactor: config.replicationFactor })),
  });
}
