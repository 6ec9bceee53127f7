import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import { installKafkaCodecs } from '@kafka-clickhouse-ingest/producer/kafka-codecs.js';
import { BROKERS, ROOT, createTopic, round, topicRecordCount } from './common.js';

/**
 * Three Node Kafka clients on the same broker, the same records and the same settings:
 * - `kafkajs`, the client the project uses;
 * - `@platformatic/kafka`, pure TypeScript;
 * - `@confluentinc/kafka-javascript` (librdkafka), through its KafkaJS-compatible API (`KafkaJS`).
 *
 * Per client, on a fresh topic of its own:
 * - produce-only: `total` records (the encoded pool cycled, each with its event's key), idempotent,
 *   acks=all, gzip, sends of about 1 MiB. Timed from the first send to the last acknowledgement;
 *   the topic must then hold exactly `total` records;
 * - consume-only: a new group reads that topic from the earliest offset and only counts records.
 *   Timed from the group join (partitions assigned) to the `total`-th record, as Kafka's
 *   ConsumerPerformance fetch rate: the first fetch is part of the work, connecting is not.
 *
 * The Confluent client is not a project dependency: bench/install-clients.sh installs pinned
 * versions of both alternatives into .cache/bench-clients, and they are loaded from there only.
 * (@platformatic/kafka is also the producer SDK's optional client, at a caret range; the bench
 * measures the pinned copy, so its figures do not move with the project's lockfile.)
 */

export const KAFKA_CLIENTS = ['kafkajs', 'platformatic', 'confluent'] as const;
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number];

export interface ProduceFigures {
  records: number;
  seconds: number;
  recordsPerSec: number;
  /** Keys + values as handed to the client (before compression), 10^6 bytes per MB. */
  mbPerSec: number;
  /** CPU seconds of this process (all threads, librdkafka's included) while producing. */
  cpuSeconds: number;
}

export interface ConsumeFigures {
  records: number;
  seconds: number;
  recordsPerSec: number;
  /** CPU seconds of this process (all threads) from the consumer's creation to the last record. */
  cpuSeconds: number;
}

export interface KafkaClientFigures {
  client: KafkaClientName;
  package: string;
  version: string;
  /** librdkafka the Confluent client runs on (its bundled build). */
  librdkafka?: string;
  produce: ProduceFigures;
  consume: ConsumeFigures;
}

export interface KafkaClientComparison {
  parameters: typeof PARAMETERS & {
    records: number;
    partitions: number;
    recordsPerSend: number;
    avgValueBytes: number;
    avgKeyBytes: number;
    distinctKeys: number;
  };
  clients: KafkaClientFigures[];
}

const MiB = 1024 * 1024;
/** The worker's consumer settings (kafkajs's `maxBytes` left at its default, 10 MiB), for all three. */
const CONSUME = { maxBytesPerPartition: 4 * MiB, maxBytes: 10 * MiB, maxWaitMs: 1_000 };
/** librdkafka sends: outstanding `send()` calls of the KafkaJS-compatible API (see `confluentProduce`). */
const CONFLUENT_OUTSTANDING_SENDS = 8;
const CONFLUENT_LINGER_MS = 5;

const PARAMETERS = {
  produce: {
    idempotent: true,
    acks: -1,
    compression: 'gzip',
    sendBytes: MiB,
    partitioner: "murmur2 of the key, the Java client's (kafkajs DefaultPartitioner, platformatic compatibilityPartitioner, librdkafka murmur2_random)",
    outstandingSends: { kafkajs: 1, platformatic: 1, confluent: CONFLUENT_OUTSTANDING_SENDS },
    confluent: { 'linger.ms': CONFLUENT_LINGER_MS },
  },
  consume: {
    ...CONSUME,
    fromBeginning: true,
    autoCommit: false,
    delivery: { kafkajs: 'eachBatch, partitionsConsumedConcurrently 1', platformatic: "MessagesStream 'data' events", confluent: 'KafkaJS eachBatch, partitionsConsumedConcurrently 1, js.consumer.max.batch.size default (32)' },
  },
  timing: 'produce: first send → last ack; consume: group join → total-th record',
};

