import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AvroDeserializer, AvroSerializer, SchemaRegistryClient, SerdeType } from '@confluentinc/schemaregistry';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestWorker } from '../../consumers/worker.js';
import { ConfigError } from '../../lib/config.js';
import { EventProducer, IngestProducer, SchemaRegistrationError } from '@kafka-clickhouse-ingest/producer';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { defineEventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { costEvents } from '../helpers/cost-events.js';
import { RegistryGateway, registryUrl as registryUrl_, startRegistry } from '../helpers/registry.js';
import { countRows, createTopics, metricValue, queryRows, testConfig, uniqueId, waitFor } from '../helpers/stack.js';
import { sampleEvents } from '../fixtures/events.js';

/**
 * The Confluent wire format (00 | schema id | Avro) end to end, on a real schema registry
 * (scripts/registry.sh: Apicurio Registry serving Confluent's API, compatibility BACKWARD) and
 * the real broker, Redis and ClickHouse engine. The producer and consumer that are "not ours"
 * are Confluent's own JavaScript serializer and deserializer (@confluentinc/schemaregistry).
 */
const TIME_FIELDS = ['timestamp', 'start_time', 'end_time', 'event_time'];
const root = join(import.meta.dirname, '..', '..');
const registryUrl = registryUrl_();

beforeAll(() => {
  startRegistry();
}, 600_000);

/** Sample events of a type moved to the last hour (no TTL removes them), with unique run ids where a table coalesces by run. */
function recentEvents(typeName: string, n: number, seed: number): Record<string, unknown>[] {
  const now = Date.now();
  return sampleEvents(typeName, n, seed).map((e, i) => {
    const out: Record<string, unknown> = { ...e };
    for (const f of TIME_FIELDS) if (typeof out[f] === 'number') out[f] = now - 3_600_000 + i * 1_000;
    if (typeName === 'evolution_runs') out.run_id = `run_foreign_${seed}_${i}`;
    return out;
  });
}

async function kafkaProducer(brokers: string[]): Promise<Producer> {
  const producer = new Kafka({ brokers, logLevel: logLevel.NOTHING }).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  return producer;
}

describe('a producer that is not ours: Confluent\'s AvroSerializer, every event type', () => {
  const config = testConfig({ schemaRegistry: { url: registryUrl } }, uniqueId('sr'));
  let worker: IngestWorker;
  let producer: Producer;
  const n = 12;

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
    producer = await kafkaProducer([...config.kafka.brokers]);
  }, 120_000);
  afterAll(async () => {
    await producer?.disconnect();
    await worker?.stop();
  });

  it('publishes every event type with the registry serializer; each event lands exactly once in its table', async () => {
    // As a team with its own services does: the published .avsc files registered under each
    // topic's subject (TopicNameStrategy), then Confluent's serializer with use.latest.version.
    const client = new SchemaRegistryClient({ baseURLs: [registryUrl] });
    const serializer = new AvroSerializer(client, SerdeType.VALUE, { useLatestVersion: true });
    for (const type of eventTypes) {
      const topic = `${config.kafka.topicPrefix}${type.name}`;
      // The string default "{}" escaped as "\u007b}" (the same JSON): the local registry,
      // Apicurio 2.1.5, mangles `: "{}"` in a schema (schema-registration.ts registrySchemaText).
      const schema = readFileSync(join(root, 'schemas/avro', `${type.name}.avsc`), 'utf8').replace(/"\{\}"/g, '"\\u007b}"');
      await client.register(`${topic}-value`, { schemaType: 'AVRO', schema });
      const records = recentEvents(type.name, n, 11).map((e, i) => toEventRecord(type, e, i));
      const messages = [];
      for (const record of records) messages.push({ key: String(record[type.partitionKey]), value: await serializer.serialize(topic, record) });
      expect(messages.every((m) => m.value[0] === 0), `${type.name}: Confluent framing`).toBe(true);
      await producer.send({ topic, messages });
    }
    for (const type of eventTypes) {
      await waitFor(`${n} rows in ${type.table}`, async () => (await countRows(worker.clickhouse, type.table)) >= n);
      const [audit] = await queryRows<{ n: string; coords: string }>(worker.clickhouse, `SELECT count() AS n, uniqExact(_kafka_partition, _kafka_offset) AS coords FROM ${type.table}`);
      expect({ table: type.table, n: Number(audit!.n), coords: Number(audit!.coords) }).toEqual({ table: type.table, n, coords: n });
    }
    // Field for field, for every metrics type: what the foreign producer sent is what is stored.
    for (const name of ['cost_metrics', 'performance_metrics', 'resource_metrics', 'quality_metrics']) {
      const type = eventTypes.find((t) => t.name === name)!;
      const fields = type.fieldNames.filter((f) => !TIME_FIELDS.includes(f));
      const stored = await queryRows<Record<string, unknown>>(worker.clickhouse, `SELECT ${fields.map((f) => `toString(${f}) AS ${f}`).join(', ')} FROM ${type.table}`);
      const key = (r: Record<string, unknown>) => JSON.stringify(fields.map((f) => String(r[f])));
      expect(stored.map(key).sort(), name).toEqual(recentEvents(name, n, 11).map(key).sort());
    }
    expect(await metricValue(worker, 'ingest_poison_messages_total')).toBe(0);
  }, 180_000);
});

