import { Producer as PlatformaticProducer, compatibilityPartitioner } from '@platformatic/kafka';
import { Partitioners, type Admin as KafkajsAdmin, type CompressionTypes, type ICustomPartitioner, type PartitionMetadata, type Producer as KafkajsProducer } from 'kafkajs';
import zlib from 'node:zlib';
import { createKafka } from './kafka-client.js';
import { installKafkaCodecs, KAFKAJS_COMPRESSION, type KafkaCodec } from './kafka-codecs.js';
import { KafkaConnectError, asAuthorizationError } from './kafka-errors.js';
import { kafkaSecurity, platformaticSecurityOptions, type OAuthBearerProvider } from './kafka-security.js';
import type { KafkaSecurity } from './kafka-settings.js';

/**
 * The one seam between the producer SDK and a Kafka client library. EventProducer batches,
 * validates and encodes; a transport only ships a request and reports its acknowledgement.
 * Both transports: idempotent, acks=all, the Java client's murmur2 key partitioning (a key maps
 * to the same partition from any producer, in any language), one request at a time per partition.
 */
export interface ProducerTransport {
  readonly client: ProducerClient;
  /**
   * Sends the messages of one or more topics; resolves when every one is acknowledged by all
   * in-sync replicas. Rejects with PartialSendError when only some were acknowledged (the rest
   * are in Kafka): retry only its `unsent`. Any other rejection: nothing is known to be written.
   */
  send(topics: readonly OutgoingTopic[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * No timestamp: the client stamps the send time (Kafka's CreateTime). The event's own time stays
 * in the payload. Kafka's time-based retention and segment rolling read the record timestamp, so
 * an event time from the past (a backfill, a device that buffered for days, a skewed clock) as
 * the record timestamp would let the broker delete the event before any worker has read it.
 * (The shape is kafkajs's Message, so the default path hands messages over uncopied.)
 */
export interface OutgoingMessage {
  key: string;
  value: Buffer;
}

export interface OutgoingTopic {
  topic: string;
  messages: OutgoingMessage[];
}

/**
 * Some of a request's messages were acknowledged and some were not. The acknowledged ones are in
 * Kafka and their partitions' idempotence sequence numbers moved past them: sent again, they
 * would be written again (new sequence numbers, not a duplicate the broker drops). Retry
 * exactly `unsent`, which keeps the request's order within each partition.
 */
export class PartialSendError extends Error {
  override readonly name = 'PartialSendError';
  constructor(
    readonly unsent: OutgoingTopic[],
    override readonly cause: unknown,
  ) {
    super(`${unsent.reduce((n, t) => n + t.messages.length, 0)} message(s) not acknowledged: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * - `platformatic`: `@platformatic/kafka`, pure TypeScript; the default (defaultProducerClient).
 *   It sent 1.56x the SDK's events per second of kafkajs in one full benchmark and 2.1x in the
 *   Kafka client comparison (BENCHMARKS.md), and the fault suite passes exact with it.
 * - `kafkajs`: the client the worker consumes with; kept as an option with the same guarantees,
 *   and the default where the runtime lacks what `platformatic` needs (zstd in node:zlib).
 */
export const PRODUCER_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type ProducerClient = (typeof PRODUCER_CLIENTS)[number];

/** Whether node:zlib compresses zstd (Node >= 22.15 / 23.8): @platformatic/kafka compresses with it. */
export const zlibHasZstd = (): boolean => typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';

/**
 * The client used when neither ProducerOptions.client nor INGEST_PRODUCER_CLIENT names one:
 * `platformatic`, the faster one, unless the codec is zstd and node:zlib has none, where only
 * kafkajs (through @mongodb-js/zstd) can send: a default must not refuse a valid configuration.
 */
export function defaultProducerClient(compression: KafkaCodec, hasZstd: boolean = zlibHasZstd()): ProducerClient {
  return compression === 'zstd' && !hasZstd ? 'kafkajs' : 'platformatic';
}

export interface TransportOptions {
  client: ProducerClient;
  brokers: string[];
  clientId: string;
  compression: KafkaCodec;
  connectionTimeoutMs: number;
  /** TLS and SASL (ProducerOptions.security and the KAFKA_* variables); unset: PLAINTEXT. */
  security?: KafkaSecurity;
  /** How an error names a security field (its option or variable). Default `ProducerOptions.security.<field>`. */
  securityName?: (field: keyof KafkaSecurity) => string;
  oauthBearerProvider?: OAuthBearerProvider;
  /** kafkajs only: how many idempotent producers share the partitions (KafkajsTransport). Default KAFKAJS_PRODUCERS. */
  kafkajsProducers?: number;
}

const optionName = (f: keyof KafkaSecurity) => `ProducerOptions.security.${f}`;

/** Connects; a failure to reach or authenticate with the brokers rejects with a KafkaConnectError naming them and the cause. */
export async function connectTransport(opts: TransportOptions): Promise<ProducerTransport> {
  // Validates the security options before any connection (throws ConfigError naming the option).
  kafkaSecurity(opts.security ?? {}, opts.oauthBearerProvider, opts.securityName ?? optionName);
  // @platformatic/kafka compresses zstd with node:zlib, which has zstd from Node 22.15 / 23.8 on.
  if (opts.client === 'platformatic' && opts.compression === 'zstd' && !zlibHasZstd()) {
    throw new RangeError(`compression 'zstd' with client 'platformatic' needs node:zlib zstd (Node >= 22.15); this is Node ${process.versions.node}. Use client 'kafkajs' or another codec`);
  }
  try {
    return await (opts.client === 'platformatic' ? PlatformaticTransport.connect(opts) : KafkajsTransport.connect(opts));
  } catch (err) {
    throw new KafkaConnectError(opts.brokers, opts.security ?? {}, err);
  }
}

/**
 * murmur2 on the key, as the Java client does, so a key maps to the same partition from any
 * producer; memoised per topic, partition count and key, because kafkajs computes murmur2 with
 * Long objects (about a tenth of the SDK's CPU in the benchmark) and keys repeat (customers, runs).
 */
export const cachedKeyPartitioner: ICustomPartitioner = () => {
  const murmur2 = Partitioners.DefaultPartitioner();
  const cache = new Map<string, number>();
  return (args) => {
    if (typeof args.message.partition === 'number') return args.message.partition;
    const key = args.message.key;
    if (key === null || key === undefined) return murmur2(args);
    const id = `${args.topic}\u0000${args.partitionMetadata.length}\u0000${String(key)}`;
    let partition = cache.get(id);
    if (partition === undefined) {
      partition = murmur2(args);
      if (cache.size >= 100_000) cache.clear();
      cache.set(id, partition);
    }
    return partition;
  };
};

/** A message as the kafkajs transport hands it over: the key's bytes, the partition chosen. */
interface KafkajsMessage {
  key: Buffer;
  value: Buffer;
  partition: number;
}

/** One partition's messages of a request: one kafkajs `sendBatch`. */
interface PartitionCall {
  topic: string;
  partition: number;
  messages: KafkajsMessage[];
}

/** A partition's sendBatch failed after `acked` of its messages were acknowledged. */
interface PartitionFailure {
  reason: unknown;
  acked: number;
}

/** The kafkajs producer calls a transport makes (a fake in unit tests). */
export type KafkajsSender = Pick<KafkajsProducer, 'sendBatch' | 'disconnect'>;

/** A topic's partitions as Kafka reports them (`refresh`: ask the broker, not a cache). */
export type PartitionsOf = (topic: string, refresh: boolean) => Promise<PartitionMetadata[]>;

/**
 * Builds the kafkajs transport over connected producers (tests pass fakes and partitions):
 * partition p always goes through `producers[p % producers.length]`.
 */
export function kafkajsTransport(producers: KafkajsSender | readonly KafkajsSender[], compression: CompressionTypes, partitionsOf: PartitionsOf, security: KafkaSecurity = {}): ProducerTransport {
  return new KafkajsTransport(Array.isArray(producers) ? producers : [producers as KafkajsSender], compression, partitionsOf, security, async () => undefined);
}

/**
 * How many idempotent kafkajs producers a kafkajs transport spreads the partitions over. kafkajs
 * lets an idempotent producer have one request in flight per broker (it serialises the
 * per-partition requests of KafkajsTransport.send behind a lock, each encoded, compressed and
 * acknowledged before the next starts); with several producers, the requests of different
 * partitions are in flight together: one is compressed on Node's thread pool and waits for the
 * broker while the JS thread encodes the next (like the Java client's
 * max.in.flight.requests.per.connection 5 with idempotence). Each partition stays with one
 * producer, so its sequence numbers, its order and the broker's deduplication are as with one.
 * Costs one producer id and one connection per broker each.
 */
export const KAFKAJS_PRODUCERS = 4;

/**
 * Most messages per kafkajs `sendBatch` (one partition's record batch): a larger partition share
 * of a request goes as several, one after another on the partition's producer (each after the
 * previous one's acknowledgement, so order and sequence numbers are as in one). kafkajs groups a
 * sendBatch's messages per partition by copying the partition's array once per message
 * (src/producer/groupMessagesPerPartition.js): time and garbage quadratic in their number (at
 * 1,600 messages per partition, a quarter of the JS thread's CPU with the garbage collection it
 * causes; BENCHMARKS.md, "Producer SDK"). 500 messages of ~150 B (~75 KB) are about one record
 * batch of the Java client with batch.size 64 KiB.
 */
export const KAFKAJS_BATCH_MESSAGES = 500;

/**
 * kafkajs `sendBatch` calls of one partition each (at most KAFKAJS_BATCH_MESSAGES messages), the
 * partitions concurrently, so that a failure is known per partition.
 *
 * Why: kafkajs sends one produce request per leader broker. When one broker's request fails and
 * the others succeed, kafkajs has already advanced the idempotence sequence numbers of the
 * partitions that succeeded, and the call rejects without saying which messages were written
 * (src/producer/sendMessages.js). The SDK retried the whole request, so the partitions that had
 * succeeded were written again under new sequence numbers: duplicates in Kafka (or
 * OutOfOrderSequence). kafkajs's own retries do not cover it either: they skip every broker that
 * answered once (`responsePerBroker`), so after the failed broker's partitions move to a broker
 * that already answered they are not sent at all (tulios/kafkajs#1303).
 * A call that holds one partition goes to one broker in one request: on failure kafkajs rolls
 * that partition's sequence back, so its own retries and ours resend it with the same sequence
 * and the broker drops what it already wrote (KIP-98); on success nothing of it is sent again.
 * Requests of one kafkajs producer to one broker are serialised (maxInFlightRequests 1), so the
 * partitions are spread over KAFKAJS_PRODUCERS producers, partition p always through producer
 * p % KAFKAJS_PRODUCERS: up to that many of a request's partitions are in flight at once.
 * Keys are handed over as bytes (cached per key): kafkajs would encode a string key again in
 * every record. A partition's share of a request goes in sendBatch calls of at most
 * KAFKAJS_BATCH_MESSAGES, one after another.
 */
class KafkajsTransport implements ProducerTransport {
  readonly client = 'kafkajs';
  private readonly partitioner = cachedKeyPartitioner();
  private readonly partitions = new Map<string, Promise<PartitionMetadata[]>>();
  /** Keys as bytes: kafkajs would encode a string key anew in every record. */
  private readonly keyBytes = utf8KeyCache();

  constructor(
    private readonly producers: readonly KafkajsSender[],
    private readonly compression: CompressionTypes,
    private readonly partitionsOf: PartitionsOf,
    private readonly security: KafkaSecurity,
    private readonly closeMetadata: () => Promise<void>,
  ) {}

  static async connect(opts: TransportOptions): Promise<KafkajsTransport> {
    const kafka = createKafka({ brokers: opts.brokers, clientId: opts.clientId, connectionTimeoutMs: opts.connectionTimeoutMs, ...opts.security }, '', undefined, opts.oauthBearerProvider);
    const producers = Array.from({ length: opts.kafkajsProducers ?? KAFKAJS_PRODUCERS }, () => kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: cachedKeyPartitioner }));
    // kafkajs ships only gzip; the other codecs are the worker's (kafka-codecs.ts).
    installKafkaCodecs();
    const admin: KafkajsAdmin = kafka.admin();
    try {
      await Promise.all([...producers.map((p) => p.connect()), admin.connect()]);
    } catch (err) {
      await Promise.all([...producers.map((p) => p.disconnect()), admin.disconnect()].map((p) => p.catch(() => undefined)));
      throw err;
    }
    const partitionsOf: PartitionsOf = async (topic) => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      return topics[0]?.partitions ?? [];
    };
    return new KafkajsTransport(producers, KAFKAJS_COMPRESSION[opts.compression], partitionsOf, opts.security ?? {}, () => admin.disconnect());
  }

  async send(topics: readonly OutgoingTopic[]): Promise<void> {
    const calls: PartitionCall[] = [];
    try {
      for (const { topic, messages } of topics) {
        const partitionMetadata = await this.metadataOf(topic);
        if (partitionMetadata.length === 0) throw new Error(`topic ${topic} has no partitions (does it exist?)`);
        const byPartition = new Map<number, KafkajsMessage[]>();
        for (const m of messages) {
          const partition = this.partitioner({ topic, partitionMetadata, message: m });
          const list = byPartition.get(partition);
          // `partition` is set so kafkajs's partitioner (cachedKeyPartitioner) keeps it as it is.
          const message = { key: this.keyBytes(m.key), value: m.value, partition };
          if (list) list.push(message);
          else byPartition.set(partition, [message]);
        }
        for (const [partition, list] of byPartition) calls.push({ topic, partition, messages: list });
      }
    } catch (err) {
      this.partitions.clear();
      throw asAuthorizationError(err, `write to ${topics.map((t) => t.topic).join(', ')}`, this.security);
    }
    // Each partition's messages in sendBatch calls of at most KAFKAJS_BATCH_MESSAGES, one after
    // another on the partition's producer; `acked` counts the messages acknowledged before a failure.
    const results = await Promise.allSettled(calls.map((c) => this.sendPartition(c)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ call: calls[i]!, ...(r.reason as PartitionFailure) }] : []));
    if (failed.length === 0) return;
    // A partition count may have changed, or the topic been recreated: partitions asked again next time.
    this.partitions.clear();
    const cause = failed.length === 1 ? failed[0]!.reason : new AggregateError(failed.map((f) => f.reason), `${failed.length} of ${calls.length} partition requests failed`);
    const err = asAuthorizationError(cause, `write to ${topics.map((t) => t.topic).join(', ')}`, this.security);
    if (failed.length === calls.length && failed.every((f) => f.acked === 0)) throw err;
    // The unsent messages keep their partition, so that a retry resends each to the partition
    // (and in the batches) whose sequence numbers kafkajs rolled back: a partition's unsent
    // messages start at a batch boundary, so they are cut into the same batches again.
    const unsent = failed.map(({ call, acked }) => ({ topic: call.topic, messages: call.messages.slice(acked).map((m): OutgoingMessage => ({ key: m.key.toString(), value: m.value, partition: m.partition }) as OutgoingMessage) }));
    throw new PartialSendError(mergeByTopic(unsent), err);
  }

  /** One partition's messages, in order; rejects with a PartitionFailure (how many were acknowledged before). */
  private async sendPartition(c: PartitionCall): Promise<void> {
    const producer = this.producers[c.partition % this.producers.length]!;
    let acked = 0;
    while (acked < c.messages.length) {
      const messages = c.messages.length - acked <= KAFKAJS_BATCH_MESSAGES ? (acked === 0 ? c.messages : c.messages.slice(acked)) : c.messages.slice(acked, acked + KAFKAJS_BATCH_MESSAGES);
      try {
        await producer.sendBatch({ acks: -1, compression: this.compression, topicMessages: [{ topic: c.topic, messages }] });
      } catch (reason) {
        throw { reason, acked } satisfies PartitionFailure;
      }
      acked += messages.length;
    }
  }

  async close(): Promise<void> {
    try {
      await Promise.all(this.producers.map((p) => p.disconnect()));
    } finally {
      await this.closeMetadata().catch(() => undefined);
    }
  }


  private metadataOf(topic: string): Promise<PartitionMetadata[]> {
    let p = this.partitions.get(topic);
    if (!p) {
      p = this.partitionsOf(topic, true);
      this.partitions.set(topic, p);
      p.catch(() => this.partitions.delete(topic));
    }
    return p;
  }
}

function mergeByTopic(calls: OutgoingTopic[]): OutgoingTopic[] {
  const byTopic = new Map<string, OutgoingMessage[]>();
  for (const c of calls) byTopic.set(c.topic, [...(byTopic.get(c.topic) ?? []), ...c.messages]);
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/**
 * Keys are serialised and hashed once per distinct key (they repeat: customers, runs; murmur2 was
 * 6% of the SDK's CPU with this client), and the partition is the Java client's
 * `toPositive(murmur2(key)) % partitions`: `compatibilityPartitioner`, not the
 * library's default (which, on a partition count that is not a power of two, puts a key with a
 * negative hash on a different partition than Java and kafkajs do).
 */
class PlatformaticTransport implements ProducerTransport {
  readonly client = 'platformatic';
  private readonly key = utf8KeyCache();
  /** Hash per key Buffer (identity: the Buffers come from `key`, one per distinct key); the library takes the modulo. */
  private readonly keyHashes = new WeakMap<Buffer, number>();

  constructor(
    private readonly producer: PlatformaticSender,
    private readonly compression: KafkaCodec,
    private readonly security: KafkaSecurity,
  ) {}

  static async connect(opts: TransportOptions): Promise<PlatformaticTransport> {
    // The partitioner needs the transport's cache, and the transport needs the producer.
    let transport!: PlatformaticTransport;
    const security = kafkaSecurity(opts.security ?? {}, opts.oauthBearerProvider, opts.securityName ?? optionName);
    const producer = new PlatformaticProducer<Buffer, Buffer, string, string>({
      clientId: opts.clientId,
      bootstrapBrokers: opts.brokers,
      connectTimeout: opts.connectionTimeoutMs,
      ...platformaticSecurityOptions(security),
      idempotent: true,
      acks: -1,
      autocreateTopics: false,
      partitioner: (message, key) => (key === undefined ? compatibilityPartitioner(message, key) : transport.hashOf(key)),
      // kafkajs's default: 5 retries; the idempotent producer makes a retried request land once.
      retries: 5,
      retryDelay: 300,
      serializers: { key: (k) => k, value: (v) => v, headerKey: (k) => (k === undefined ? undefined : Buffer.from(k)), headerValue: (v) => (v === undefined ? undefined : Buffer.from(v)) },
    });
    // The library connects lazily; a metadata round trip here makes connect() fail fast on a bad broker list.
    transport = new PlatformaticTransport(producer, opts.compression, opts.security ?? {});
    try {
      await producer.metadata({ topics: [] });
    } catch (err) {
      await producer.close().catch(() => undefined);
      throw err;
    }
    return transport;
  }

  /**
   * One library call for the whole request. The library sends one produce request per leader
   * broker; when one fails after the others succeeded, it advances the idempotence sequence
   * numbers of the partitions that were acknowledged only, and says which in the error
   * (`produced.offsets`). Resending the whole request would write those partitions' messages a
   * second time under new sequence numbers (the fault suite's leader kill -9 found 35 such
   * duplicates), so the rejection is a PartialSendError holding only the other partitions'
   * messages: the retry sends them under the sequence numbers of the failed attempt, and the
   * broker drops what of them it had already written (KIP-98).
   */
  async send(topics: readonly OutgoingTopic[]): Promise<void> {
    const messages = [];
    for (const { topic, messages: list } of topics) {
      for (const m of list) messages.push({ topic, key: this.key(m.key), value: m.value });
    }
    try {
      await this.producer.send({ messages, acks: -1, idempotent: true, compression: this.compression });
    } catch (err) {
      const error = asAuthorizationError(err, `write to ${topics.map((t) => t.topic).join(', ')}`, this.security);
      const written = acknowledgedPartitions(err);
      if (written.size === 0) throw error;
      const unsent = await this.unsent(topics, written).catch(() => undefined);
      // Partition counts unknown (metadata unreachable): nothing can be said of single messages.
      if (!unsent) throw error;
      if (unsent.length === 0) return;
      throw new PartialSendError(unsent, error);
    }
  }

  /** The messages of `topics` whose partition is not in `written` (`topic:partition`), per topic. */
  private async unsent(topics: readonly OutgoingTopic[], written: ReadonlySet<string>): Promise<OutgoingTopic[]> {
    const metadata = await this.producer.metadata({ topics: topics.map((t) => t.topic) });
    const out: OutgoingTopic[] = [];
    for (const { topic, messages } of topics) {
      const count = metadata.topics.get(topic)?.partitionsCount;
      if (!count) throw new Error(`no partition count for ${topic}`);
      // The library's choice: the partitioner's hash (below, memoised per key) modulo the count.
      const left = messages.filter((m) => !written.has(`${topic}:${this.hashOf(this.key(m.key)) % count}`));
      if (left.length > 0) out.push({ topic, messages: left });
    }
    return out;
  }

  /** The Java client's murmur2 hash of a key, memoised per key Buffer (the partitioner's). */
  hashOf(key: Buffer): number {
    let hash = this.keyHashes.get(key);
    if (hash === undefined) this.keyHashes.set(key, (hash = compatibilityPartitioner({ key } as never, key)));
    return hash;
  }

  close(): Promise<void> {
    return this.producer.close();
  }

}

/** What PlatformaticTransport uses of the library's producer (tests give a fake). */
export type PlatformaticSender = Pick<PlatformaticProducer<Buffer, Buffer, string, string>, 'send' | 'metadata' | 'close'>;

/**
 * A platformatic transport over `producer` (tests: a fake that fails like a broker does);
 * `connectTransport` builds the real one.
 */
export function platformaticTransport(producer: PlatformaticSender, compression: KafkaCodec, security: KafkaSecurity = {}): ProducerTransport {
  return new PlatformaticTransport(producer, compression, security);
}

/**
 * `topic:partition` of every partition a failed platformatic send had acknowledged: the library
 * attaches them to the error as `produced.offsets` (clients/producer/producer.js performSend).
 */
function acknowledgedPartitions(err: unknown): Set<string> {
  const offsets = (err as { produced?: { offsets?: Array<{ topic: string; partition: number }> } } | null)?.produced?.offsets;
  return new Set(Array.isArray(offsets) ? offsets.map((o) => `${o.topic}:${o.partition}`) : []);
}

/**
 * A key's UTF-8 bytes, made once per distinct key (keys repeat: a customer, a run). Up to
 * 100,000 keys are kept; then the cache starts afresh, so an unbounded key space costs a
 * re-encode, not memory. The same key gets the same Buffer while it is cached.
 */
function utf8KeyCache(): (key: string) => Buffer {
  const cache = new Map<string, Buffer>();
  return (key) => {
    let bytes = cache.get(key);
    if (bytes === undefined) {
      bytes = Buffer.from(key);
      if (cache.size >= 100_000) cache.clear();
      cache.set(key, bytes);
    }
    return bytes;
  };
}

