import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowInserter } from '../../consumers/clickhouse-inserter.js';
import { IngestWorker } from '../../consumers/worker.js';
import { openClickHouse } from '../../lib/clickhouse.js';
import { topicName } from '../../lib/kafka.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { defineEventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { performanceMetrics } from '@kafka-clickhouse-ingest/producer/schemas/performance-metrics.js';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { sampleEvents } from '../fixtures/events.js';
import { costEvents } from '../helpers/cost-events.js';
import { RedisServer } from '../helpers/redis-server.js';
import { auditCostRows, countRows, createTopics, metricValue, queryRows, testConfig as stackConfig, waitFor } from '../helpers/stack.js';

// A Redis of this file's own (port 16407), persisted as letter writes require (appendfsync always).
const redisServer = new RedisServer(16407, mkdtempSync(join(tmpdir(), 'ingest-dead-letters-')), [...RedisServer.DURABLE_ARGS]);
beforeAll(async () => {
  await redisServer.start();
});
afterAll(async () => {
  await redisServer.stop(true);
});
const testConfig: typeof stackConfig = (overrides = {}, id) => stackConfig({ ...overrides, redis: { url: redisServer.url, ...overrides.redis } }, id);

/**
 * The dead-letter queue on the real broker, Redis and ClickHouse engine: letters of a newer
 * schema land by themselves once an upgraded worker runs, a table that refuses every row is
 * stopped (not dead-lettered) until it is fixed, and a full queue pauses the worker.
 */

// Version 2 of the cost schema: one field added with a default. The old worker does not know it.
const costV2 = defineEventType({
  ...costMetrics,
  schema: {
    ...costMetrics.schema,
    fields: [...costMetrics.schema.fields, { name: 'discount_percent', type: 'double', default: 0, doc: 'Discount applied, 0-100.' }],
  },
  previousSchemas: [costMetrics.schema],
});

async function rawProducer(brokers: readonly string[]): Promise<Producer> {
  const p = new Kafka({ clientId: 'dead-letters-test', brokers: [...brokers], logLevel: 0 }).producer();
  await p.connect();
  return p;
}

describe('a newer writer schema: dead-lettered by the old worker, landed by the upgraded one with no manual step', () => {
  const config = testConfig({ consumer: { eventTypes: ['cost_metrics'] }, deadLetter: { backoffMs: 200, maxBackoffMs: 1_000 } });
  const topic = topicName(config.kafka, 'cost_metrics');
  let worker: IngestWorker | undefined;
  let producer: IngestProducer;
  let raw: Producer;

  beforeAll(async () => {
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    raw = await rawProducer(config.kafka.brokers);
  });
  afterAll(async () => {
    await raw?.disconnect();
    await producer?.close();
    await worker?.stop();
  });

  it('every row lands exactly once and the dead-letter queue ends empty', async () => {
    worker = await IngestWorker.start(config); // the old worker: cost_metrics v1 only
    const v1 = costEvents(300, 0);
    const v2 = costEvents(40, 300).map((e, i) => ({ ...e, instance_id: `i-v2-${i}`, timestamp: Date.now() - i, discount_percent: i }));
    await producer.emitCostMetrics(v1);
    await raw.send({ topic, messages: v2.map((e) => ({ key: e.customer_id, value: encodeSingleObject(costV2.avroType, costV2.fingerprint, e) })) });

    await waitFor('the 300 v1 rows', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) === 300);
    await waitFor('40 letters retrying', async () => (await worker!.deadLetters.depth()).retrying === 40);
    // The old worker's retry worker tried them again and still cannot decode them: they keep
    // retrying with backoff instead of resting as dead.
    await waitFor('letters retried by the old worker', async () => (await worker!.deadLetters.list(['delayed', 'waiting'], 100)).some((j) => j.attemptsMade >= 2));
    expect((await worker.deadLetters.depth()).dead).toBe(0);
    expect(await metricValue(worker, 'ingest_poison_messages_total', { reason: 'unknown_fingerprint' })).toBe(40);
    expect(await countRows(worker.clickhouse, 'cost_metrics_ts')).toBe(300);

    // The upgrade: a migration adds the column, and a worker that knows schema v2 replaces the old one.
    await worker.stop();
    worker = undefined;
    const ch = await openClickHouse(config.clickhouse);
    await ch.command({ query: 'ALTER TABLE cost_metrics_ts ADD COLUMN IF NOT EXISTS discount_percent Float64 DEFAULT 0' });
    await ch.close();
    worker = await IngestWorker.start(config, { eventTypes: eventTypes.map((t) => (t.name === 'cost_metrics' ? costV2 : t)) });

    await waitFor('all 340 rows', async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) === 340, 90_000);
    await waitFor('the queue empty', async () => {
      const d = await worker!.deadLetters.depth();
      return d.retrying === 0 && d.dead === 0;
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 340, offsets: 340, ids: 340 });
    const [v2rows] = await queryRows<{ n: string; discount: number }>(worker.clickhouse, "SELECT count() AS n, sum(discount_percent) AS discount FROM cost_metrics_ts WHERE startsWith(instance_id, 'i-v2-')");
    expect({ n: Number(v2rows!.n), discount: Number(v2rows!.discount) }).toEqual({ n: 40, discount: (39 * 40) / 2 });
    expect(await worker.deadLetters.usage()).toEqual({ letters: 0, bytes: 0 });
    // Landed letters keep their deduplication token: the same letter enqueued and inserted again lands once.
    const [landed] = await worker.deadLetters.list(['completed'], 1);
    expect(landed).toBeDefined();
    const data = landed!.data as { topic: string; partition: number; offset: number; valueBase64: string };
    expect(await worker.deadLetters.drop(String(landed!.id))).toBe(true);
    await worker.deadLetters.poison({ topic: data.topic, partition: data.partition, offset: data.offset, reason: 'unknown_fingerprint', detail: 'enqueued again', value: Buffer.from(data.valueBase64, 'base64') });
    await waitFor('the repeat processed', async () => (await worker!.deadLetters.get(String(landed!.id)))?.isCompleted());
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 340, offsets: 340, ids: 340 });
  });
});

