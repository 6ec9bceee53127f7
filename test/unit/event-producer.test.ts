import { describe, expect, it } from 'vitest';
import { BufferFullError, EventProducer, DeliveryError, type OutgoingTopic, type ProducerTransport } from '@kafka-clickhouse-ingest/producer';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { EventValidationError } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { sampleEvents } from '../fixtures/events.js';

/** A transport whose send() outcome each test scripts: fail the first n sends, hang until released, etc. */
class FakeTransport implements ProducerTransport {
  readonly client = 'kafkajs';
  sends: OutgoingTopic[][] = [];
  failures: unknown[] = [];
  gate: Promise<void> | undefined;
  async send(topics: readonly OutgoingTopic[]): Promise<void> {
    this.sends.push([...topics]);
    if (this.gate) await this.gate;
    const failure = this.failures.shift();
    if (failure !== undefined) throw failure;
  }
  async close(): Promise<void> {}
  get events(): number {
    return this.sends.flat().reduce((n, t) => n + t.messages.length, 0);
  }
}

const cost = eventTypes.find((t) => t.name === 'cost_metrics')!;
const llm = eventTypes.find((t) => t.name === 'llm_logs')!;

function timestampFields(type: EventType): string[] {
  return type.schema.fields.filter((f) => JSON.stringify(f.type).includes('timestamp-millis')).map((f) => f.name);
}

describe('EventProducer: refused at the call, naming the field', () => {
  it.each(eventTypes.map((t) => [t.name, t] as const))('%s: every timestamp field refuses before 2000, seconds as ms, and more than a day ahead; nothing is sent', async (_name, type) => {
    const transport = new FakeTransport();
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0 });
    const fields = timestampFields(type);
    expect(fields.length).toBeGreaterThan(0);
    const now = Date.now();
    for (const field of fields) {
      const base = sampleEvents(type.name, 1, 5)[0]!;
      for (const [value, reason] of [
        [Date.UTC(1999, 11, 31, 23, 59, 59), /before 2000-01-01/],
        [Math.floor(now / 1000), /before 2000-01-01.*seconds/],
        [now + 25 * 3600_000, /more than a day ahead/],
        [Date.UTC(3000, 0, 1), /more than a day ahead/],
        [now * 1000, /more than a day ahead/],
      ] as const) {
        const err = await producer.emit(type, [base, { ...base, [field]: value }] as never).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(EventValidationError);
        expect((err as EventValidationError).field).toBe(field);
        expect((err as EventValidationError).index).toBe(1);
        expect((err as Error).message).toMatch(reason);
      }
      // A time an hour ahead (clock skew) is accepted.
      await producer.emit(type, [{ ...base, [field]: now + 3600_000 }] as never);
    }
    expect(transport.events).toBe(fields.length);
    await producer.close();
  });

  it('refuses an event larger than maxBatchBytes (a 10 MB string), naming the field, and sends nothing of the call', async () => {
    const transport = new FakeTransport();
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0 });
    const [a, b] = sampleEvents('llm_logs', 2, 3);
    const err = await producer.emit(llm, [a, { ...b, response: 'x'.repeat(10 * 1024 * 1024) }] as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventValidationError);
    expect((err as EventValidationError).field).toBe('response');
    expect((err as Error).message).toMatch(/llm_logs\[1\]\.response: the encoded event is \d+ bytes, over maxBatchBytes \(1000000\)/);
    await producer.close();
    expect(transport.sends).toHaveLength(0);
  });
});

describe('EventProducer: delivery timeout', () => {
  const connReset = Object.assign(new Error('Connection error: read ECONNRESET'), { name: 'KafkaJSConnectionError', retriable: true });

  it('retries the same request until the broker answers, within deliveryTimeoutMs', async () => {
    const transport = new FakeTransport();
    transport.failures.push(connReset, connReset, connReset);
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0, deliveryTimeoutMs: 30_000 });
    await producer.emit(cost, sampleEvents('cost_metrics', 10) as never);
    expect(transport.sends).toHaveLength(4);
    // Every attempt carries the same messages, in the same order (the idempotent producer dedupes a written retry).
    for (const send of transport.sends) expect(send).toEqual(transport.sends[0]);
    expect(await producer.metrics.eventsSent.get()).toMatchObject({ values: [{ value: 10 }] });
    await producer.close();
  });

  it('rejects after deliveryTimeoutMs with a DeliveryError naming the brokers and the root cause (not the wrapper)', async () => {
    const transport = new FakeTransport();
    const wrapped = new AggregateError([Object.assign(new Error('Connection to 127.0.0.1:49999 failed: connect ECONNREFUSED'), { code: 'PLT_KFK_NETWORK' })], 'Producing messages failed.');
    for (let i = 0; i < 100; i++) transport.failures.push(wrapped);
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0, deliveryTimeoutMs: 1_200, brokers: ['127.0.0.1:49999'] });
    const started = Date.now();
    const err = await producer.emit(cost, sampleEvents('cost_metrics', 3) as never).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).timedOut).toBe(true);
    expect((err as Error).message).toMatch(/brokers 127\.0\.0\.1:49999 within the delivery timeout \(\d+ attempts over \d+ ms\): Connection to 127\.0\.0\.1:49999 failed: connect ECONNREFUSED/);
    expect((err as Error).message).not.toMatch(/Producing messages failed/);
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(5_000);
    expect(transport.sends.length).toBeGreaterThan(1);
    await producer.close();
  });

  it('does not retry what a retry cannot fix (MESSAGE_TOO_LARGE)', async () => {
    const transport = new FakeTransport();
    transport.failures.push(new Error('wrapper', { cause: Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE' }) }));
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0, deliveryTimeoutMs: 60_000 });
    const err = await producer.emit(cost, sampleEvents('cost_metrics', 1) as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).timedOut).toBe(false);
    expect((err as Error).message).toMatch(/refused, not retried, after 1 attempt\): MESSAGE_TOO_LARGE: The request included/);
    expect(transport.sends).toHaveLength(1);
    await producer.close();
  });
});