// ---------------------------------------------------------------------------------------------
// The alternative clients, typed as far as this file uses them: they are loaded at run time from
// the cache folder, which the type checker does not see (and the Confluent client is not in the
// project's node_modules at all).

/** `@platformatic/kafka` 1.35 (ESM). */
interface PlatformaticModule {
  Producer: new (options: {
    clientId: string;
    bootstrapBrokers: string[];
    idempotent: boolean;
    acks: number;
    compression: 'gzip';
    autocreateTopics: boolean;
    partitioner: unknown;
    serializers: { key: (key?: string) => Buffer | undefined; value: (value?: Buffer) => Buffer | undefined };
  }) => PlatformaticProducer;
  Consumer: new (options: {
    clientId: string;
    bootstrapBrokers: string[];
    groupId: string;
    autocommit: boolean;
    maxBytes: number;
    maxBytesPerPartition: number;
    maxWaitTime: number;
  }) => PlatformaticConsumer;
  MessagesStreamModes: { EARLIEST: string };
  /** The Java client's partition for a key (the library's default differs for negative hashes). */
  compatibilityPartitioner: unknown;
  stringSerializer: (data?: string) => Buffer | undefined;
}

interface PlatformaticProducer {
  metadata(options: { topics: string[] }): Promise<unknown>;
  send(options: { messages: { topic: string; key: string; value: Buffer }[] }): Promise<unknown>;
  close(): Promise<void>;
}

interface PlatformaticConsumer {
  on(event: 'consumer:group:join', listener: () => void): unknown;
  consume(options: { topics: string[]; mode: string; autocommit: boolean }): Promise<PlatformaticStream>;
  close(force: boolean): Promise<void>;
}

