import { CompressionTypes, type ProducerBatch } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { EventProducer } from '@kafka-clickhouse-ingest/producer';
import { cachedKeyPartitioner, kafkajsTransport, type KafkajsSender } from '@kafka-clickhouse-ingest/producer/kafka-transport.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { costEvents } from '../helpers/cost-events.js';

const PARTITIONS = 6;
/** Partition → leader broker: brokers 1, 2 and 3 lead two partitions each. */
const leaderOf = (partition: number): number => 1 + (partition % 3);
const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({ partitionId, leader: leaderOf(partitionId), replicas: [1, 2, 3], isr: [1, 2, 3], partitionErrorCode: 0 }));

/**
 * A kafkajs idempotent producer as it behaves after a partial multi-broker failure: a sendBatch
 * is one produce request per leader broker; the brokers that answer append their partitions'
 * messages (and kafkajs advances those partitions' sequence numbers, so a resend is new data to
 * the broker, not a duplicate it drops), while the failing broker's request rejects the call
 * (kafkajs's own retries exhausted). Broker `failing` fails its first `failures` requests.
 */
function fakeKafka(failing: number, failures: number): { producer: KafkajsSender; log: Map<number, string[]>; requests: number[] } {
  const partitioner = cachedKeyPartitioner();
  const log = new Map<number, string[]>();
  const requests: number[] = [];
  let failed = 0;
  const producer: KafkajsSender = {
    sendBatch: async (batch: ProducerBatch) => {
      const perBroker = new Map<number, Array<{ partition: number; value: string }>>();
      for (const { topic, messages } of batch.topicMessages ?? []) {
        for (const message of messages) {
          const partition = partitioner({ topic, partitionMetadata, message });
          const list = perBroker.get(leaderOf(partition)) ?? [];
          list.push({ partition, value: Buffer.from(message.value as Buffer).toString('base64') });
          perBroker.set(leaderOf(partition), list);
        }
      }
      let error: Error | undefined;
      for (const [broker, list] of perBroker) {
        requests.push(broker);
        if (broker === failing && failed < failures) {
          failed++;
          error = Object.assign(new Error(`Connection error: connect ECONNREFUSED (broker ${broker})`), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: true });
          continue;
        }
        for (const { partition, value } of list) log.set(partition, [...(log.get(partition) ?? []), value]);
      }
      if (error) throw error;
      return [];
    },
    disconnect: async () => undefined,
  };
  return { producer, log, requests };
}

function census(log: Map<number, string[]>): { records: number; distinct: number; perPartition: Record<number, { records: number; distinct: number }> } {
  const all = [...log.values()].flat();
  return {
    records: all.length,
    distinct: new Set(all).size,
    perPartition: Object.fromEntries([...log].map(([p, values]) => [p, { records: values.length, distinct: new Set(values).size }])),
  };
}

describe('kafkajs transport: one broker of three fails a request', () => {
  it('Kafka holds every event exactly once after the SDK retries', async () => {
    const { producer, log } = fakeKafka(3, 2);
    const sdk = EventProducer.fromTransport(kafkajsTransport(producer, CompressionTypes.None, async () => partitionMetadata), { lingerMs: 1, deliveryTimeoutMs: 60_000 });
    const n = 600;
    await sdk.emit(costMetrics, costEvents(n).map((e, i) => ({ ...e, customer_id: `${String(i % 64).padStart(8, '0')}-0000-4000-8000-000000000000` })));
    await sdk.close();
    const c = census(log);
    expect(Object.keys(c.perPartition).length).toBe(PARTITIONS); // the events spread over all three leaders
    expect({ records: c.records, distinct: c.distinct }).toEqual({ records: n, distinct: n });
  });
});
