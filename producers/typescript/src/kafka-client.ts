import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { KafkaSecurity } from './kafka-settings.js';
import { kafkaSecurity, kafkajsSasl, type OAuthBearerProvider } from './kafka-security.js';
import { createLogger } from './logger.js';

/** What a kafkajs client is built from: the worker's `kafka` config section has all of it, the SDK its options. */
export interface KafkaClientConfig extends KafkaSecurity {
  brokers: readonly string[];
  clientId: string;
  connectionTimeoutMs: number;
  /** Longest wait between two attempts of a request (kafkaRetry). Default 2,000 ms. */
  retryMaxMs?: number;
}

/** kafkajs's message when a fetch offset is outside the log and it resets to the default offset. */
const OFFSET_RESET = 'Offset out of range, resetting to default offset';

/**
 * The one kafkajs client factory; kafkajs log lines go through our structured logger.
 * `onOffsetReset` hears of every partition kafkajs resets because its fetch offset was outside the
 * log: below the log start, that means records the group never read were deleted (retention
 * shorter than an outage), which no other signal shows. kafkajs has no event for it, only this log line.
 */
export function createKafka(
  config: KafkaClientConfig,
  clientIdSuffix = '',
  onOffsetReset?: (topic: string, partition: number) => void,
  oauthBearerProvider?: OAuthBearerProvider,
): Kafka {
  const log = createLogger({ component: 'kafkajs' });
  const security = kafkaSecurity(config, oauthBearerProvider);
  return new Kafka({
    clientId: `${config.clientId}${clientIdSuffix}`,
    brokers: [...config.brokers],
    connectionTimeout: config.connectionTimeoutMs,
    retry: kafkaRetry(config.retryMaxMs),
    ...(security.tls ? { ssl: security.tls } : {}),
    ...(security.sasl ? { sasl: kafkajsSasl(security.sasl) } : {}),
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

/**
 * kafkajs's retry options for a cap on the wait between attempts. The number of attempts keeps
 * the window before a request is given up (and a consumer crash-restarts, or the SDK's own
 * delivery loop tries again) about as long as kafkajs's default one (~10 s), so capping the
 * waits makes the attempts more frequent, not the patience shorter.
 */
export function kafkaRetry(maxRetryTime = 2_000): { initialRetryTime: number; maxRetryTime: number; retries: number } {
  const initialRetryTime = Math.min(250, maxRetryTime);
  let retries = 0;
  for (let wait = initialRetryTime, total = 0; total < 10_000 && retries < 50; wait = Math.min(wait * 2, maxRetryTime)) {
    total += wait;
    retries++;
  }
  return { initialRetryTime, maxRetryTime, retries };
}

/** The topic of an event type: prefix + name (the worker and the SDK must agree). */
export function topicName(config: { topicPrefix: string }, eventTypeName: string): string {
  return `${config.topicPrefix}${eventTypeName}`;
}
