import { topicName } from './kafka-client.js';
import { KAFKA_CODECS, type KafkaCodec } from './kafka-codecs.js';
import { KafkaAuthorizationError } from './kafka-errors.js';
import type { OAuthBearerProvider } from './kafka-security.js';
import { ConfigError, KAFKA_ENV, KAFKA_SECURITY_ENV, KAFKA_SETTINGS, kafkaSettingsFromEnv, type KafkaSecurity } from './kafka-settings.js';
import { createProducerMetrics, type MetricRegistry, type ProducerMetrics } from './producer-metrics.js';
import type { EventInput, EventType } from './schemas/event-type.js';
import { SingleObjectEncoder } from './schemas/wire-format.js';
import { createRegistryClient } from './schema-registry-client.js';
import { SchemaRegistration } from './schema-registration.js';
import { parseRegistrySettings, registryEnvName, registrySettingsFromEnv, type RegistrySettings } from './schema-registry-settings.js';
import { EventValidationError, checkTimestampsPlausible, toEventRecord } from './schemas/validate-event.js';
import { DeliveryError, isRetriableSendError } from './delivery-error.js';
import { PRODUCER_CLIENTS, PartialSendError, connectTransport, defaultProducerClient, type OutgoingMessage, type ProducerClient, type ProducerTransport } from './kafka-transport.js';

/**
 * Every option is optional. The Kafka connection options fall back to the environment variables
 * the worker reads (docs/configuration.md), then to the defaults: an option given wins over its
 * variable, per setting.
 */
export interface ProducerOptions {
  /** Bootstrap brokers, host:port. Env KAFKA_BROKERS (comma-separated). Default ['127.0.0.1:9092']. */
  brokers?: string[];
  /** Env KAFKA_CLIENT_ID. Default 'ingest-producer'. */
  clientId?: string;
  /** Topic = prefix + event type name; must match the workers'. Env KAFKA_TOPIC_PREFIX. Default 'ingest.'. */
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
  /**
   * Backpressure: emit() waits while this many bytes are buffered and unacknowledged, at most
   * `maxBlockMs`, then rejects with a BufferFullError (nothing of the call is queued). Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** Longest an emit() call waits for room in the buffer (Java's `max.block.ms`). Default 60,000 ms. */
  maxBlockMs?: number;
  /**
   * Record-batch codec: 'gzip', 'snappy', 'lz4', 'zstd' or 'none'; every worker reads them all
   * (producers/typescript/src/kafka-codecs.ts). Default 'gzip'; when not given, INGEST_PRODUCER_COMPRESSION
   * decides. 'zstd' with client 'platformatic' needs Node >= 22.15 (node:zlib zstd).
   */
  compression?: KafkaCodec;
  /**
   * How long an event may wait for its acknowledgement, from its emit() call (librdkafka's
   * `message.timeout.ms`, Java's `delivery.timeout.ms`). Until then a failed send is retried
   * with backoff (a broker restart, a leader election, a network cut), the same request again
   * so the idempotent producer writes it once; after it, the call rejects with a DeliveryError
   * naming the brokers and the cause. A retry already in flight finishes first, so a rejection
   * can come up to one request timeout (30 s) late. Default 120,000 ms.
   */
  deliveryTimeoutMs?: number;
  /**
   * Opt-in: on SIGTERM, SIGINT and 'beforeExit', close() the producer (flush every queued and
   * waiting call) before the process goes on exiting; for a signal the handler then re-raises it,
   * so the process still ends as the signal would have ended it. Leave it off when the host app
   * handles its own signals (and calls close() there). Default false.
   */
  flushOnExit?: boolean;
  /**
   * The Kafka client library that ships the requests: 'platformatic' (`@platformatic/kafka`, the
   * default, faster; see BENCHMARKS.md) or 'kafkajs'. Same guarantees either way. When not given,
   * the environment variable INGEST_PRODUCER_CLIENT decides, so an application can switch without
   * a code change; when neither does, 'platformatic', except with compression 'zstd' on a Node
   * without zstd in node:zlib (before 22.15), where only 'kafkajs' can send zstd.
   */
  client?: ProducerClient;
  /**
   * A registry to register the producer metrics in, which the host app serves: a prom-client
   * `Registry` works as it is (the SDK itself depends on no metrics library). Unset: the metrics
   * are only in `producer.metrics` (`prometheusText()` renders them).
   */
  registry?: MetricRegistry;
  /**
   * TLS and SASL, the worker's KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* settings
   * as options (docs/security.md), e.g. `{ securityProtocol: 'SASL_SSL', saslMechanism:
   * 'SCRAM-SHA-512', saslUsername, saslPassword }`. Each field not given here is read from its
   * variable (secrets also from `<NAME>_FILE`). Default: PLAINTEXT. Same for both clients.
   */
  security?: KafkaSecurity;
  /**
   * OAUTHBEARER token source, with `security.saslMechanism: 'OAUTHBEARER'`: called at every
   * authentication, resolves to `{ value: token }` (MSK IAM: docs/security.md).
   */
  oauthBearerProvider?: OAuthBearerProvider;
  /**
   * How each event is framed on the topic (docs/schema-registry.md):
   * - 'single-object' (default): Avro single-object encoding, C3 01 | schema fingerprint | datum;
   *   needs no registry.
   * - 'confluent': the Kafka ecosystem's framing, 00 | schema id | datum, with the event type's
   *   schema registered in a schema registry under `<topic>-value` at its first emit (then its
   *   id on every message), so registry deserializers (Confluent's, Apicurio's, ClickHouse's
   *   AvroConfluent, Kafka Connect) read the topics. Needs `schemaRegistry` (or SCHEMA_REGISTRY_URL).
   * Workers read both, message by message. When not given, INGEST_PRODUCER_WIRE_FORMAT decides.
   */
  wireFormat?: WireFormat;
  /**
   * The registry of wireFormat 'confluent': `{ url, username, password }` (basic auth) or
   * `{ url, token }` (bearer), and `caCert` (a PEM file) for an https registry whose certificate
   * the system CAs do not vouch for. Each field not given is read from its SCHEMA_REGISTRY_*
   * variable (secrets also from `<NAME>_FILE`), as the workers read them. The registry checks
   * each new schema against the subject's compatibility level (an incompatible one fails the emit
   * call with a SchemaRegistrationError carrying the registry's message).
   */
  schemaRegistry?: Partial<RegistrySettings>;
}