interface PlatformaticStream {
  on(event: 'data', listener: (message: unknown) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  close(): Promise<void>;
}

/** `@confluentinc/kafka-javascript` 1.10 (CommonJS): the native binding and its KafkaJS-compatible API. */
interface ConfluentModule {
  librdkafkaVersion: string;
  CODES: { ERRORS: { ERR__ASSIGN_PARTITIONS: number } };
  KafkaJS: {
    Kafka: new (config: { kafkaJS: { clientId: string; brokers: string[]; logLevel: number } }) => ConfluentKafka;
    CompressionTypes: { GZIP: string };
    logLevel: { ERROR: number };
  };
}

interface ConfluentKafka {
  producer(config: {
    kafkaJS: { idempotent: boolean; acks: number; compression: string; allowAutoTopicCreation: boolean };
    'linger.ms': number;
  }): ConfluentProducer;
  consumer(config: {
    kafkaJS: { groupId: string; fromBeginning: boolean; autoCommit: boolean; maxBytesPerPartition: number; maxBytes: number; maxWaitTimeInMs: number; allowAutoTopicCreation: boolean };
    'fetch.max.bytes': number;
    rebalance_cb: (err: { code: number }) => void;
  }): ConfluentConsumer;
}

interface ConfluentProducer {
  connect(): Promise<void>;
  send(record: { topic: string; messages: { key: string; value: Buffer }[] }): Promise<unknown>;
  disconnect(): Promise<void>;
}

interface ConfluentConsumer {
  connect(): Promise<void>;
  subscribe(subscription: { topics: string[] }): Promise<void>;
  run(config: { partitionsConsumedConcurrently: number; eachBatch: (payload: { batch: { messages: unknown[] } }) => Promise<void> }): Promise<void>;
  disconnect(): Promise<void>;
}

interface AlternativeClients {
  platformatic: { module: PlatformaticModule; version: string };
  confluent: { module: ConfluentModule; version: string };
}

export const CLIENTS_DIR = join(ROOT, '.cache/bench-clients');
const PACKAGES = { platformatic: '@platformatic/kafka', confluent: '@confluentinc/kafka-javascript', kafkajs: 'kafkajs' } as const;

/** By path: @platformatic/kafka does not export its package.json. */
function installedVersion(nodeModules: string, name: string): string {
  return String(JSON.parse(readFileSync(join(nodeModules, name, 'package.json'), 'utf8')).version);
}

async function importClients(): Promise<AlternativeClients> {
  const nodeModules = join(CLIENTS_DIR, 'node_modules');
  const requireFromCache = createRequire(join(CLIENTS_DIR, 'package.json'));
  // Resolution walks up to the project's node_modules when a package is missing from the cache
  // folder; only the cache's copies (the pinned versions) are measured.
  const resolve = (name: string) => {
    const path = requireFromCache.resolve(name);
    if (!path.startsWith(nodeModules + sep)) throw new Error(`${name} resolves to ${path}, outside ${nodeModules}`);
    return path;
  };
  // @platformatic/kafka is ESM only: resolved from the cache folder, then imported (require(esm)
  // works on Node 20.19+, but import() does not depend on it or on tsx's require hooks).
  const platformatic = (await import(pathToFileURL(resolve(PACKAGES.platformatic)).href)) as PlatformaticModule;
  const confluent = requireFromCache(resolve(PACKAGES.confluent)) as ConfluentModule;
  return {
    platformatic: { module: platformatic, version: installedVersion(nodeModules, PACKAGES.platformatic) },
    confluent: { module: confluent, version: installedVersion(nodeModules, PACKAGES.confluent) },
  };
}

/** Loads the alternative clients; installs them once if they do not load. Throws if they still do not. */
export async function loadAlternativeClients(): Promise<AlternativeClients> {
  try {
    return await importClients();
  } catch (err) {
    process.stderr.write(`kafka-clients: cannot load the alternative clients from ${CLIENTS_DIR} (${(err as Error).message.split('\n')[0]}); running bench/install-clients.sh\n`);
    // The install's output goes to our stderr, so a caller's stdout (JSON) stays clean. The
    // Confluent client compiles librdkafka: minutes, not seconds.
    execFileSync('bash', [join(ROOT, 'bench/install-clients.sh')], { cwd: ROOT, stdio: ['ignore', 2, 2], timeout: 20 * 60_000 });
    return importClients();
  }
}

// ---------------------------------------------------------------------------------------------

interface Workload {
  topic: string;
  group: string;
  values: readonly Buffer[];
  keys: readonly string[];
  total: number;
  recordsPerSend: number;
  /** Any phase still unfinished after this long fails (and its client is closed). */
  timeoutMs: number;
}

/** What a consume-only run needs of a workload: its topic, a new group, the count, a time limit. */
export type ConsumeWork = Pick<Workload, 'topic' | 'group' | 'total' | 'timeoutMs'>;

/** The records of one send: indices [from, from + n) of the cycled pool. */
function slice<T>(w: Workload, from: number, make: (key: string, value: Buffer) => T): T[] {
  const n = Math.min(w.recordsPerSend, w.total - from);
  const out = new Array<T>(n);
  for (let i = 0; i < n; i++) {
    const j = (from + i) % w.values.length;
    out[i] = make(w.keys[j]!, w.values[j]!);
  }
  return out;
}

/** Elapsed wall and process-CPU seconds since construction. */
class Stopwatch {
  private readonly wall = performance.now();
  private readonly cpu = process.cpuUsage();
  seconds(): number {
    return (performance.now() - this.wall) / 1000;
  }
  cpuSeconds(): number {
    const { user, system } = process.cpuUsage(this.cpu);
    return (user + system) / 1e6;
  }
}

function deadline(what: string, ms: number): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${Math.round(ms / 1000)} s`)), ms);
  });
  promise.catch(() => {}); // only observed through Promise.race
  return { promise, clear: () => clearTimeout(timer) };
}

/**
 * Produces the workload with `send` (one call per `recordsPerSend` records, at most `outstanding`
 * unacknowledged), within the workload's timeout. Timed from the first send to the last ack.
 */
async function timedProduce(w: Workload, what: string, outstanding: number, send: (from: number) => Promise<unknown>): Promise<{ seconds: number; cpuSeconds: number }> {
  const limit = deadline(`${what} produce`, w.timeoutMs);
  try {
    const clock = new Stopwatch();
    const inFlight: Promise<unknown>[] = [];
    for (let from = 0; from < w.total; from += w.recordsPerSend) {
      const sent = send(from);
      sent.catch(() => {}); // rejections surface where the send is awaited; no unhandled rejection meanwhile
      inFlight.push(sent);
      if (inFlight.length >= outstanding) await Promise.race([inFlight.shift()!, limit.promise]);
    }
    await Promise.race([Promise.all(inFlight), limit.promise]);
    return { seconds: clock.seconds(), cpuSeconds: clock.cpuSeconds() };
  } finally {
    limit.clear();
  }
}

/**
 * Counts consumed records. `joined()` starts the clock (first call wins); `done` resolves at the
 * `total`-th record and rejects if a delivery takes the count past `total` (duplicates), on
 * `fail`, or after the workload's timeout.
 */
class RecordCounter {
  private seen = 0;
  private started = 0;
  private readonly clock = new Stopwatch();
  private readonly limit: ReturnType<typeof deadline>;
  private settle!: { resolve: (f: ConsumeFigures) => void; reject: (err: Error) => void };
  readonly done: Promise<ConsumeFigures>;

  constructor(
    private readonly w: ConsumeWork,
    private readonly what: string,
  ) {
    this.limit = deadline(`${what} consume (${w.total} records)`, w.timeoutMs);
    const counted = new Promise<ConsumeFigures>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done = Promise.race([counted, this.limit.promise]).finally(() => this.limit.clear());
    this.done.catch(() => {}); // awaited by the caller
  }

  joined(): void {
    this.started ||= performance.now();
  }

  add(records: number): void {
    if (this.seen >= this.w.total) return; // already settled; later deliveries are not timed
    this.seen += records;
    if (this.seen < this.w.total) return;
    if (this.seen > this.w.total) return this.fail(new Error(`${this.what} consume: ${this.seen} records delivered from a topic of ${this.w.total}`));
    if (this.started === 0) return this.fail(new Error(`${this.what} consume: records arrived before the group-join signal`));
    const seconds = (performance.now() - this.started) / 1000;
    this.settle.resolve({ records: this.seen, seconds: round(seconds, 2), recordsPerSec: Math.round(this.seen / seconds), cpuSeconds: round(this.clock.cpuSeconds(), 2) });
  }

  fail(err: Error): void {
    this.settle.reject(err);
  }
}

// ---------------------------------------------------------------------------------------------
// kafkajs

async function kafkajsProduce(w: Workload) {
  // ERROR, not the project's WARN: the comparison's output is its figures.
  const kafka = new Kafka({ clientId: 'bench-clients-kafkajs', brokers: BROKERS, logLevel: logLevel.ERROR });
  // The SDK's settings (producers/): idempotent, one request in flight.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    return await timedProduce(w, 'kafkajs', 1, (from) =>
      producer.send({ topic: w.topic, acks: -1, compression: CompressionTypes.GZIP, messages: slice(w, from, (key, value) => ({ key, value })) }),
    );
  } finally {
    await producer.disconnect();
  }
}

/**
 * kafkajs consume-only with the worker's consumer settings (and its in-place gzip inflate),
 * `eachBatch` only counting. Also the bench's "kafkajs consume-only" figure on the drain topic:
 * the ceiling of a kafkajs worker.
 */
export async function kafkajsConsume(w: ConsumeWork): Promise<ConsumeFigures> {
  installKafkaCodecs(); // as the worker does: every codec, gzip record batches inflated on the JS thread
  const counter = new RecordCounter(w, 'kafkajs');
  const kafka = new Kafka({ clientId: 'bench-clients-kafkajs', brokers: BROKERS, logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: w.group, maxBytesPerPartition: CONSUME.maxBytesPerPartition, maxBytes: CONSUME.maxBytes, maxWaitTimeInMs: CONSUME.maxWaitMs, allowAutoTopicCreation: false });
  consumer.on(consumer.events.GROUP_JOIN, () => counter.joined());
  consumer.on(consumer.events.CRASH, ({ payload }) => counter.fail(payload.error));
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [w.topic], fromBeginning: true });
    // Not awaited: run() may resolve only once the consumer loop is going; its errors fail the count.
    consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 1, eachBatch: async ({ batch }) => counter.add(batch.messages.length) }).catch((err: Error) => counter.fail(err));
    return await counter.done;
  } finally {
    await consumer.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// @platformatic/kafka

async function platformaticProduce(w: Workload, lib: PlatformaticModule) {
  const producer = new lib.Producer({
    clientId: 'bench-clients-platformatic',
    bootstrapBrokers: BROKERS,
    idempotent: true,
    acks: -1,
    compression: 'gzip',
    autocreateTopics: false,
    partitioner: lib.compatibilityPartitioner,
    // Keys as strings, as the other two get them; values are already bytes.
    serializers: { key: lib.stringSerializer, value: (v) => v },
  });
  try {
    // The library connects lazily; connecting and fetching metadata here keeps them out of the
    // timing, as connect() does for the other two.
    await producer.metadata({ topics: [w.topic] });
    return await timedProduce(w, 'platformatic', 1, (from) => producer.send({ messages: slice(w, from, (key, value) => ({ topic: w.topic, key, value })) }));
  } finally {
    await producer.close();
  }
}

async function platformaticConsume(w: ConsumeWork, lib: PlatformaticModule): Promise<ConsumeFigures> {
  const counter = new RecordCounter(w, 'platformatic');
  const consumer = new lib.Consumer({
    clientId: 'bench-clients-platformatic',
    bootstrapBrokers: BROKERS,
    groupId: w.group,
    autocommit: false,
    maxBytes: CONSUME.maxBytes,
    maxBytesPerPartition: CONSUME.maxBytesPerPartition,
    maxWaitTime: CONSUME.maxWaitMs,
  });
  consumer.on('consumer:group:join', () => counter.joined());
  let stream: PlatformaticStream | undefined;
  try {
    // Default deserializers: keys and values stay Buffers, as with the other two.
    stream = await consumer.consume({ topics: [w.topic], mode: lib.MessagesStreamModes.EARLIEST, autocommit: false });
    stream.on('data', () => counter.add(1));
    stream.on('error', (err) => counter.fail(err));
    return await counter.done;
  } finally {
    await stream?.close();
    await consumer.close(true);
  }
}

// ---------------------------------------------------------------------------------------------
// @confluentinc/kafka-javascript

function confluentKafka(lib: ConfluentModule): ConfluentKafka {
  return new lib.KafkaJS.Kafka({ kafkaJS: { clientId: 'bench-clients-confluent', brokers: BROKERS, logLevel: lib.KafkaJS.logLevel.ERROR } });
}

async function confluentProduce(w: Workload, lib: ConfluentModule) {
  // Sends of the same size as the others, but several outstanding: the KafkaJS API's send()
  // enqueues into librdkafka and resolves on the last delivery report, while librdkafka builds
  // its own requests (linger.ms, batch.size 1 MB by default; at most 5 in flight with
  // idempotence). With one send at a time its queue would run dry at the end of every send.
  const producer = confluentKafka(lib).producer({
    kafkaJS: { idempotent: true, acks: -1, compression: lib.KafkaJS.CompressionTypes.GZIP, allowAutoTopicCreation: false },
    'linger.ms': CONFLUENT_LINGER_MS,
  });
  await producer.connect();
  try {
    return await timedProduce(w, 'confluent', CONFLUENT_OUTSTANDING_SENDS, (from) => producer.send({ topic: w.topic, messages: slice(w, from, (key, value) => ({ key, value })) }));
  } finally {
    await producer.disconnect();
  }
}

async function confluentConsume(w: ConsumeWork, lib: ConfluentModule): Promise<ConsumeFigures> {
  const counter = new RecordCounter(w, 'confluent');
  const consumer = confluentKafka(lib).consumer({
    kafkaJS: {
      groupId: w.group,
      fromBeginning: true,
      autoCommit: false,
      maxBytesPerPartition: CONSUME.maxBytesPerPartition,
      // The KafkaJS layer maps maxBytes to librdkafka's fetch.message.max.bytes, an alias of
      // max.partition.fetch.bytes (set last, so it wins); the fetch-wide cap is fetch.max.bytes.
      maxBytes: CONSUME.maxBytesPerPartition,
      maxWaitTimeInMs: CONSUME.maxWaitMs,
      allowAutoTopicCreation: false,
    },
    'fetch.max.bytes': CONSUME.maxBytes,
    // js.consumer.max.batch.size stays at its default (32 records per eachBatch): 1,000, 5,000 and
    // unbounded read at the same rate within the run-to-run noise (200k records, this box).
    // The KafkaJS layer has no GROUP_JOIN event; partitions assigned is the same moment.
    rebalance_cb: (err) => {
      if (err.code === lib.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) counter.joined();
    },
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [w.topic] });
    consumer.run({ partitionsConsumedConcurrently: 1, eachBatch: async ({ batch }) => counter.add(batch.messages.length) }).catch((err: Error) => counter.fail(err));
    return await counter.done;
  } finally {
    await consumer.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------

function produceFigures(records: number, bytes: number, t: { seconds: number; cpuSeconds: number }): ProduceFigures {
  return { records, seconds: round(t.seconds, 2), recordsPerSec: Math.round(records / t.seconds), mbPerSec: round(bytes / 1e6 / t.seconds, 1), cpuSeconds: round(t.cpuSeconds, 2) };
}

/**
 * Produce-only and consume-only figures of kafkajs, @platformatic/kafka and
 * @confluentinc/kafka-javascript, one client after the other, on topics `${id}.clients.<client>`
 * (left in place; the caller deletes its `${id}.` topics).
 */
export async function kafkaClientComparison(opts: { id: string; encodedPool: Buffer[]; keys: string[]; total: number; partitions: number }): Promise<KafkaClientComparison> {
  if (opts.encodedPool.length === 0 || opts.keys.length !== opts.encodedPool.length) throw new Error('kafkaClientComparison: need one key per encoded value');
  const alt = await loadAlternativeClients();

  const avgValueBytes = opts.encodedPool.reduce((n, b) => n + b.length, 0) / opts.encodedPool.length;
  const avgKeyBytes = opts.keys.reduce((n, k) => n + Buffer.byteLength(k), 0) / opts.keys.length;
  const recordsPerSend = Math.max(1, Math.round(PARAMETERS.produce.sendBytes / avgValueBytes));
  // Bytes of the `total` records actually sent (the pool cycled), keys included.
  let bytes = 0;
  for (let i = 0; i < opts.total; i++) {
    const j = i % opts.encodedPool.length;
    bytes += opts.encodedPool[j]!.length + Buffer.byteLength(opts.keys[j]!);
  }

  const clients: KafkaClientFigures[] = [];
  for (const client of KAFKA_CLIENTS) {
    const w: Workload = {
      topic: `${opts.id}.clients.${client}`,
      group: `${opts.id}.clients.${client}.consume`,
      values: opts.encodedPool,
      keys: opts.keys,
      total: opts.total,
      recordsPerSend,
      // A rate far below any of the three, plus connecting and joining.
      timeoutMs: 60_000 + opts.total / 2,
    };
    await createTopic(w.topic, opts.partitions);

    const produced =
      client === 'kafkajs' ? await kafkajsProduce(w) : client === 'platformatic' ? await platformaticProduce(w, alt.platformatic.module) : await confluentProduce(w, alt.confluent.module);
    const inTopic = await topicRecordCount(w.topic);
    if (inTopic !== opts.total) throw new Error(`${client}: topic ${w.topic} holds ${inTopic} records after producing ${opts.total}`);

    const consume =
      client === 'kafkajs' ? await kafkajsConsume(w) : client === 'platformatic' ? await platformaticConsume(w, alt.platformatic.module) : await confluentConsume(w, alt.confluent.module);

    clients.push({
      client,
      package: PACKAGES[client],
      version: client === 'kafkajs' ? installedVersion(join(ROOT, 'node_modules'), PACKAGES.kafkajs) : alt[client].version,
      ...(client === 'confluent' ? { librdkafka: alt.confluent.module.librdkafkaVersion } : {}),
      produce: produceFigures(opts.total, bytes, produced),
      consume,
    });
  }

  return {
    parameters: {
      ...PARAMETERS,
      records: opts.total,
      partitions: opts.partitions,
      recordsPerSend,
      avgValueBytes: round(avgValueBytes, 1),
      avgKeyBytes: round(avgKeyBytes, 1),
      distinctKeys: new Set(opts.keys).size,
    },
    clients,
  };
}
