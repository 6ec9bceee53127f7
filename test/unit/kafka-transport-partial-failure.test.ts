import { CompressionTypes, type ProducerBatch } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { EventProducer } from '@kafka-clickhouse-ingest/producer';
import { compatibilityPartitioner } from '@platformatic/kafka';
import { KAFKAJS_BATCH_MESSAGES, cachedKeyPartitioner, kafkajsTransport, platformaticTransport, type KafkajsSender, type PlatformaticSender } from '@kafka-clickhouse-ingest/producer/kafka-transport.js';
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

describe('kafkajs transport: partitions spread over several idempotent producers', () => {
  /** Fake producers on one broker; producer `failing` fails its first `failures` sendBatch calls (nothing of them written). */
  function fakePool(count: number, failing = -1, failures = 0) {
    const log = new Map<number, Array<{ producer: number; key: string; value: string; keyIsBuffer: boolean }>>();
    const inFlight = { now: 0, max: 0 };
    let failed = 0;
    const producers: KafkajsSender[] = Array.from({ length: count }, (_, id) => ({
      sendBatch: async (batch: ProducerBatch) => {
        inFlight.now++;
        inFlight.max = Math.max(inFlight.max, inFlight.now);
        await new Promise((r) => setTimeout(r, 2));
        inFlight.now--;
        if (id === failing && failed < failures) {
          failed++;
          throw Object.assign(new Error(`Connection error (producer ${id})`), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: true });
        }
        for (const { messages } of batch.topicMessages ?? []) {
          for (const m of messages) {
            const list = log.get(m.partition!) ?? [];
            list.push({ producer: id, key: Buffer.from(m.key as Buffer).toString('utf8'), value: Buffer.from(m.value as Buffer).toString('base64'), keyIsBuffer: Buffer.isBuffer(m.key) });
            log.set(m.partition!, list);
          }
        }
        return [];
      },
      disconnect: async () => undefined,
    }));
    return { producers, log, inFlight };
  }
  const oneBroker = Array.from({ length: PARTITIONS }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
  const events = (n: number) => costEvents(n).map((e, i) => ({ ...e, customer_id: `${String(i % 64).padStart(8, '0')}-0000-4000-8000-000000000000` }));

  it('each partition always through the same producer, in emit order, keyed as the Java client partitions, keys as their UTF-8 bytes', async () => {
    const { producers, log, inFlight } = fakePool(4);
    const sdk = EventProducer.fromTransport(kafkajsTransport(producers, CompressionTypes.None, async () => oneBroker), { lingerMs: 1 });
    const input = events(600);
    await Promise.all([sdk.emit(costMetrics, input.slice(0, 300)), sdk.emit(costMetrics, input.slice(300))]);
    await sdk.close();
    const partitioner = cachedKeyPartitioner();
    let records = 0;
    for (const [partition, list] of log) {
      expect(new Set(list.map((r) => r.producer))).toEqual(new Set([partition % 4]));
      for (const r of list) expect(partitioner({ topic: 'ingest.cost_metrics', partitionMetadata: oneBroker, message: { key: r.key, value: null } })).toBe(partition);
      // emit order within the partition: instance ids ascend
      const ids = list.map((r) => Number(/i-(\d+)/.exec(Buffer.from(r.value, 'base64').toString('latin1'))![1]));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(list.every((r) => r.keyIsBuffer)).toBe(true);
      records += list.length;
    }
    expect(log.size).toBe(PARTITIONS);
    expect(records).toBe(600);
    expect(inFlight.max).toBeGreaterThan(1); // partitions of different producers are in flight together
  });

  it('a failing producer: only its partitions are sent again, every event once', async () => {
    const { producers, log } = fakePool(4, 1, 2);
    const sdk = EventProducer.fromTransport(kafkajsTransport(producers, CompressionTypes.None, async () => oneBroker), { lingerMs: 1, deliveryTimeoutMs: 60_000 });
    await sdk.emit(costMetrics, events(600));
    await sdk.close();
    const all = [...log.values()].flat();
    expect({ records: all.length, distinct: new Set(all.map((r) => r.value)).size }).toEqual({ records: 600, distinct: 600 });
    for (const [partition, list] of log) expect(new Set(list.map((r) => r.producer))).toEqual(new Set([partition % 4]));
  });
});

