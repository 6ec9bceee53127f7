import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { cachedKeyPartitioner } from '@kafka-clickhouse-ingest/producer/kafka-transport.js';

const meta = (n: number) => Array.from({ length: n }, (_, p) => ({ partitionId: p, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 })) as PartitionMetadata[];

describe('cachedKeyPartitioner', () => {
  it('gives the same partition as the Java-compatible murmur2 partitioner, from the cache too', () => {
    const reference = Partitioners.DefaultPartitioner();
    const cached = cachedKeyPartitioner();
    for (const partitions of [1, 4, 6, 12]) {
      for (let i = 0; i < 2_000; i++) {
        const args = { topic: 'ingest.cost_metrics', partitionMetadata: meta(partitions), message: { key: `customer-${i % 500}`, value: 'v' } };
        expect(cached(args)).toBe(reference(args));
      }
    }
  });

  it('does not reuse a cached partition when the topic gets more partitions', () => {
    const cached = cachedKeyPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    const keys = Array.from({ length: 50 }, (_, i) => `run_${i}`);
    const on = (n: number) => keys.map((key) => cached({ topic: 't', partitionMetadata: meta(n), message: { key, value: 'v' } }));
    on(4);
    expect(on(8)).toEqual(keys.map((key) => reference({ topic: 't', partitionMetadata: meta(8), message: { key, value: 'v' } })));
  });
});
