import avsc from 'avsc';
import { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowInserter } from '../../consumers/clickhouse-inserter.js';
import { IngestWorker } from '../../consumers/worker.js';
import { topicName } from '../../lib/kafka.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { defineEventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { costEvents } from '../helpers/cost-events.js';
import { auditCostRows, countRows, metricValue, queryRows, testConfig, waitFor } from '../helpers/stack.js';

describe('ClickHouse failing for a while: Kafka is the buffer', () => {
  // Issue 13: this used to assert that failed batches went to the Redis retry queue and their
  // offsets committed during the outage. The design now keeps the rows in Kafka instead: no
  // commit, nothing in Redis, the insert retried in place until ClickHouse is back.
  const config = testConfig({ insert: { initialBackoffMs: 20, maxBackoffMs: 200 }, deadLetter: { attempts: 30, backoffMs: 200 } });
  let worker: IngestWorker;
  let producer: IngestProducer;
  let failing = true;
  let failures = 0;
  // Half the failures are a refused connection, half a ClickHouse code no list in lib/errors.ts names.
  const outage: (inner: RowInserter) => RowInserter = (inner) => async (table, rows, token) => {
    if (failing) {
      failures++;
      if (failures % 2 === 0) throw Object.assign(new Error('Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED) (injected)'), { code: '394' });
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123 (injected outage)'), { code: 'ECONNREFUSED' });
    }
    return inner(table, rows, token);
  };

  beforeAll(async () => {
    worker = await IngestWorker.start(config, { wrapInserter: outage });
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
  });
  afterAll(async () => {
    await producer?.close();
    await worker?.stop();
  });

  it('holds the rows in Kafka while ClickHouse is down (no commit, nothing in Redis), then lands every row once by itself', async () => {
    await producer.emitCostMetrics(costEvents(3_000));
    await waitFor('inserts failing and retried', async () => failures >= 20);
    await waitFor('partitions reported retrying', async () => (await metricValue(worker, 'ingest_insert_retrying_partitions')) > 0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await countRows(worker.clickhouse, 'cost_metrics_ts')).toBe(0);
    expect(await metricValue(worker, 'ingest_offset_commits_total')).toBe(0);
    expect(await metricValue(worker, 'ingest_dead_letter_enqueued_total')).toBe(0);
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 0 });
    expect(await metricValue(worker, 'ingest_insert_errors_total', { kind: 'retriable' })).toBe(failures);
    expect(await metricValue(worker, 'ingest_insert_errors_total', { kind: 'fatal' })).toBe(0);
    failing = false;
    await waitFor('3000 rows after recovery', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 3_000, 90_000);
    await waitFor('no partition retrying', async () => (await metricValue(worker, 'ingest_insert_retrying_partitions')) === 0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 3_000, offsets: 3_000, ids: 3_000 });
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 0 });
    expect(await metricValue(worker, 'ingest_dead_letter_enqueued_total')).toBe(0);
    expect(await metricValue(worker, 'ingest_rows_inserted_total', { table: 'cost_metrics_ts' })).toBe(3_000);
    // Offsets committed to the end once the rows landed.
    const admin = new Kafka({ brokers: [...config.kafka.brokers], logLevel: 0 }).admin();
    await admin.connect();
    try {
      const topic = topicName(config.kafka, 'cost_metrics');
      await waitFor('committed to the end', async () => {
        const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: config.consumer.groupId, topics: [topic] })]);
        return ends.every((e) => Number(e.high) === 0 || Number(committed!.partitions.find((p) => p.partition === e.partition)?.offset) === Number(e.high));
      });
    } finally {
      await admin.disconnect();
    }
  });
});