describe('our SDK in registry mode', () => {
  const config = testConfig({ schemaRegistry: { url: registryUrl } }, uniqueId('sr'));
  let worker: IngestWorker;
  let sdk: IngestProducer;

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
    sdk = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, wireFormat: 'confluent', schemaRegistry: { url: registryUrl } });
  }, 120_000);
  afterAll(async () => {
    await sdk?.close();
    await worker?.stop();
  });

  it('events land, and Confluent\'s AvroDeserializer reads the topic back field for field', async () => {
    const events = costEvents(25, 0, Date.now() - 3_600_000);
    await sdk.emitCostMetrics(events);
    await waitFor('25 cost rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 25);

    const topic = `${config.kafka.topicPrefix}cost_metrics`;
    const deserializer = new AvroDeserializer(new SchemaRegistryClient({ baseURLs: [registryUrl] }), SerdeType.VALUE, {});
    const consumer = new Kafka({ brokers: [...config.kafka.brokers], logLevel: logLevel.NOTHING }).consumer({ groupId: `${config.consumer.groupId}-reader` });
    const read: Record<string, unknown>[] = [];
    const firstBytes = new Set<number>();
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          firstBytes.add(message.value![0]!);
          read.push((await deserializer.deserialize(topic, message.value!)) as Record<string, unknown>);
        },
      });
      await waitFor('25 messages read back', async () => read.length >= 25);
    } finally {
      await consumer.disconnect();
    }
    expect([...firstBytes]).toEqual([0]);
    const expected = events.map((e, i) => toEventRecord(costMetrics, e, i));
    const byId = (a: Record<string, unknown>, b: Record<string, unknown>) => String(a.instance_id).localeCompare(String(b.instance_id));
    expect(read.sort(byId)).toEqual(expected.sort(byId));
  }, 120_000);
});

/** Every message of `topic`, read from the start with Confluent's AvroDeserializer (the registry's own reader). */
async function readBackWithConfluent(brokers: string[], topic: string, n: number, groupId: string): Promise<{ records: Record<string, unknown>[]; firstBytes: number[] }> {
  const deserializer = new AvroDeserializer(new SchemaRegistryClient({ baseURLs: [registryUrl] }), SerdeType.VALUE, {});
  const consumer = new Kafka({ brokers, logLevel: logLevel.NOTHING }).consumer({ groupId });
  const records: Record<string, unknown>[] = [];
  const firstBytes = new Set<number>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        firstBytes.add(message.value![0]!);
        records.push((await deserializer.deserialize(topic, message.value!)) as Record<string, unknown>);
      },
    });
    await waitFor(`${n} messages read back from ${topic}`, async () => records.length >= n);
  } finally {
    await consumer.disconnect();
  }
  return { records, firstBytes: [...firstBytes] };
}

