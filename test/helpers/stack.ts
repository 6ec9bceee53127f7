import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { IngestWorker } from '../../consumers/worker.js';
import { loadConfig, type Config, type ConfigOverrides } from '../../lib/config.js';
import { createKafka, ensureTopics, topicName } from '../../lib/kafka.js';

/** A short unique id, so every test gets its own topics, group, queue and database. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Per-process embedded ClickHouse directory (vitest runs each file in its own process). */
const dataPath = mkdtempSync(join(tmpdir(), 'ingest-test-chdb-'));

/** Config for one test: real broker and Redis on loopback, fast batching, isolated names. */
export function testConfig(overrides: ConfigOverrides = {}, id = uniqueId()): Readonly<Config> {
  return loadConfig(
    { KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092', REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6380' },
    {
      ...overrides,
      kafka: { topicPrefix: `${id}.`, topicPartitions: 4, ...overrides.kafka },
      clickhouse: { dataPath, database: id, ...overrides.clickhouse },
      consumer: { groupId: `${id}-group`, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, ...overrides.consumer },
      batch: { maxRows: 1_000, maxWaitMs: 200, ...overrides.batch },
      deadLetter: { queuePrefix: id, backoffMs: 100, ...overrides.deadLetter },
      metrics: { port: 0, host: '127.0.0.1', lagIntervalMs: 500, ...overrides.metrics },
      shutdown: { timeoutMs: 20_000, ...overrides.shutdown },
    },
  );
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function queryRows<T = Record<string, unknown>>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

export async function countRows(client: ClickHouseClient, table: string): Promise<number> {
  const [row] = await queryRows<{ n: string }>(client, `SELECT count() AS n FROM ${table}`);
  return Number(row?.n ?? 0);
}

/** Creates the topics of `eventTypeNames` (as the worker would) so producers can send before a worker starts. */
export async function createTopics(config: Readonly<Config>, eventTypeNames: string[]): Promise<void> {
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, config.kafka, eventTypeNames.map((n) => topicName(config.kafka, n)));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Rows, distinct Kafka coordinates and distinct instance ids of cost_metrics_ts: three equal
 * numbers mean every row arrived once (the ids are unique per generated event).
 */
export async function auditCostRows(client: ClickHouseClient): Promise<{ n: number; offsets: number; ids: number }> {
  const [s] = await queryRows<Record<string, string | number>>(
    client,
    'SELECT count() AS n, uniqExact(_kafka_partition, _kafka_offset) AS offsets, uniqExact(instance_id) AS ids FROM cost_metrics_ts',
  );
  return { n: Number(s!.n), offsets: Number(s!.offsets), ids: Number(s!.ids) };
}

/** A worker's metric, summed over the series whose labels include `labels` (0 when it has none). */
export async function metricValue(worker: IngestWorker, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await worker.metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val)).reduce((a, v) => a + v.value, 0);
}

/** Deletes the cost topic and creates it again with the configured partitions. */
export async function recreateTopic(config: Readonly<Config>, topic: string): Promise<void> {
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
    await waitFor('topic gone', async () => !(await admin.listTopics()).includes(topic), 60_000, 250);
    // Recreating right after a delete can fail while the broker still removes the old log.
    await waitFor('topic recreated', async () => {
      await createTopics(config, ['cost_metrics']).catch(() => undefined);
      const meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
      return meta?.topics[0]?.partitions.length === config.kafka.topicPartitions;
    }, 60_000, 500);
  } finally {
    await admin.disconnect();
  }
}