describe('poison messages mixed with good ones', () => {
  // retryPeriodMs 0: the unknown-schema letter rests as dead after one retry, for the manual replay below.
  const config = testConfig({ deadLetter: { maxPoisonRatio: 0.9, poisonWindow: 100, retryPeriodMs: 0 } });
  let worker: IngestWorker;
  let producer: IngestProducer;
  let raw: import('kafkajs').Producer;
  const topic = topicName(config.kafka, 'cost_metrics');

  // Version 2 of the cost schema: one field added with a default. The first worker does not know it.
  const costV2 = defineEventType({
    ...costMetrics,
    schema: {
      ...costMetrics.schema,
      fields: [...costMetrics.schema.fields, { name: 'discount_percent', type: 'double', default: 0, doc: 'Discount applied, 0-100.' }],
    },
    previousSchemas: [costMetrics.schema],
  });

  beforeAll(async () => {
    worker = await IngestWorker.start(config);
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    raw = new Kafka({ clientId: 'poison-test', brokers: [...config.kafka.brokers], logLevel: 0 }).producer();
    await raw.connect();
  });
  afterAll(async () => {
    await raw?.disconnect();
    await producer?.close();
    await worker?.stop();
  });

  it('lands the good rows, dead-letters each poison message with its reason and bytes, and replays after a fix', async () => {
    const [good1, good2] = [costEvents(200, 0), costEvents(200, 200)];
    const key = good1[0]!.customer_id; // same partition as the good events around them
    const garbage = Buffer.from('this is not avro');
    const nan = encodeSingleObject(costMetrics.avroType, costMetrics.fingerprint, { ...good1[0]!, instance_id: 'i-nan', utilization_percent: Number.NaN, timestamp: Date.now() });
    const v2Event = { ...costEvents(1, 5_000)[0]!, instance_id: 'i-v2', timestamp: Date.now(), discount_percent: 12.5 };
    const newer = encodeSingleObject(costV2.avroType, costV2.fingerprint, v2Event);
    await producer.emitCostMetrics(good1);
    await raw.send({ topic, messages: [{ key, value: garbage }, { key, value: nan }, { key, value: newer }] });
    await producer.emitCostMetrics(good2);

    await waitFor('400 good rows', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 400);
    const dead = await waitFor('3 dead letters', async () => {
      const jobs = await worker.deadLetters.list(['failed']);
      return jobs.length === 3 ? jobs : undefined;
    });
    const byReason = Object.fromEntries(dead.map((j) => [(j.data as { reason: string }).reason, j.data as unknown as Record<string, unknown>]));
    expect(Object.keys(byReason).sort()).toEqual(['invalid_value', 'undecodable', 'unknown_fingerprint']);
    expect(Buffer.from(String(byReason.undecodable!.valueBase64), 'base64')).toEqual(garbage);
    expect(Buffer.from(String(byReason.unknown_fingerprint!.valueBase64), 'base64')).toEqual(newer);
    expect(byReason.invalid_value!.detail).toMatch(/utilization_percent: expected a finite number, got NaN/);
    for (const d of dead) {
      expect(d.data).toMatchObject({ topic, partition: expect.any(Number), offset: expect.any(Number) });
    }
    // The partition was not stalled: the good events after the poison landed, and offsets are committed to the end.
    expect(await auditCostRows(worker.clickhouse)).toEqual({ n: 400, offsets: 400, ids: 400 });

    // The fix: a migration adds the column and the worker is upgraded to know schema v2.
    await worker.stop();
    const { openClickHouse } = await import('../../lib/clickhouse.js');
    const ch = await openClickHouse(config.clickhouse);
    await ch.command({ query: 'ALTER TABLE cost_metrics_ts ADD COLUMN IF NOT EXISTS discount_percent Float64 DEFAULT 0' });
    await ch.close();
    worker = await IngestWorker.start(config, { eventTypes: eventTypes.map((t) => (t.name === 'cost_metrics' ? costV2 : t)) });
    const ids = Object.fromEntries(dead.map((j) => [(j.data as { reason: string }).reason, String(j.id)]));
    expect(await worker.deadLetters.replay(ids.unknown_fingerprint!)).toBe(true);
    expect(await worker.deadLetters.replay(ids.invalid_value!)).toBe(true);
    await waitFor('the v2 event landed', async () => (await countRows(worker.clickhouse, 'cost_metrics_ts')) === 401);
    const [row] = await queryRows<{ discount_percent: number }>(worker.clickhouse, "SELECT discount_percent FROM cost_metrics_ts WHERE instance_id = 'i-v2'");
    expect(row).toEqual({ discount_percent: 12.5 });
    // Still invalid after the fix: it rests as dead again instead of landing.
    await waitFor('NaN letter dead again', async () => (await worker.deadLetters.get(ids.invalid_value!))?.isFailed());
    expect(await worker.deadLetters.depth()).toEqual({ retrying: 0, dead: 2 });
    expect(await worker.deadLetters.drop(ids.undecodable!)).toBe(true);
    expect((await worker.deadLetters.depth()).dead).toBe(1);
  });
});

describe('two workers in one consumer group with rebalances mid-stream', () => {
  const config = testConfig({ kafka: { topicPartitions: 6 }, consumer: { eventTypes: ['cost_metrics'], sessionTimeoutMs: 10_000 } });
  let producer: IngestProducer;
  const workers: IngestWorker[] = [];

  beforeAll(async () => {
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
  });
  afterAll(async () => {
    await producer?.close();
    for (const w of workers) await w.stop();
  });

  it('shares the partitions, loses nothing and duplicates nothing when members join and leave', async () => {
    const total = 30_000;
    const chunk = 1_000;
    let sent = 0;
    const emitChunk = async () => {
      await producer.emitCostMetrics(costEvents(chunk, sent));
      sent += chunk;
    };
    workers.push(await IngestWorker.start(config));
    for (let i = 0; i < 10; i++) await emitChunk();
    workers.push(await IngestWorker.start(config)); // join: rebalance while data flows
    for (let i = 0; i < 10; i++) await emitChunk();
    await waitFor('both members own partitions', async () => workers.every((w) => w.partitionsAssigned > 0));
    expect(workers[0]!.partitionsAssigned + workers[1]!.partitionsAssigned).toBe(6);
    const leaving = workers.shift()!;
    const stopping = leaving.stop(); // leave: another rebalance while data flows
    for (let i = 0; i < 10; i++) await emitChunk();
    await stopping;
    expect(sent).toBe(total);
    const remaining = workers[0]!;
    await waitFor(`${total} rows`, async () => (await countRows(remaining.clickhouse, 'cost_metrics_ts')) >= total, 90_000);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await auditCostRows(remaining.clickhouse)).toEqual({ n: total, offsets: total, ids: total });
  });
});
