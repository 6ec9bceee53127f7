import { describe, expect, it } from 'vitest';
import { logLevel } from 'kafkajs';
import { kafkajsLine } from '@kafka-clickhouse-ingest/producer/kafka-client.js';

describe('kafkajs log entries as our log lines', () => {
  it('a broker starting or failing over is one info line without a stack trace', () => {
    const crash = kafkajsLine(logLevel.ERROR, "Crash: KafkaJSProtocolError: The coordinator is loading and hence can't process requests for this group", { groupId: 'g', stack: 'KafkaJSProtocolError\n    at …' });
    expect(crash).toEqual({ level: 'info', message: "Crash: KafkaJSProtocolError: The coordinator is loading and hence can't process requests for this group", fields: { groupId: 'g' } });
    expect(kafkajsLine(logLevel.ERROR, 'Response GroupCoordinator(key: 10, version: 2)', { error: 'The group coordinator is not available', broker: 'b:9092' })?.level).toBe('info');
    expect(kafkajsLine(logLevel.WARN, 'Restarting the consumer in 250ms', { retryTime: 250 })?.level).toBe('info');
    expect(kafkajsLine(logLevel.ERROR, 'The group is rebalancing, re-joining', { error: 'The group is rebalancing' })?.level).toBe('info');
  });

  it('a real problem stays a warning, still without kafkajs internals\' stack', () => {
    const refused = kafkajsLine(logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', { broker: '127.0.0.1:9092', stack: 'Error: connect ECONNREFUSED\n    at TCPConnectWrap…' });
    expect(refused).toEqual({ level: 'warn', message: 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', fields: { broker: '127.0.0.1:9092' } });
    expect(kafkajsLine(logLevel.ERROR, 'Crash: KafkaJSNonRetriableError: Topic authorization failed', { groupId: 'g' })?.level).toBe('warn');
  });

  it("kafkajs's warning about bounded idempotent retries is not logged; debug lines are not either", () => {
    expect(kafkajsLine(logLevel.WARN, 'Limiting retries for the idempotent producer may invalidate EoS guarantees', {})).toBeUndefined();
    expect(kafkajsLine(logLevel.DEBUG, 'Request Metadata(key: 3, version: 6)', {})).toBeUndefined();
  });
});