describe('EventProducer: backpressure and close', () => {
  it('an emit waiting for buffer room rejects after maxBlockMs with BufferFullError, queuing nothing', async () => {
    const transport = new FakeTransport();
    let release!: () => void;
    transport.gate = new Promise((r) => (release = r));
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0, maxBufferedBytes: 100, maxBlockMs: 300 });
    const first = producer.emit(cost, sampleEvents('cost_metrics', 5) as never);
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    const err = await producer.emit(cost, sampleEvents('cost_metrics', 5, 2) as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BufferFullError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    release();
    await first;
    await producer.close();
    expect(transport.events).toBe(5);
  });

  it('close() flushes every pending call, including those waiting on backpressure, then rejects new calls', async () => {
    const transport = new FakeTransport();
    let release!: () => void;
    transport.gate = new Promise((r) => (release = r));
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0, maxBufferedBytes: 100, maxBlockMs: 30_000 });
    const calls = [1, 2, 3, 4].map((seed) => producer.emit(cost, sampleEvents('cost_metrics', 5, seed) as never));
    await new Promise((r) => setTimeout(r, 20));
    expect(transport.sends).toHaveLength(1); // three calls wait for room
    const closing = producer.close();
    setTimeout(release, 50);
    await closing;
    expect(await Promise.allSettled(calls)).toEqual([1, 2, 3, 4].map(() => ({ status: 'fulfilled', value: undefined })));
    expect(transport.events).toBe(20);
    await expect(producer.emit(cost, sampleEvents('cost_metrics', 1) as never)).rejects.toThrow(/closed/);
  });

  it('close() rejects (does not drop) calls whose delivery times out', async () => {
    const transport = new FakeTransport();
    for (let i = 0; i < 100; i++) transport.failures.push(new Error('connect ECONNREFUSED 127.0.0.1:49999'));
    const producer = EventProducer.fromTransport(transport, { lingerMs: 0, deliveryTimeoutMs: 500 });
    const call = producer.emit(cost, sampleEvents('cost_metrics', 2) as never);
    const settled = call.then(() => 'resolved', (e: unknown) => e);
    await producer.close();
    expect(await settled).toBeInstanceOf(DeliveryError);
  });
});

describe('EventProducer.connect options', () => {
  it('refuses an unknown compression, from the option or INGEST_PRODUCER_COMPRESSION, before connecting', async () => {
    await expect(EventProducer.connect({ compression: 'brotli' as never, brokers: ['127.0.0.1:1'] })).rejects.toThrow(/compression must be one of none, gzip, snappy, lz4, zstd, got brotli/);
    process.env.INGEST_PRODUCER_COMPRESSION = 'lz5';
    try {
      await expect(EventProducer.connect({ brokers: ['127.0.0.1:1'] })).rejects.toThrow(/INGEST_PRODUCER_COMPRESSION must be one of none, gzip, snappy, lz4, zstd, got 'lz5'/);
    } finally {
      delete process.env.INGEST_PRODUCER_COMPRESSION;
    }
  });
});

describe('EventProducer: close() right after an emit call that was not awaited', () => {
  it('sends the call before the transport closes (a long linger holds it until close)', async () => {
    const transport = new FakeTransport();
    let closedWith = -1;
    transport.close = async () => {
      closedWith = transport.events;
    };
    const producer = EventProducer.fromTransport(transport, { lingerMs: 60_000 });
    const pending = producer.emit(cost, sampleEvents('cost_metrics', 7, 11) as never);
    await producer.close();
    await pending;
    expect({ sent: transport.events, sentBeforeClose: closedWith }).toEqual({ sent: 7, sentBeforeClose: 7 });
  });
});