describe('a table that refuses every row is stopped, not dead-lettered, and lands from Kafka once fixed', () => {
  const config = testConfig({
    kafka: { topicPartitions: 1 },
    consumer: { eventTypes: ['cost_metrics', 'performance_metrics'] },
    batch: { maxWaitMs: 1_000 },
    // Refused rows rest as dead after one retry here, so the test can count them.
    deadLetter: { stopInitialPauseMs: 500, stopMaxPauseMs: 2_000, retryPeriodMs: 0 },
  });
  const costTopic = topicName(config.kafka, 'cost_metrics');
  let worker: IngestWorker;
  let producer: IngestProducer;
  const insertsInto = new Map<string, number>();
  // Two genuinely bad rows: ClickHouse would refuse them whatever the table (injected as ClickHouse's parse error).
  const refuseBadRows: (inner: RowInserter) => RowInserter = (inner) => async (table, rows, token) => {
    insertsInto.set(table, (insertsInto.get(table) ?? 0) + 1);
    if (rows.body.includes('i-bad-')) throw Object.assign(new Error('Cannot parse input: i-bad (injected)'), { code: '27' });
    return inner(table, rows, token);
  };

  beforeAll(async () => {
    await createTopics(config, ['cost_metrics', 'performance_metrics']);
    worker = await IngestWorker.start(config, { wrapInserter: refuseBadRows });
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
  });
  afterAll(async () => {
    await producer?.close();
    await worker?.stop();
  });

  it('holds the refused table in Kafka while the other table flows; after the fix every good row lands and only the 2 bad ones are letters', async () => {
    // A column retyped so every row is refused as data (CANNOT_PARSE_UUID from the real engine).
    await worker.clickhouse.command({ query: 'ALTER TABLE cost_metrics_ts DROP COLUMN is_spot' });
    await worker.clickhouse.command({ query: 'ALTER TABLE cost_metrics_ts ADD COLUMN is_spot UUID' });
    const cost = costEvents(500, 0).map((e, i) => (i === 100 || i === 333 ? { ...e, instance_id: `i-bad-${i}` } : e));
    const now = Date.now();
    const perf = sampleEvents('performance_metrics', 200, 5).map((e, i) => ({ ...e, [performanceMetrics.timestampField]: now - 60_000 + i }));
    await producer.emitCostMetrics(cost);
    await producer.emitPerformanceMetrics(perf as never);

    await waitFor('the cost topic stopped', async () => (await metricValue(worker, 'ingest_topic_stopped', { topic: costTopic, cause: 'table_refusing' })) === 1);
    await waitFor('200 rows of the other table', async () => (await countRows(worker.clickhouse, 'performance_metrics_ts')) === 200);
    const calls = insertsInto.get('cost_metrics_ts')!;
    // Stay refused for a few probes: still nothing dead-lettered, nothing committed, no row landed.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await countRows(worker.clickhouse, 'cost_metrics_ts')).toBe(0);
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 0 });
    expect(await metricValue(worker, 'ingest_offset_commits_total', { topic: costTopic })).toBe(0);
    // Bounded: per batch 1 + 14 inserts, then a probe per pause of at most 1 + 126 inserts; bisecting
    // each batch down to its rows would take about 2n = 1000 inserts for these 500 rows.
    expect(calls).toBeLessThan(100);
    expect(insertsInto.get('cost_metrics_ts')!).toBeLessThan(500);

    // The fix: a column of the right type takes the name, in one ALTER (the probes keep inserting meanwhile).
    await worker.clickhouse.command({ query: 'ALTER TABLE cost_metrics_ts ADD COLUMN is_spot_fixed UInt8' });
    await worker.clickhouse.command({ query: 'ALTER TABLE cost_metrics_ts RENAME COLUMN is_spot TO is_spot_refusing, RENAME COLUMN is_spot_fixed TO is_spot' });
    await waitFor('498 good cost rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 498, 90_000);
    await waitFor('the 2 bad rows at rest', async () => (await worker.deadLetters.depth()).dead === 2);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 498, offsets: 498, ids: 498 });
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 2 });
    const letters = await worker.deadLetters.list(['failed'], 10);
    expect(letters.map((j) => (j.data as { reason: string; offset: number }).offset).sort((a, b) => a - b)).toEqual([100, 333]);
    expect(letters.every((j) => (j.data as { reason: string }).reason === 'rejected_by_clickhouse')).toBe(true);
    expect(await metricValue(worker, 'ingest_topic_stopped', { topic: costTopic, cause: 'table_refusing' })).toBe(0);
    expect(await countRows(worker.clickhouse, 'performance_metrics_ts')).toBe(200);
  });
});