describe('the Python SDK in registry mode', () => {
  const config = testConfig({ schemaRegistry: { url: registryUrl } }, uniqueId('sr'));
  let worker: IngestWorker;

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
  }, 120_000);
  afterAll(async () => {
    await worker?.stop();
  });

  it('events land, and Confluent\'s AvroDeserializer reads them back field for field', async () => {
    const t = Date.now() - 3_600_000;
    const cost = costEvents(9, 0, t);
    const llm = recentEvents('llm_logs', 6, 3).map((e, i) => ({ ...e, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` }));
    const calls = [{ method: 'insert_cost_metrics', events: cost }, ...llm.map((kwargs) => ({ method: 'log_llm_interaction', kwargs }))];
    const file = join(mkdtempSync(join(tmpdir(), 'py-sr-')), 'calls.json');
    writeFileSync(file, JSON.stringify(calls));
    const py = spawnSync(process.env.INGEST_PYTHON ?? '/usr/bin/python3', [join(root, 'producers/python/tests/produce_calls.py'), file], {
      env: { ...process.env, KAFKA_BROKERS: config.kafka.brokers.join(','), KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix, INGEST_PRODUCER_WIRE_FORMAT: 'confluent', SCHEMA_REGISTRY_URL: registryUrl },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(py.status, `python exited ${py.status}: ${py.stderr}`).toBe(0);
    expect(JSON.parse(py.stdout.trim().split('\n').at(-1)!)).toEqual({ acknowledged: 15 });
    await waitFor('9 cost rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 9);
    await waitFor('6 llm rows', async () => (await countRows(worker.clickhouse, 'llm_logs')) === 6);

    const { records, firstBytes } = await readBackWithConfluent([...config.kafka.brokers], `${config.kafka.topicPrefix}cost_metrics`, 9, `${config.consumer.groupId}-reader`);
    expect(firstBytes).toEqual([0]);
    const byId = (a: Record<string, unknown>, b: Record<string, unknown>) => String(a.instance_id).localeCompare(String(b.instance_id));
    expect(records.sort(byId)).toEqual(cost.map((e, i) => toEventRecord(costMetrics, e, i)).sort(byId));
    const { records: llmRecords } = await readBackWithConfluent([...config.kafka.brokers], `${config.kafka.topicPrefix}llm_logs`, 6, `${config.consumer.groupId}-reader-llm`);
    expect(llmRecords.map((r) => r.id).sort()).toEqual(llm.map((e) => e.id).sort());
  }, 180_000);
});

/** Version 2 of the cost schema: a field added with a default (BACKWARD compatible). */
const costV2 = defineEventType({
  ...costMetrics,
  schema: { ...costMetrics.schema, fields: [...costMetrics.schema.fields, { name: 'discount_percent', type: 'double', default: 0, doc: 'Discount applied, 0-100.' }] },
});
/** An incompatible version: a field added without a default (a v2 reader could not read v1 data). */
const costIncompatible = defineEventType({
  ...costMetrics,
  schema: { ...costMetrics.schema, fields: [...costMetrics.schema.fields, { name: 'billing_account', type: 'string', doc: 'No default.' }] },
});

describe('schema evolution through the registry, while the worker runs', () => {
  const config = testConfig({ schemaRegistry: { url: registryUrl } }, uniqueId('sr'));
  let worker: IngestWorker;
  let producer: EventProducer;

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
    producer = await EventProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, wireFormat: 'confluent', schemaRegistry: { url: registryUrl } });
  }, 120_000);
  afterAll(async () => {
    await producer?.close();
    await worker?.stop();
  });

  it('a compatible v2 registered and produced lands without a restart; an incompatible one is refused by the registry at the producer', async () => {
    const t = Date.now() - 3_600_000;
    await producer.emit(costMetrics, costEvents(10, 0, t));
    await waitFor('10 v1 rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 10);

    // An upgraded producer: its first emit registers v2 under the subject (a new schema id).
    const v2Producer = await EventProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, wireFormat: 'confluent', schemaRegistry: { url: registryUrl } });
    try {
      await v2Producer.emit(costV2, costEvents(10, 10, t).map((e) => ({ ...e, discount_percent: 5 })));
    } finally {
      await v2Producer.close();
    }
    await waitFor('20 rows: the v2 events landed', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 20);
    const versions = (await (await fetch(`${registryUrl}/subjects/${config.kafka.topicPrefix}cost_metrics-value/versions`)).json()) as number[];
    expect(versions).toHaveLength(2);
    expect(await metricValue(worker, 'ingest_poison_messages_total')).toBe(0);

    const refusing = await EventProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, wireFormat: 'confluent', schemaRegistry: { url: registryUrl } });
    try {
      const err = await refusing.emit(costIncompatible, costEvents(1, 20, t).map((e) => ({ ...e, billing_account: 'acme' }))).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SchemaRegistrationError);
      // The registry's own words (Apicurio's; Confluent's says "Schema being registered is incompatible with an earlier schema").
      expect((err as Error).message).toBe(`cost_metrics: the schema registry did not register its schema under subject ${config.kafka.topicPrefix}cost_metrics-value: HTTP 409: Incompatible artifact: ${config.kafka.topicPrefix}cost_metrics-value [AVRO], num of incompatible diffs: {1}`);
      expect(refusing.pendingEvents).toBe(0);
    } finally {
      await refusing.close();
    }
    expect((await (await fetch(`${registryUrl}/subjects/${config.kafka.topicPrefix}cost_metrics-value/versions`)).json()) as number[]).toHaveLength(2);
    expect(await countRows(worker.clickhouse, 'cost_metrics_ts')).toBe(20);
  }, 120_000);
});

describe('registry down, unknown ids and refused credentials', () => {
  const id = uniqueId('sr');
  let gateway: RegistryGateway;
  let worker: IngestWorker;
  let producer: EventProducer;
  let config: ReturnType<typeof testConfig>;

  beforeAll(async () => {
    gateway = new RegistryGateway(registryUrl);
    const viaGateway = await gateway.start();
    config = testConfig({ schemaRegistry: { url: viaGateway } }, id);
    worker = await IngestWorker.start(config);
    // The producer reaches the registry directly: only the worker loses it.
    producer = await EventProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, wireFormat: 'confluent', schemaRegistry: { url: registryUrl } });
  }, 120_000);
  afterAll(async () => {
    await producer?.close();
    await worker?.stop();
    await gateway?.stop();
  });

  it('workers keep consuming cached ids; a new id waits in Kafka, not dead-lettered, until the registry returns', async () => {
    const t = Date.now() - 3_600_000;
    await producer.emit(costMetrics, costEvents(10, 0, t));
    await waitFor('10 rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 10);

    gateway.down = true;
    await producer.emit(costMetrics, costEvents(10, 10, t));
    await waitFor('20 rows: a cached id needs no registry', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 20);
    expect(gateway.refused).toBe(0);

    const v2Producer = await EventProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, wireFormat: 'confluent', schemaRegistry: { url: registryUrl } });
    try {
      await v2Producer.emit(costV2, costEvents(10, 20, t).map((e) => ({ ...e, discount_percent: 1 })));
    } finally {
      await v2Producer.close();
    }
    // The worker has asked for the new id and been cut off three times: it is waiting.
    await waitFor('3 failed registry lookups', async () => (await metricValue(worker, 'ingest_schema_registry_lookups_total', { outcome: 'failed' })) >= 3, 60_000);
    expect(gateway.refused).toBeGreaterThanOrEqual(3);
    expect(await countRows(worker.clickhouse, 'cost_metrics_ts')).toBe(20);
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 0 });
    expect(await metricValue(worker, 'ingest_poison_messages_total')).toBe(0);

    gateway.down = false;
    await waitFor('30 rows once the registry is back', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 30, 60_000);
    const [audit] = await queryRows<{ n: string; coords: string }>(worker.clickhouse, 'SELECT count() AS n, uniqExact(_kafka_partition, _kafka_offset) AS coords FROM cost_metrics_ts');
    expect({ n: Number(audit!.n), coords: Number(audit!.coords) }).toEqual({ n: 30, coords: 30 });
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 0 });
  }, 180_000);

  it('a schema id the registry does not have is a poison letter with its reason', async () => {
    const kafka = await kafkaProducer([...config.kafka.brokers]);
    try {
      const datum = costMetrics.avroType.toBuffer(toEventRecord(costMetrics, costEvents(1, 99, Date.now())[0]));
      const value = Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), datum]);
      await kafka.send({ topic: `${config.kafka.topicPrefix}cost_metrics`, messages: [{ key: 'x', value }] });
    } finally {
      await kafka.disconnect();
    }
    await waitFor('one dead letter', async () => (await worker.deadLetters.depth()).dead === 1);
    const [letter] = await worker.deadLetters.list(['failed']);
    const data = letter!.data as { reason: string; detail: string };
    expect(data.reason).toBe('unknown_schema_id');
    expect(data.detail).toMatch(/^schema id 2147483632 is not in the schema registry \(HTTP 404: /);
    expect(await metricValue(worker, 'ingest_poison_messages_total', { reason: 'unknown_schema_id' })).toBe(1);
    expect(await metricValue(worker, 'ingest_schema_registry_lookups_total', { outcome: 'refused' })).toBe(1);
  }, 60_000);

  it('a registry that refuses the password stops the worker at start-up with a clear error, without the password', async () => {
    const guarded = new RegistryGateway(registryUrl);
    guarded.requireAuth = { username: 'ingest', password: 'right-password-123' };
    const url = await guarded.start();
    try {
      const bad = testConfig({ schemaRegistry: { url, username: 'ingest', password: 'wrong-password-456' } }, uniqueId('sr'));
      const err = await IngestWorker.start(bad).then((w) => w.stop().then(() => undefined), (e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toBe(`schema registry ${url}: the schema registry refused our credentials (HTTP 401): Unauthorized; check SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD`);
      expect((err as Error).message).not.toContain('wrong-password-456');
    } finally {
      await guarded.stop();
    }
  }, 60_000);
});