describe('kafkajs transport: a partition share larger than KAFKAJS_BATCH_MESSAGES', () => {
  it('goes in sendBatch calls of at most that many, in order; after a failed one, only it and those after it are sent again, each once', async () => {
    const onePartition = [{ partitionId: 0, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }];
    const batches: number[] = [];
    const written: string[] = [];
    let calls = 0;
    const producer: KafkajsSender = {
      sendBatch: async (batch: ProducerBatch) => {
        const messages = batch.topicMessages![0]!.messages;
        batches.push(messages.length);
        if (++calls === 2) throw Object.assign(new Error('Connection error'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: true });
        for (const m of messages) written.push(Buffer.from(m.value as Buffer).toString('base64'));
        return [];
      },
      disconnect: async () => undefined,
    };
    const n = KAFKAJS_BATCH_MESSAGES * 2 + 37;
    const sdk = EventProducer.fromTransport(kafkajsTransport(producer, CompressionTypes.None, async () => onePartition), { lingerMs: 1, deliveryTimeoutMs: 60_000 });
    const input = costEvents(n);
    await sdk.emit(costMetrics, input);
    await sdk.close();
    // first batch acknowledged, the second failed: the retry starts at the second, cut the same way
    expect(batches).toEqual([KAFKAJS_BATCH_MESSAGES, KAFKAJS_BATCH_MESSAGES, KAFKAJS_BATCH_MESSAGES, 37]);
    expect(written.length).toBe(n);
    expect(new Set(written).size).toBe(n);
    const ids = written.map((v) => Number(/i-(\d+)/.exec(Buffer.from(v, 'base64').toString('latin1'))![1]));
    expect(ids).toEqual(input.map((_, i) => i));
  });
});

describe('platformatic transport: one broker of three fails a request', () => {
  /**
   * @platformatic/kafka's idempotent producer as it behaves after a partial multi-broker failure:
   * one produce request per leader; a partition's batch carries the library's next sequence
   * number for it, advanced only when its broker acknowledged; the broker appends a batch unless
   * it already holds that sequence (KIP-98). Broker `failing` appends its first `failures`
   * requests but the answers are lost (the worst case: written, not acknowledged), and the call
   * rejects as the library does, naming the acknowledged partitions in `produced.offsets`.
   */
  function fakePlatformatic(failing: number, failures: number) {
    const log = new Map<number, string[]>();
    const nextSequence = new Map<number, number>();
    const held = new Map<number, Set<number>>();
    let failed = 0;
    const partitionOf = (key: Buffer) => compatibilityPartitioner({} as never, key) % PARTITIONS;
    const sender: PlatformaticSender = {
      send: (async (options: { messages: Array<{ topic: string; key: Buffer; value: Buffer }> }) => {
        const perBroker = new Map<number, Map<number, string[]>>();
        for (const m of options.messages) {
          const partition = partitionOf(m.key);
          const batches = perBroker.get(leaderOf(partition)) ?? new Map<number, string[]>();
          batches.set(partition, [...(batches.get(partition) ?? []), m.value.toString('base64')]);
          perBroker.set(leaderOf(partition), batches);
        }
        const acknowledged: Array<{ topic: string; partition: number; offset: bigint }> = [];
        let lost = false;
        for (const [broker, batches] of perBroker) {
          for (const [partition, values] of batches) {
            const sequence = nextSequence.get(partition) ?? 0;
            const seen = held.get(partition) ?? new Set<number>();
            if (!seen.has(sequence)) {
              seen.add(sequence);
              held.set(partition, seen);
              log.set(partition, [...(log.get(partition) ?? []), ...values]);
            }
          }
          if (broker === failing && failed < failures) {
            lost = true;
            continue;
          }
          for (const [partition, values] of batches) {
            nextSequence.set(partition, (nextSequence.get(partition) ?? 0) + values.length);
            acknowledged.push({ topic: 'ingest.cost_metrics', partition, offset: 0n });
          }
        }
        if (lost) {
          failed++;
          throw Object.assign(new Error('Producing messages failed.'), { produced: { offsets: acknowledged } });
        }
        return { offsets: acknowledged };
      }) as unknown as PlatformaticSender['send'],
      metadata: (async () => ({ topics: new Map([['ingest.cost_metrics', { partitionsCount: PARTITIONS }]]) })) as unknown as PlatformaticSender['metadata'],
      close: (async () => undefined) as PlatformaticSender['close'],
    };
    return { sender, log };
  }
  const events = (n: number) => costEvents(n).map((e, i) => ({ ...e, customer_id: `${String(i % 64).padStart(8, '0')}-0000-4000-8000-000000000000` }));

  it('Kafka holds every event exactly once after the SDK retries only the partitions not acknowledged', async () => {
    const { sender, log } = fakePlatformatic(3, 2);
    const sdk = EventProducer.fromTransport(platformaticTransport(sender, 'none'), { lingerMs: 1, deliveryTimeoutMs: 60_000 });
    await sdk.emit(costMetrics, events(600));
    await sdk.close();
    const c = census(log);
    expect(Object.keys(c.perPartition).length).toBe(PARTITIONS);
    expect({ records: c.records, distinct: c.distinct }).toEqual({ records: 600, distinct: 600 });
  });

  it('control: resending the whole request writes the acknowledged partitions twice (so the test above can fail)', async () => {
    const { sender, log } = fakePlatformatic(3, 1);
    const messages = events(600).map((e, i) => ({ topic: 'ingest.cost_metrics', key: Buffer.from(e.customer_id), value: Buffer.from(`event ${i}`) }));
    await expect(sender.send({ messages } as never)).rejects.toThrow('Producing messages failed.');
    await sender.send({ messages } as never);
    const c = census(log);
    expect(c.distinct).toBe(600);
    expect(c.records).toBeGreaterThan(600);
  });
});