describe('a full dead-letter queue pauses the partition instead of dropping or growing', () => {
  const config = testConfig({ kafka: { topicPartitions: 1 }, consumer: { eventTypes: ['cost_metrics'] }, deadLetter: { maxLetters: 3, maxPoisonRatio: 1 } });
  const topic = topicName(config.kafka, 'cost_metrics');
  let worker: IngestWorker;
  let producer: IngestProducer;
  let raw: Producer;

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    raw = await rawProducer(config.kafka.brokers);
  });
  afterAll(async () => {
    await raw?.disconnect();
    await producer?.close();
    await worker?.stop();
  });

  it('holds at the bound, commits nothing past the refused letter, and goes on when room is made', async () => {
    await producer.emitCostMetrics(costEvents(100, 0));
    await raw.send({ topic, messages: [1, 2, 3, 4, 5].map((i) => ({ value: Buffer.from(`garbage ${i}`) })) });
    await producer.emitCostMetrics(costEvents(100, 100));

    await waitFor('a dead-letter write refused', async () => (await metricValue(worker, 'ingest_dead_letter_refused_total', { bound: 'letters' })) > 0);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 3 });
    expect(await worker.deadLetters.usage()).toMatchObject({ letters: 3 });
    // Nothing committed past the fourth poison message (offset 103): the group's offset is at most there.
    const admin = new Kafka({ clientId: 'dead-letters-test', brokers: [...config.kafka.brokers], logLevel: 0 }).admin();
    await admin.connect();
    const committed = async () => Number((await admin.fetchOffsets({ groupId: config.consumer.groupId, topics: [topic] }))[0]!.partitions[0]!.offset);
    expect(await committed()).toBeLessThanOrEqual(103);

    // Room is made (an operator drops the letters): the waiting writes go through and the partition moves on.
    for (const job of await worker.deadLetters.list(['failed'], 10)) expect(await worker.deadLetters.drop(String(job.id))).toBe(true);
    await waitFor('the last two letters', async () => (await worker.deadLetters.depth()).dead === 2);
    await waitFor('committed to the end', async () => (await committed()) === 205);
    await admin.disconnect();
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 200, offsets: 200, ids: 200 });
    expect(await worker.deadLetters.usage()).toMatchObject({ letters: 2 });
  });
});
