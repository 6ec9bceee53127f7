import { Registry } from 'prom-client';
import type { KafkaSecurity } from '../lib/config.js';
import { topicName, type OAuthBearerProvider } from '../lib/kafka.js';
import { createProducerMetrics, type ProducerMetrics } from '../lib/metrics.js';
import type { EventInput, EventType } from '../schemas/event-type.js';
import { SingleObjectEncoder } from '../schemas/wire-format.js';
import { EventValidationError, toEventRecord } from '../schemas/validate-event.js';
import { PRODUCER_CLIENTS, connectTransport, type OutgoingMessage, type ProducerClient, type ProducerTransport } from './kafka-transport.js';

export interface ProducerOptions {
  /** Bootstrap brokers. Default ['127.0.0.1:9092']. */
  brokers?: string[];
  /** Default 'ingest-producer'. */
  clientId?: string;
  /** Topic = prefix + event type name. Default 'ingest.' (must match the workers'). */
  topicPrefix?: string;
  /** How long events wait to be batched with others before a send. Default 5 ms. */
  lingerMs?: number;
  /**
   * Most bytes per request (Avro values and keys, plus 20 B of record framing each, before
   * compression): sent as soon as this many are waiting, and a larger emit() call is split into
   * requests of this size, in order. Keep it below the broker's `message.max.bytes` (1 MiB by
   * default), which bounds one partition's record batch. Default 1,000,000.
   */
  maxBatchBytes?: number;
  /** emit() waits while this many bytes are buffered and unacknowledged. Default 64 MiB. */
  maxBufferedBytes?: number;
  /** Default 'gzip' (built into both clients). */
  compression?: 'gzip' | 'none';
  /**
   * The Kafka client library that ships the requests: 'kafkajs' (default) or 'platformatic'
   * (`@platformatic/kafka`, faster; see BENCHMARKS.md). Same guarantees either way. When not
   * given, the environment variable INGEST_PRODUCER_CLIENT decides, so an application can switch
   * without a code change.
   */
  client?: ProducerClient;
  /** Registry to register the producer metrics in; the host app serves it. Default: a private one. */
  registry?: Registry;
  /**
   * TLS and SASL, the worker's KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* settings
   * as options (docs/security.md), e.g. `{ securityProtocol: 'SASL_SSL', saslMechanism:
   * 'SCRAM-SHA-512', saslUsername, saslPassword }`. Default: PLAINTEXT. Same for both clients.
   */
  security?: KafkaSecurity;
  /**
   * OAUTHBEARER token source, with `security.saslMechanism: 'OAUTHBEARER'`: called at every
   * authentication, resolves to `{ value: token }` (MSK IAM: docs/security.md).
   */
  oauthBearerProvider?: OAuthBearerProvider;
}

/** Kafka record framing per message (lengths, attributes, offset and time deltas), an upper bound for small records without headers. */
const RECORD_FRAMING_BYTES = 20;

interface Pending {
  topic: string;
  eventType: string;
  messages: OutgoingMessage[];
  /** Avro bytes, for the metrics and the buffer bound. */
  bytes: number;
  /** Bytes this part adds to a request (see ProducerOptions.maxBatchBytes). */
  size: number;
  emittedAt: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Publishes validated, Avro single-object-encoded events through a ProducerTransport (kafkajs by default).
 * - Idempotent producer with acks=all: a retried send is never written twice, and per-key order holds.
 * - Calls are batched for `lingerMs` or `maxBatchBytes`, compressed, and sent one batch at a
 *   time, so the order of calls is the order in each partition.
 * - `emit` validates every event before any is queued: a bad event refuses the whole call with
 *   an EventValidationError naming the event type, index and field, and nothing is sent.
 * - The promise of `emit` settles when Kafka has acknowledged those events (or failed them).
 */
export class EventProducer {
  readonly metrics: ProducerMetrics;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private unackedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  private readonly waiters: Array<() => void> = [];
  private readonly lingerMs: number;
  private readonly maxBatchBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly encoder = new SingleObjectEncoder();

  private constructor(
    private readonly transport: ProducerTransport,
    private readonly topicPrefix: string,
    opts: ProducerOptions,
  ) {
    this.lingerMs = opts.lingerMs ?? 5;
    this.maxBatchBytes = opts.maxBatchBytes ?? 1_000_000;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.metrics = createProducerMetrics(opts.registry ?? new Registry());
  }

  /** The Kafka client library in use (ProducerOptions.client or INGEST_PRODUCER_CLIENT). */
  get client(): ProducerClient {
    return this.transport.client;
  }

  static async connect(opts: ProducerOptions = {}): Promise<EventProducer> {
    for (const [name, value] of Object.entries({ lingerMs: opts.lingerMs, maxBatchBytes: opts.maxBatchBytes, maxBufferedBytes: opts.maxBufferedBytes })) {
      if (value !== undefined && (!Number.isFinite(value) || value < 0)) throw new RangeError(`ProducerOptions.${name} must be a non-negative number, got ${value}`);
    }
    const client = opts.client ?? producerClientFromEnv(process.env.INGEST_PRODUCER_CLIENT);
    if (!PRODUCER_CLIENTS.includes(client)) throw new RangeError(`ProducerOptions.client must be one of ${PRODUCER_CLIENTS.join(', ')}, got ${String(client)}`);
    if (opts.compression !== undefined && opts.compression !== 'gzip' && opts.compression !== 'none') throw new RangeError(`ProducerOptions.compression must be 'gzip' or 'none', got ${String(opts.compression)}`);
    const transport = await connectTransport({
      client,
      brokers: opts.brokers ?? ['127.0.0.1:9092'],
      clientId: opts.clientId ?? 'ingest-producer',
      compression: opts.compression ?? 'gzip',
      connectionTimeoutMs: 10_000,
      ...(opts.security ? { security: opts.security } : {}),
      ...(opts.oauthBearerProvider ? { oauthBearerProvider: opts.oauthBearerProvider } : {}),
    });
    return new EventProducer(transport, opts.topicPrefix ?? 'ingest.', opts);
  }

