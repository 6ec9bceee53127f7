import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, createTopicsWithLeaders } from '../../lib/kafka.js';
import { DeliveryError, IngestProducer, PRODUCER_CLIENTS, type ProducerClient } from '@kafka-clickhouse-ingest/producer';
import { EventValidationError } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { costEvents } from '../helpers/cost-events.js';
import { testConfig, waitFor } from '../helpers/stack.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
/** Stops and starts this test run's own broker (KAFKA_PORT, from scripts/env.sh); asynchronous, so producers keep retrying meanwhile. */
const kafkaSh = (cmd: 'stop' | 'start') => run('bash', [resolve(root, 'scripts/kafka.sh'), cmd], { env: process.env, cwd: root });

/** Records on the topic: the sum of its partitions' high watermarks (no transactions, so every offset is a record; a duplicate write would add one). */
async function recordsOn(admin: Admin, topic: string): Promise<number> {
  // Retried: right after a restart the broker answers before it leads its partitions again.
  const offsets = await waitFor('the topic offsets', () => admin.fetchTopicOffsets(topic), 120_000, 500);
  return offsets.reduce((n, p) => n + Number(p.high), 0);
}

/**
 * The SDK across a real broker restart, with both clients: an emit pending while the broker is
 * down for 5 s (plus its stop and start) is delivered once (idempotent producer, the same
 * request retried within deliveryTimeoutMs); with a short delivery timeout the call rejects
 * naming the broker and the cause. Refused input sends nothing.
 */
describe.each(PRODUCER_CLIENTS)('producer delivery with client %s', (client: ProducerClient) => {
  const config = testConfig();
  const topic = `${config.kafka.topicPrefix}cost_metrics`;
  const brokers = [...config.kafka.brokers];
  let admin: Admin;

  beforeAll(async () => {
    admin = createKafka(config.kafka).admin();
    await admin.connect();
    // Retried: the other client's tests restart the broker just before.
    await waitFor('the topic', () => createTopicsWithLeaders(admin, [{ topic, numPartitions: 4, replicationFactor: 1 }]).then(() => true), 120_000, 1_000);
  }, 180_000);
  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('refuses a 10 MB event and implausible timestamps at the call, naming the field, and sends nothing', async () => {
    const producer = await IngestProducer.connect({ brokers, topicPrefix: config.kafka.topicPrefix, client });
    try {
      const [good] = costEvents(1, 0);
      const huge = await producer.emitCostMetrics([good!, { ...good!, region: 'x'.repeat(10 * 1024 * 1024) }]).catch((e: unknown) => e);
      expect(huge).toBeInstanceOf(EventValidationError);
      expect((huge as Error).message).toMatch(/^cost_metrics\[1\]\.region: the encoded event is \d+ bytes, over maxBatchBytes/);
      await expect(producer.emitCostMetrics([{ ...good!, timestamp: Date.UTC(3000, 0, 1) }])).rejects.toThrow(/cost_metrics\[0\]\.timestamp: .*more than a day ahead/);
      await expect(producer.emitCostMetrics([{ ...good!, timestamp: Math.floor(Date.now() / 1000) }])).rejects.toThrow(/cost_metrics\[0\]\.timestamp: .*before 2000-01-01.*seconds/);
      await producer.flush();
    } finally {
      await producer.close();
    }
    expect(await recordsOn(admin, topic)).toBe(0);
  }, 60_000);

  it('delivers an emit pending across a broker restart exactly once', async () => {
    const producer = await IngestProducer.connect({ brokers, topicPrefix: config.kafka.topicPrefix, client, lingerMs: 0, deliveryTimeoutMs: 240_000 });
    try {
      await producer.emitCostMetrics(costEvents(200, 0));
      await kafkaSh('stop');
      let settled = false;
      const pending = producer.emitCostMetrics(costEvents(1_000, 200)).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 5_000));
      expect(settled).toBe(false); // still waiting and retrying, not failed
      await kafkaSh('start');
      await pending;
      await producer.emitCostMetrics(costEvents(300, 1_200)); // the producer keeps working after it
    } finally {
      await producer.close();
      await kafkaSh('start'); // no-op when up; restores the broker if the test failed while it was down
    }
    await admin.disconnect();
    await admin.connect();
    expect(await recordsOn(admin, topic)).toBe(1_500);
  }, 300_000);

  it('rejects after deliveryTimeoutMs with a DeliveryError naming the broker and the cause', async () => {
    const producer = await IngestProducer.connect({ brokers, topicPrefix: config.kafka.topicPrefix, client, lingerMs: 0, deliveryTimeoutMs: 4_000 });
    const before = await recordsOn(admin, topic);
    try {
      await kafkaSh('stop');
      const started = Date.now();
      const err = await producer.emitCostMetrics(costEvents(50, 5_000)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeliveryError);
      expect((err as Error).message).toContain(`brokers ${brokers.join(', ')} within the delivery timeout`);
      expect((err as Error).message).not.toMatch(/: Producing messages failed\.$/);
      // A cause after the colon, from the client's root errors (connection refused, timeouts).
      expect((err as Error).message).toMatch(/attempts over \d+ ms\): \S+/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
      expect(Date.now() - started).toBeLessThan(60_000);
    } finally {
      await kafkaSh('start');
      await producer.close().catch(() => undefined);
    }
    await admin.disconnect();
    await admin.connect();
    expect(await recordsOn(admin, topic)).toBe(before);
  }, 300_000);
});