export const WIRE_FORMATS = ['single-object', 'confluent'] as const;
export type WireFormat = (typeof WIRE_FORMATS)[number];

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

/** emit() found no room in the buffer within maxBlockMs; nothing of the call was queued. */
export class BufferFullError extends Error {
  override readonly name = 'BufferFullError';
}

/** Backoff between delivery attempts: 250 ms doubling to 2 s (a broker restart takes seconds). */
const RETRY_BACKOFF_MS = 250;
const RETRY_BACKOFF_MAX_MS = 2_000;

/**
 * Publishes validated, Avro single-object-encoded events through a ProducerTransport (@platformatic/kafka by default, or kafkajs).
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
  private readonly waiters = new Set<() => void>();
  private readonly lingerMs: number;
  private readonly maxBatchBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly maxBlockMs: number;
  private readonly deliveryTimeoutMs: number;
  private readonly encoder = new SingleObjectEncoder();
  /** Set with wireFormat 'confluent': each topic's schema id, registered at its first emit. */
  private registration: SchemaRegistration | undefined;
  private removeExitHooks: (() => void) | undefined;

  private constructor(
    private readonly transport: ProducerTransport,
    private readonly topicPrefix: string,
    private readonly brokers: readonly string[],
    opts: ProducerOptions,
  ) {
    this.lingerMs = opts.lingerMs ?? 5;
    this.maxBatchBytes = opts.maxBatchBytes ?? 1_000_000;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.maxBlockMs = opts.maxBlockMs ?? 60_000;
    this.deliveryTimeoutMs = opts.deliveryTimeoutMs ?? 120_000;
    this.metrics = createProducerMetrics(opts.registry);
    if (opts.flushOnExit) this.removeExitHooks = installExitHooks(this);
  }

  /** The Kafka client library in use (ProducerOptions.client or INGEST_PRODUCER_CLIENT). */
  get client(): ProducerClient {
    return this.transport.client;
  }

  static async connect(opts: ProducerOptions = {}): Promise<EventProducer> {
    for (const [name, value] of Object.entries({ lingerMs: opts.lingerMs, maxBatchBytes: opts.maxBatchBytes, maxBufferedBytes: opts.maxBufferedBytes, maxBlockMs: opts.maxBlockMs, deliveryTimeoutMs: opts.deliveryTimeoutMs })) {
      if (value !== undefined && (!Number.isFinite(value) || value < 0)) throw new RangeError(`ProducerOptions.${name} must be a non-negative number, got ${value}`);
    }
    const chosen = opts.client ?? producerClientFromEnv(process.env.INGEST_PRODUCER_CLIENT);
    if (chosen !== undefined && !PRODUCER_CLIENTS.includes(chosen)) throw new RangeError(`ProducerOptions.client must be one of ${PRODUCER_CLIENTS.join(', ')}, got ${String(chosen)}`);
    const compression = opts.compression ?? compressionFromEnv(process.env.INGEST_PRODUCER_COMPRESSION);
    if (!KAFKA_CODECS.includes(compression)) throw new RangeError(`ProducerOptions.compression must be one of ${KAFKA_CODECS.join(', ')}, got ${String(compression)}`);
    const client = chosen ?? defaultProducerClient(compression);
    const kafka = producerKafkaSettings(opts);
    const registration = schemaRegistrationOf(opts);
    const transport = await connectTransport({
      client,
      brokers: kafka.brokers,
      clientId: kafka.clientId,
      compression,
      connectionTimeoutMs: 10_000,
      security: kafka.security,
      securityName: kafka.securityName,
      ...(opts.oauthBearerProvider ? { oauthBearerProvider: opts.oauthBearerProvider } : {}),
    });
    const producer = new EventProducer(transport, kafka.topicPrefix, kafka.brokers, opts);
    producer.registration = registration;
    return producer;
  }

  /** How this producer frames its events (ProducerOptions.wireFormat). */
  get wireFormat(): WireFormat {
    return this.registration ? 'confluent' : 'single-object';
  }

  /**
   * A producer on a transport of your own (a test double, a client this SDK does not wrap). The
   * options are checked as connect() checks them, but brokers name only the DeliveryErrors.
   */
  static fromTransport(transport: ProducerTransport, opts: ProducerOptions = {}): EventProducer {
    return new EventProducer(transport, opts.topicPrefix ?? 'ingest.', opts.brokers ?? ['127.0.0.1:9092'], opts);
  }

  /** Validates, encodes and queues `events` of `type`; resolves once Kafka acknowledged all of them. */
  async emit<E extends EventType>(type: E, events: readonly EventInput<E>[]): Promise<void> {
    if (this.closed) throw new Error('EventProducer is closed');
    if (!Array.isArray(events)) throw new EventValidationError(type.name, '(events)', `expected an array of events, got ${typeof events}`);
    const now = Date.now();
    const topic = topicName({ topicPrefix: this.topicPrefix }, type.name);
    // Confluent framing: the schema id, registered at the type's first emit (the registry's
    // refusal rejects this call, and nothing of it is queued).
    let header: Buffer | undefined;
    if (this.registration) header = this.registration.cached(topic) ?? (await this.registration.header(topic, type));
    // Parts of at most maxBatchBytes each, so that a large call never makes a request (and a
    // partition's record batch) the broker refuses as too large.
    const parts: { messages: OutgoingMessage[]; bytes: number; size: number }[] = [];
    let part = { messages: [] as OutgoingMessage[], bytes: 0, size: 0 };
    try {
      for (let i = 0; i < events.length; i++) {
        const record = toEventRecord(type, events[i], i, now);
        checkTimestampsPlausible(type, record, i, now);
        const value = header ? this.encoder.encodeWithHeader(type.avroType, header, record) : this.encoder.encode(type.avroType, type.fingerprint, record);
        const key = String(record[type.partitionKey]);
        const size = value.length + Buffer.byteLength(key) + RECORD_FRAMING_BYTES;
        // One event larger than a request would be refused by the broker (MESSAGE_TOO_LARGE)
        // after the whole call waited; refuse it here, naming its largest field.
        if (size > this.maxBatchBytes) throw new EventValidationError(type.name, largestField(record), `the encoded event is ${size} bytes, over maxBatchBytes (${this.maxBatchBytes}), which must stay below the broker's message.max.bytes`, i);
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
    // Synchronous to the queue push when there is room: close() (and flush) right after an emit
    // call that was not awaited must find its events queued, not still on their way in.
    if (this.unackedBytes > this.maxBufferedBytes) await this.waitForRoom(type.name);
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

  /**
   * Sends everything queued and waits for the acknowledgements, including calls still waiting
   * for buffer room when flush starts (they get room as the queue drains, or reject after maxBlockMs).
   */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.sending || this.waiters.size > 0 || (this.registration?.inFlight ?? 0) > 0) {
      this.kick();
      if (this.sending) await this.sending.catch(() => undefined);
      else await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * Flushes, then disconnects. Every call made before close settles: acknowledged, or rejected
   * (delivery timeout, buffer wait over maxBlockMs); none is dropped. Calls after close reject.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.removeExitHooks?.();
    await this.flush();
    await this.transport.close();
  }

  /** Events queued or in flight, not yet acknowledged: what a process exit without close() would lose. */
  get pendingEvents(): number {
    let n = 0;
    for (const p of this.queue) n += p.messages.length;
    return n + this.inFlightEvents;
  }

  private inFlightEvents = 0;

  /** Waits while the buffer is over maxBufferedBytes, at most maxBlockMs (then BufferFullError). */
  private async waitForRoom(eventType: string): Promise<void> {
    if (this.unackedBytes <= this.maxBufferedBytes) return;
    const deadline = Date.now() + this.maxBlockMs;
    while (this.unackedBytes > this.maxBufferedBytes) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new BufferFullError(`${eventType}: no room in the producer buffer within maxBlockMs (${this.maxBlockMs} ms): ${this.unackedBytes} bytes unacknowledged, maxBufferedBytes ${this.maxBufferedBytes} (Kafka slower than the emit rate, or unreachable)`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
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
    const request = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    for (const p of batch) this.inFlightEvents += p.messages.length;
    // The oldest event of the batch sets the deadline (the queue is in emit order).
    const startedAt = batch[0]!.emittedAt;
    let error: unknown;
    let unsent = request;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transport.send(unsent);
        error = undefined;
        break;
      } catch (err) {
        // Again only what was not acknowledged: the idempotent producer's sequence numbers
        // advance only on an acknowledgement, so a request the broker wrote but whose answer was
        // lost is deduplicated by the broker (KIP-98), not written twice; but messages that were
        // acknowledged (other partitions of a request that failed in part) would be written again.
        if (err instanceof PartialSendError) unsent = err.unsent;
        const now = Date.now();
        const backoff = Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MS * 2 ** (attempt - 1));
        const retriable = isRetriableSendError(err);
        if (!retriable || now + backoff >= startedAt + this.deliveryTimeoutMs) {
          // A missing ACL already names the operation, the topic and the principal (lib/kafka.ts):
          // clearer as it is than as one more cause of a DeliveryError.
          error = !retriable && err instanceof KafkaAuthorizationError ? err : new DeliveryError(this.brokers, attempt, now - startedAt, retriable, err);
          break;
        }
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
    for (const p of batch) this.inFlightEvents -= p.messages.length;
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
    if (this.unackedBytes <= this.maxBufferedBytes) for (const wake of [...this.waiters]) wake();
  }
}

/** The field with the most bytes (strings), to name in a too-large error. */
function largestField(record: Record<string, unknown>): string {
  let best = '(event)';
  let bestBytes = -1;
  for (const [name, value] of Object.entries(record)) {
    const bytes = typeof value === 'string' ? Buffer.byteLength(value) : 8;
    if (bytes > bestBytes) [best, bestBytes] = [name, bytes];
  }
  return best;
}

/**
 * ProducerOptions.flushOnExit. 'beforeExit' fires when the event loop empties (not on
 * process.exit() or an uncaught exception: nothing can flush then, see the README). A signal
 * handler replaces Node's default of exiting at once, so after close() it is removed and the
 * signal raised again, which ends the process as the signal would have.
 */
function installExitHooks(producer: EventProducer): () => void {
  const onBeforeExit = () => void producer.close();
  const onSignal = (signal: NodeJS.Signals) => {
    remove();
    producer.close().finally(() => process.kill(process.pid, signal));
  };
  const onExit = () => {
    const lost = producer.pendingEvents;
    // Synchronous, on the way out: the one thing still possible is to say what is lost.
    if (lost > 0) process.stderr.write(`ingest producer: process exiting without close(): ${lost} events not acknowledged by Kafka are lost\n`);
  };
  process.on('beforeExit', onBeforeExit);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('exit', onExit);
  function remove() {
    process.off('beforeExit', onBeforeExit);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('exit', onExit);
  }
  return remove;
}

/** The Kafka connection an EventProducer connects with (producerKafkaSettings). */
export interface ProducerKafkaSettings {
  brokers: string[];
  clientId: string;
  topicPrefix: string;
  security: KafkaSecurity;
  /** Where each security field came from (an option, a variable, or neither), for the errors of the rules between them. */
  securityName: (field: keyof KafkaSecurity) => string;
}

/**
 * The Kafka connection: each option given, else its KAFKA_* variable (kafkaSettingsFromEnv, the
 * worker's checks), else the default. A variable whose option is given is not read at all (as
 * the Python SDK does), so a stale or bad one cannot stop an app that sets the option. Options
 * are checked with the same schemas as the variables, so `brokers: ['kafka']` is refused here,
 * naming the option, not at connect time. Throws ConfigError.
 */
export function producerKafkaSettings(opts: ProducerOptions, env: NodeJS.ProcessEnv = process.env): ProducerKafkaSettings {
  const given = Object.fromEntries(Object.entries(opts.security ?? {}).filter(([, v]) => v !== undefined)) as KafkaSecurity;
  const isGiven = (field: string) => field in given || (opts as Record<string, unknown>)[field] !== undefined;
  const unread = new Set(Object.entries(KAFKA_ENV).filter(([, field]) => isGiven(field)).flatMap(([name]) => [name, `${name}_FILE`]));
  const fromEnv = kafkaSettingsFromEnv(Object.fromEntries(Object.entries(env).filter(([name]) => !unread.has(name))));
  const problems: string[] = [];
  const option = <T>(name: 'brokers' | 'clientId' | 'topicPrefix', value: T | undefined): T | undefined => {
    if (value === undefined) return undefined;
    const parsed = KAFKA_SETTINGS[name].safeParse(value);
    if (parsed.success) return parsed.data as T;
    for (const issue of parsed.error.issues) problems.push(`ProducerOptions.${name}${issue.path.length ? `[${issue.path.join('.')}]` : ''}: ${issue.message}`);
    return undefined;
  };
  const brokers = option('brokers', opts.brokers) ?? fromEnv.brokers ?? ['127.0.0.1:9092'];
  const clientId = option('clientId', opts.clientId) ?? fromEnv.clientId ?? 'ingest-producer';
  const topicPrefix = option('topicPrefix', opts.topicPrefix) ?? fromEnv.topicPrefix ?? 'ingest.';
  if (problems.length > 0) throw new ConfigError(`invalid ProducerOptions:\n  - ${problems.join('\n  - ')}`);
  // A field set in neither place is named both ways: either is where to fix it.
  const securityName = (field: keyof KafkaSecurity) =>
    field in given ? `ProducerOptions.security.${field}` : (fromEnv.sources[field] ?? `${KAFKA_SECURITY_ENV[field]} (or ProducerOptions.security.${field})`);
  return { brokers, clientId, topicPrefix, security: { ...fromEnv.security, ...given }, securityName };
}

/** The schema registration of wireFormat 'confluent' (options, else INGEST_PRODUCER_WIRE_FORMAT and SCHEMA_REGISTRY_*); undefined for single-object. */
function schemaRegistrationOf(opts: ProducerOptions, env: NodeJS.ProcessEnv = process.env): SchemaRegistration | undefined {
  const format = opts.wireFormat ?? wireFormatFromEnv(env.INGEST_PRODUCER_WIRE_FORMAT);
  if (!WIRE_FORMATS.includes(format)) throw new RangeError(`ProducerOptions.wireFormat must be one of ${WIRE_FORMATS.join(', ')}, got ${String(format)}`);
  if (format === 'single-object') return undefined;
  const given = opts.schemaRegistry ?? {};
  const fromGiven = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<RegistrySettings>;
  const merged = { ...registrySettingsFromEnv(env), ...fromGiven };
  const name = (f: keyof RegistrySettings) => (f in fromGiven ? `ProducerOptions.schemaRegistry.${f}` : `${registryEnvName(f)} (or ProducerOptions.schemaRegistry.${f})`);
  if (merged.url === undefined) throw new ConfigError(`wireFormat 'confluent' needs a schema registry: ${name('url')}`);
  const settings = parseRegistrySettings(merged, name);
  return new SchemaRegistration(createRegistryClient(settings));
}

function wireFormatFromEnv(value: string | undefined): WireFormat {
  if (value === undefined || value === '') return 'single-object';
  if ((WIRE_FORMATS as readonly string[]).includes(value)) return value as WireFormat;
  throw new RangeError(`INGEST_PRODUCER_WIRE_FORMAT must be one of ${WIRE_FORMATS.join(', ')}, got '${value}'`);
}

function compressionFromEnv(value: string | undefined): KafkaCodec {
  if (value === undefined || value === '') return 'gzip';
  if ((KAFKA_CODECS as readonly string[]).includes(value)) return value as KafkaCodec;
  throw new RangeError(`INGEST_PRODUCER_COMPRESSION must be one of ${KAFKA_CODECS.join(', ')}, got '${value}'`);
}

function producerClientFromEnv(value: string | undefined): ProducerClient | undefined {
  if (value === undefined || value === '') return undefined;
  if ((PRODUCER_CLIENTS as readonly string[]).includes(value)) return value as ProducerClient;
  throw new RangeError(`INGEST_PRODUCER_CLIENT must be one of ${PRODUCER_CLIENTS.join(', ')}, got '${value}'`);
}