  /** Validates, encodes and queues `events` of `type`; resolves once Kafka acknowledged all of them. */
  async emit<E extends EventType>(type: E, events: readonly EventInput<E>[]): Promise<void> {
    if (this.closed) throw new Error('EventProducer is closed');
    if (!Array.isArray(events)) throw new EventValidationError(type.name, '(events)', `expected an array of events, got ${typeof events}`);
    const now = Date.now();
    // Parts of at most maxBatchBytes each, so that a large call never makes a request (and a
    // partition's record batch) the broker refuses as too large.
    const parts: { messages: OutgoingMessage[]; bytes: number; size: number }[] = [];
    let part = { messages: [] as OutgoingMessage[], bytes: 0, size: 0 };
    try {
      for (let i = 0; i < events.length; i++) {
        const record = toEventRecord(type, events[i], i, now);
        const value = this.encoder.encode(type.avroType, type.fingerprint, record);
        const key = String(record[type.partitionKey]);
        const size = value.length + Buffer.byteLength(key) + RECORD_FRAMING_BYTES;
        if (part.messages.length > 0 && part.size + size > this.maxBatchBytes) {
          parts.push(part);
          part = { messages: [], bytes: 0, size: 0 };
        }
        part.messages.push({ key, value });
        part.bytes += value.length;
        part.size += size;
      }
    } catch (err) {
      this.metrics.validationErrors.inc({ event_type: type.name });
      throw err;
    }
    if (part.messages.length === 0) return;
    parts.push(part);
    while (this.unackedBytes > this.maxBufferedBytes) await new Promise<void>((r) => this.waiters.push(r));
    const topic = topicName({ topicPrefix: this.topicPrefix }, type.name);
    const acks = parts.map(
      (p) =>
        new Promise<void>((resolve, reject) => {
          this.queue.push({ topic, eventType: type.name, messages: p.messages, bytes: p.bytes, size: p.size, emittedAt: now, resolve, reject });
          this.queuedBytes += p.size;
          this.unackedBytes += p.bytes;
        }),
    );
    if (this.queuedBytes >= this.maxBatchBytes) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.lingerMs);
    if (acks.length === 1) return acks[0];
    // Every part is settled before the call is: a caller who retries after a failure knows
    // that nothing of the call is still in flight.
    const results = await Promise.allSettled(acks);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Sends everything queued and waits for the acknowledgements. */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.sending) {
      this.kick();
      await this.sending?.catch(() => undefined);
    }
  }

  /** Flushes, then disconnects. Events emitted before close are sent, never dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush();
    await this.transport.close();
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.sending || this.queue.length === 0) return;
    // At most maxBatchBytes per request (emit splits larger calls into parts): the broker refuses
    // a partition's record batch above its message.max.bytes, and kafkajs groups a request's
    // messages per partition in time quadratic in their number.
    let take = 0;
    let size = 0;
    while (take < this.queue.length && (take === 0 || size + this.queue[take]!.size <= this.maxBatchBytes)) size += this.queue[take++]!.size;
    const batch = this.queue.splice(0, take);
    this.queuedBytes -= size;
    this.sending = this.send(batch).finally(() => {
      this.sending = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async send(batch: Pending[]): Promise<void> {
    const byTopic = new Map<string, OutgoingMessage[]>();
    for (const p of batch) {
      const list = byTopic.get(p.topic);
      if (list) for (const m of p.messages) list.push(m);
      else byTopic.set(p.topic, [...p.messages]);
    }
    let error: unknown;
    try {
      await this.transport.send([...byTopic].map(([topic, messages]) => ({ topic, messages })));
    } catch (err) {
      error = err;
    }
    const ackedAt = Date.now();
    for (const p of batch) {
      this.unackedBytes -= p.bytes;
      if (error) {
        this.metrics.sendErrors.inc({ event_type: p.eventType }, p.messages.length);
        p.reject(error);
      } else {
        this.metrics.eventsSent.inc({ event_type: p.eventType }, p.messages.length);
        this.metrics.bytesSent.inc({ event_type: p.eventType }, p.bytes);
        this.metrics.sendLatency.observe({ event_type: p.eventType }, (ackedAt - p.emittedAt) / 1000);
        p.resolve();
      }
    }
    while (this.unackedBytes <= this.maxBufferedBytes && this.waiters.length > 0) this.waiters.shift()!();
  }
}

function producerClientFromEnv(value: string | undefined): ProducerClient {
  if (value === undefined || value === '') return 'kafkajs';
  if ((PRODUCER_CLIENTS as readonly string[]).includes(value)) return value as ProducerClient;
  throw new RangeError(`INGEST_PRODUCER_CLIENT must be one of ${PRODUCER_CLIENTS.join(', ')}, got '${value}'`);
}
