import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OffsetCommitter } from '../../consumers/commit-offsets.js';
import { IngestWorker } from '../../consumers/worker.js';
import { openClickHouse } from '../../lib/clickhouse.js';
import { topicName } from '../../lib/kafka.js';
import { createLogger } from '../../lib/logger.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { defineEventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { costEvents } from '../helpers/cost-events.js';
import { RedisServer } from '../helpers/redis-server.js';
import { auditCostRows, countRows, createTopics, testConfig, waitFor } from '../helpers/stack.js';

/**
 * A rolling upgrade with a new schema, on the real broker, Redis and engine: an old worker
 * dead-letters the messages of a schema it does not know and never commits them (its batch is
 * abandoned, as at a rebalance), so Kafka delivers them again to an upgraded worker, which
 * inserts them; the letters must not land a second time. And the reverse order: a letter is
 * not healed while the stream has not committed past it. Redis of this file's own (port 16400,
 * appendfsync always).
 */

const costV2 = defineEventType({
  ...costMetrics,
  schema: { ...costMetrics.schema, fields: [...costMetrics.schema.fields, { name: 'discount_percent', type: 'double', default: 0, doc: 'Discount applied, 0-100.' }] },
  previousSchemas: [costMetrics.schema],
});
const upgraded = eventTypes.map((t) => (t.name === 'cost_metrics' ? costV2 : t));
const silent = createLogger({}, 'silent');
const redisServer = new RedisServer(16400, mkdtempSync(join(tmpdir(), 'ingest-dlq-settled-')), [...RedisServer.DURABLE_ARGS]);

beforeAll(async () => {
  await redisServer.start();
});
afterAll(async () => {
  await redisServer.stop(true);
});

/** 25 events on one partition, 5 of them (every fifth) of schema v2. */
async function produce25(brokers: readonly string[], topic: string): Promise<void> {
  const p: Producer = new Kafka({ clientId: 'dlq-settled-test', brokers: [...brokers], logLevel: 0 }).producer({ idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  const messages = costEvents(25, 0, Date.now() - 60_000).map((e, i) =>
    i % 5 === 4
      ? { key: e.customer_id, value: encodeSingleObject(costV2.avroType, costV2.fingerprint, { ...e, discount_percent: i }) }
      : { key: e.customer_id, value: encodeSingleObject(costMetrics.avroType, costMetrics.fingerprint, e) },
  );
  await p.send({ topic, acks: -1, messages });
  await p.disconnect();
}

function configFor() {
  return testConfig({
    redis: { url: redisServer.url },
    kafka: { topicPartitions: 1 },
    consumer: { eventTypes: ['cost_metrics'] },
    batch: { maxWaitMs: 200 },
    deadLetter: { backoffMs: 200, maxBackoffMs: 500 },
  });
}

/** A committer whose commits fail until `open()`: nothing is inserted (the journal commit comes first) or committed. */
function gate() {
  let opened = false;
  return {
    open: () => void (opened = true),
    wrap: (inner: OffsetCommitter): OffsetCommitter => async (...args) => {
      if (!opened) throw new Error('commit held by the test (a rebalance took the partition)');
      return inner(...args);
    },
  };
}

async function lettersSettled(worker: IngestWorker, n: number): Promise<boolean> {
  const c = await worker.deadLetters.queue.getJobCounts('completed', 'waiting', 'delayed', 'active', 'failed');
  return c.completed === n && c.waiting === 0 && c.delayed === 0 && c.active === 0 && c.failed === 0;
}

describe('a letter is healed only once its message is settled', () => {
  let workers: IngestWorker[] = [];
  afterAll(async () => {
    for (const w of workers) await w.stop().catch(() => undefined);
  });

  it('old worker dead-letters 5 of 25 without committing, the upgraded one consumes them: 25 rows, each once', async () => {
    const config = configFor();
    const topic = topicName(config.kafka, 'cost_metrics');
    await createTopics(config, ['cost_metrics']);
    await produce25(config.kafka.brokers, topic);

    // The old worker: schema v1 only; its batch never commits (abandoned at a rebalance).
    const held = gate();
    const old = await IngestWorker.start(config, { log: silent, wrapCommitter: held.wrap });
    workers.push(old);
    await waitFor('5 letters', async () => (await old.deadLetters.list(['waiting', 'delayed', 'active'], 10)).length === 5);
    expect(await countRows(old.clickhouse, 'cost_metrics_ts')).toBe(0);
    await old.stop();
    workers = [];

    const ch = await openClickHouse(config.clickhouse);
    await ch.command({ query: 'ALTER TABLE cost_metrics_ts ADD COLUMN IF NOT EXISTS discount_percent Float64 DEFAULT 0' });
    await ch.close();
    const up = await IngestWorker.start(config, { log: silent, eventTypes: upgraded });
    workers.push(up);
    await waitFor('25 rows', async () => (await countRows(up.clickhouse, 'cost_metrics_ts')) >= 25, 60_000);
    await waitFor('the 5 letters processed by the retry worker', () => lettersSettled(up, 5), 60_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const audit = await auditCostRows(up.clickhouse);
    console.log(`old worker dead-lettered, upgraded worker consumed: ${JSON.stringify(audit)}`);
    expect(audit).toEqual({ n: 25, offsets: 25, ids: 25 });
    expect(await up.deadLetters.usage()).toEqual({ letters: 0, bytes: 0 });
    await up.stop();
    workers = [];
  });

  it('the reverse order: letters wait while the stream has not committed past them, then the stream lands them: 25 rows', async () => {
    const config = configFor();
    const topic = topicName(config.kafka, 'cost_metrics');
    await createTopics(config, ['cost_metrics']);
    await produce25(config.kafka.brokers, topic);

    const old = await IngestWorker.start(config, { log: silent, wrapCommitter: gate().wrap });
    workers.push(old);
    await waitFor('5 letters', async () => (await old.deadLetters.list(['waiting', 'delayed', 'active'], 10)).length === 5);
    await old.stop();
    workers = [];

    const ch = await openClickHouse(config.clickhouse);
    await ch.command({ query: 'ALTER TABLE cost_metrics_ts ADD COLUMN IF NOT EXISTS discount_percent Float64 DEFAULT 0' });
    await ch.close();
    // The upgraded worker's stream is held (its commits fail) while its retry worker runs.
    const held = gate();
    const up = await IngestWorker.start(config, { log: silent, eventTypes: upgraded, wrapCommitter: held.wrap });
    workers.push(up);
    await waitFor(
      'the letters tried by the upgraded retry worker',
      async () => (await up.deadLetters.list(['delayed', 'waiting', 'active', 'completed'], 10)).filter((j) => j.attemptsMade >= 3 || j.finishedOn).length === 5,
      30_000,
    );
    const whileHeld = await countRows(up.clickhouse, 'cost_metrics_ts');
    console.log(`rows while the stream is held: ${whileHeld}`);
    expect.soft(whileHeld).toBe(0);

    held.open();
    await waitFor('25 rows', async () => (await countRows(up.clickhouse, 'cost_metrics_ts')) >= 25, 60_000);
    await waitFor('the 5 letters processed by the retry worker', () => lettersSettled(up, 5), 60_000);
    await new Promise((r) => setTimeout(r, 1_000));
    const audit = await auditCostRows(up.clickhouse);
    console.log(`letters first, stream second: ${JSON.stringify(audit)}`);
    expect(audit).toEqual({ n: 25, offsets: 25, ids: 25 });
    expect(await up.deadLetters.usage()).toEqual({ letters: 0, bytes: 0 });
  });
});
