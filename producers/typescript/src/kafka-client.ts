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
        const line = kafkajsLine(level, message, rest);
        if (line) log[line.level](line.message, line.fields);
      },
  });
}

/**
 * States a broker passes through while it starts, fails over or rebalances: kafkajs logs them at
 * ERROR or WARN with a stack trace ("Crash: KafkaJSProtocolError: The coordinator is loading…"),
 * which reads as a failure although kafkajs waits them out by itself. They are info here.
 */
const TRANSIENT = [
  /coordinator is loading/i,
  /group coordinator is not available/i,
  /not the correct coordinator/i,
  /no leader for this topic-partition/i,
  /leader is not available/i,
  /the group is rebalancing/i,
  /Restarting the consumer in/,
  /not aware of this member/i,
];
/**
 * kafkajs warns when an idempotent producer has a bounded number of retries; the SDK resends a
 * failed batch with the same sequence numbers (kafkajs rolls them back), so nothing is written
 * twice, and the warning would only alarm.
 */
const DROPPED = [/Limiting retries for the idempotent producer/];

/**
 * One kafkajs log entry as our log line: its level by meaning (transient states at info), and no
 * stack trace (kafkajs attaches its own internals' stack to connection errors; the message and
 * the error name say what happened). Undefined: not logged.
 */
export function kafkajsLine(level: number, message: string, fields: Record<string, unknown>): { level: 'info' | 'warn'; message: string; fields: Record<string, unknown> } | undefined {
  if (DROPPED.some((p) => p.test(message))) return undefined;
  const { stack: _stack, ...rest } = fields;
  if (TRANSIENT.some((p) => p.test(message) || (typeof rest.error === 'string' && p.test(rest.error)))) return { level: 'info', message, fields: rest };
  // kafkajs logs expected rebalance churn at ERROR; everything at WARN or above stays a warning.
  if (level <= logLevel.WARN) return { level: 'warn', message, fields: rest };
  if (level === logLevel.INFO) return { level: 'info', message, fields: rest };
  return undefined;
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
