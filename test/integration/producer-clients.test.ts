import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, createTopicsWithLeaders } from '../../lib/kafka.js';
import { IngestProducer, PRODUCER_CLIENTS, type ProducerClient } from '@kafka-clickhouse-ingest/producer';
import type { KafkaCodec } from '@kafka-clickhouse-ingest/producer/kafka-codecs.js';
import { zlibHasZstd } from '@kafka-clickhouse-ingest/producer/kafka-transport.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { costEvents } from '../helpers/cost-events.js';
import { testConfig } from '../helpers/stack.js';

/**
 * Both producer clients (ProducerOptions.client) on the real broker: the same key lands on the
 * same partition as the Java client would put it (murmur2), on a partition count that is not a
 * power of two, in emit order, and the Kafka record timestamp is the send time, not the event
 * time: the broker's time-based retention reads it, and an old event time (a backfill) would
 * let the broker delete events before a worker read them.
 * scripts/test.sh also runs the SDK's end-to-end files once more with INGEST_PRODUCER_CLIENT=kafkajs.
 */
describe.each(PRODUCER_CLIENTS)('producer client %s', (client: ProducerClient) => {
  const config = testConfig({ kafka: { topicPartitions: 6 } });
  const kafka = createKafka(config.kafka);
  const admin = kafka.admin();
  const topic = `${config.kafka.topicPrefix}cost_metrics`;

  beforeAll(async () => {
    await admin.connect();
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 6, replicationFactor: 1 }]);
  });
  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('puts each key on the Java client partition, in emit order, stamped with the send time', async () => {
    const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, client });
    expect(producer.events.client).toBe(client);
    // 200 customers so that keys with a negative murmur2 hash are among them.
    // Event times 40 days back: older than any retention a test broker keeps.
    const eventTime = Date.now() - 40 * 86_400_000;
    const events = costEvents(1_200, 0).map((e, i) => ({ ...e, customer_id: `00000000-0000-4000-8000-${String(i % 200).padStart(12, '0')}`, timestamp: eventTime + i }));
    const sendStart = Date.now();
    // Several calls, so that ordering across requests is covered too.
    for (let i = 0; i < events.length; i += 300) await producer.emitCostMetrics(events.slice(i, i + 300));
    await producer.close();
    const sendEnd = Date.now();

    const consumer = kafka.consumer({ groupId: `${config.consumer.groupId}-${client}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const seen: { partition: number; key: string; timestamp: string; instance: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${events.length} records arrived`)), 30_000);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          // Single-object encoding: 2 magic bytes and an 8-byte fingerprint before the Avro body.
          const record = costMetrics.avroType.fromBuffer(message.value!.subarray(10)) as { instance_id: string };
          seen.push({ partition, key: message.key!.toString(), timestamp: message.timestamp, instance: record.instance_id });
          if (seen.length === events.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();

    const reference = Partitioners.DefaultPartitioner();
    const meta = Array.from({ length: 6 }, (_, p) => ({ partitionId: p, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 })) as PartitionMetadata[];
    for (const r of seen) expect(r.partition, `key ${r.key}`).toBe(reference({ topic, partitionMetadata: meta, message: { key: r.key, value: null } }));
    // Per key, the order of the records is the order of emit.
    const byKey = new Map<string, string[]>();
    for (const r of seen) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r.instance]);
    for (const [key, instances] of byKey) expect(instances).toEqual(events.filter((e) => e.customer_id === key).map((e) => e.instance_id));
    for (const r of seen) {
      expect(Number(r.timestamp)).toBeGreaterThanOrEqual(sendStart - 1_000);
      expect(Number(r.timestamp)).toBeLessThanOrEqual(sendEnd + 1_000);
    }
    expect(new Set(seen.map((r) => r.instance)).size).toBe(events.length);
  });

  it('fails connect() with an error when no broker answers', async () => {
    await expect(IngestProducer.connect({ brokers: ['127.0.0.1:1'], client })).rejects.toThrow();
  });
});

describe('producer client option', () => {
  it('sends with platformatic when nothing names a client, and with kafkajs for zstd where node:zlib has none', async () => {
    const config = testConfig({ kafka: { topicPartitions: 2 } });
    const kafka = createKafka(config.kafka);
    const admin = kafka.admin();
    const topic = `${config.kafka.topicPrefix}cost_metrics`;
    const saved = process.env.INGEST_PRODUCER_CLIENT;
    delete process.env.INGEST_PRODUCER_CLIENT;
    await admin.connect();
    try {
      await createTopicsWithLeaders(admin, [{ topic, numPartitions: 2, replicationFactor: 1 }]);
      const cases: [KafkaCodec, ProducerClient][] = [
        ['gzip', 'platformatic'],
        ['zstd', zlibHasZstd() ? 'platformatic' : 'kafkajs'],
      ];
      for (const [compression, expected] of cases) {
        const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, compression });
        try {
          expect(producer.events.client).toBe(expected);
          await producer.emitCostMetrics(costEvents(50, 0));
        } finally {
          await producer.close();
        }
      }
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(100);
    } finally {
      if (saved !== undefined) process.env.INGEST_PRODUCER_CLIENT = saved;
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it('refuses an unknown client, from the option or from INGEST_PRODUCER_CLIENT, naming it', async () => {
    await expect(IngestProducer.connect({ client: 'rdkafka' as ProducerClient })).rejects.toThrow(/ProducerOptions\.client must be one of kafkajs, platformatic, got rdkafka/);
    const saved = process.env.INGEST_PRODUCER_CLIENT;
    process.env.INGEST_PRODUCER_CLIENT = 'kafka-js';
    try {
      await expect(IngestProducer.connect({})).rejects.toThrow(/INGEST_PRODUCER_CLIENT must be one of kafkajs, platformatic, got 'kafka-js'/);
    } finally {
      if (saved === undefined) delete process.env.INGEST_PRODUCER_CLIENT;
      else process.env.INGEST_PRODUCER_CLIENT = saved;
    }
  });
});
