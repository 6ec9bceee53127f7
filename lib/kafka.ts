import { Kafka, logLevel, type Admin, type LogEntry } from 'kafkajs';
import type { Config } from './config.js';
import { createLogger } from './logger.js';

/** kafkajs's message when a fetch offset is outside the log and it resets to the default offset. */
const OFFSET_RESET = 'Offset out of range, resetting to default offset';

/**
 * The one kafkajs client factory; kafkajs log lines go through our structured logger.
 * `onOffsetReset` hears of every partition kafkajs resets because its fetch offset was outside the
 * log: below the log start, that means records the group never read were deleted (retention
 * shorter than an outage), which no other signal shows. kafkajs has no event for it, only this log line.
 */
export function createKafka(config: Config['kafka'], clientIdSuffix = '', onOffsetReset?: (topic: string, partition: number) => void): Kafka {
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
        if (message === OFFSET_RESET) {
          onOffsetReset?.(String(rest.topic), Number(rest.partition));
          log.error('fetch offset outside the partition log (records deleted before they were consumed?); reset to the default offset', rest);
          return;
        }
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
