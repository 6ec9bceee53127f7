import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickHouseInserter, mayRepeat, type RowInserter } from '../../consumers/clickhouse-inserter.js';
import { rowEncoderFor } from '../../consumers/row-encoder.js';
import { encodeRecords } from '../../consumers/insert-body.js';
import type { EncodedRows } from '../../consumers/types.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import { performanceMetrics } from '@kafka-clickhouse-ingest/producer/schemas/performance-metrics.js';
import { qualityMetrics } from '@kafka-clickhouse-ingest/producer/schemas/quality-metrics.js';
import { resourceMetrics } from '@kafka-clickhouse-ingest/producer/schemas/resource-metrics.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { migrate } from '../../sql/migrate.js';
import { sampleEvents } from '../fixtures/events.js';
import { openDb } from '../helpers/migration-state.js';
import { auditRollup, ROLLUPS } from '../helpers/rollup-audit.js';
import { queryRows, uniqueId } from '../helpers/stack.js';

/**
 * The hourly rollups deduplicate with their raw tables, on the embedded engine through the
 * worker's own inserter: a batch whose rollup write failed after the raw part committed lands
 * in the rollup when the worker retries it with the same token (the raw table drops the retry
 * as a repeat), and a repeat of a batch that landed everywhere is dropped by both.
 *
 * The fault: a CONSTRAINT on the rollup that every row violates. ClickHouse checks it in the
 * view's insert, after the raw table's part is written (the test checks that the raw rows are
 * there and the rollup is empty), as a full disk or a memory limit in the view's GROUP BY would.
 *
 * What fails without the fix depends on the engine. A server before ClickHouse 26.2 (setting 0 by
 * default) skips the views when the raw table drops the retry: the rollup loses the batch. The
 * embedded engine (ClickHouse 26.x) runs the views on the retry even with the setting at 0, so
 * here the rows land, and the failure is the other half: without a window on the rollup, or
 * without the setting (third test, with 0 as the session's default), every repeat is counted
 * again in the rollup.
 */
let dataPath: string;
const types = [costMetrics, performanceMetrics, resourceMetrics, qualityMetrics] as const;
const fast = { leaseMs: 5_000, pollMs: 50 };
/** Three hours back, so rows span hour buckets and are far from every TTL. */
const base = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3 * 3_600_000;
const N = 240;

beforeAll(() => {
  dataPath = mkdtempSync(join(tmpdir(), 'rollup-dedup-'));
});
afterAll(() => rmSync(dataPath, { recursive: true, force: true }));

async function withDb<T>(fn: (client: ClickHouseClient, insert: RowInserter) => Promise<T>, setup: string[] = []): Promise<T> {
  const client = await openDb(dataPath, uniqueId('r'));
  try {
    for (const query of setup) await client.command({ query });
    await migrate(client, undefined, { lock: fast });
    return await fn(client, clickHouseInserter(client, [...types]));
  } finally {
    await client.close();
  }
}

/** n rows of `type` from Kafka offset `first`, 37 s apart from `base` (4 rows over 2 hours of buckets at N = 240). */
function batch(type: EventType, first: number, n: number): EncodedRows {
  const records = sampleEvents(type.name, n, first + 1).map((e, i) => toEventRecord(type, { ...e, timestamp: base + (first + i) * 37_000 }, i));
  return encodeRecords(rowEncoderFor(type), type.timestampField, { topic: `ingest.${type.name}`, partition: 0, rows: records.map((record, i) => ({ offset: first + i, record, bytes: 0 })) });
}

/** Per hour: rows and summed cost in the raw table, and the rollup's merged count and sum. */
async function hours(client: ClickHouseClient): Promise<{ raw: unknown[]; rollup: unknown[] }> {
  const raw = await queryRows(client, "SELECT toString(toStartOfHour(timestamp)) AS hour, toString(count()) AS n, toString(round(sum(cost_per_hour), 6)) AS cost FROM cost_metrics_ts GROUP BY hour ORDER BY hour");
  const rollup = await queryRows(client, 'SELECT toString(hour) AS hour, toString(countMerge(samples)) AS n, toString(round(sumMerge(total_cost), 6)) AS cost FROM cost_metrics_hourly GROUP BY hour ORDER BY hour');
  return { raw, rollup };
}

const total = async (client: ClickHouseClient, query: string) => Number((await queryRows<{ n: string }>(client, `SELECT toString((${query})) AS n`))[0]!.n);
const rawRows = (client: ClickHouseClient) => total(client, 'SELECT count() FROM cost_metrics_ts');
const rollupRows = (client: ClickHouseClient) => total(client, 'SELECT countMerge(samples) FROM cost_metrics_hourly');

/** The worker's retry of a batch: same rows, same token, marked as a possible repeat. */
function retry(insert: RowInserter, rows: EncodedRows, token: string): Promise<number> {
  mayRepeat.add(rows);
  return insert(costMetrics.table, rows, token);
}

async function rollupFailsThenRetry(client: ClickHouseClient, insert: RowInserter): Promise<void> {
  const rows = batch(costMetrics, 0, N);
  const token = 'ingest.cost_metrics/0/0-239/a';
  await client.command({ query: "ALTER TABLE cost_metrics_hourly ADD CONSTRAINT fault CHECK hour < toDateTime('2000-01-01 00:00:00', 'UTC')" });
  await expect(insert(costMetrics.table, rows, token)).rejects.toThrow(/fault/);
  // The fault is where it must be: the raw part committed, the rollup has nothing of it.
  expect(await rawRows(client)).toBe(N);
  expect(await rollupRows(client)).toBe(0);
  await client.command({ query: 'ALTER TABLE cost_metrics_hourly DROP CONSTRAINT fault' });

  // The raw table drops the retry as a repeat (0 rows written), the rollup takes it.
  expect(await retry(insert, rows, token)).toBe(0);
  expect(await rawRows(client)).toBe(N);
  expect(await rollupRows(client)).toBe(N);
  const after = await hours(client);
  expect(after.rollup).toEqual(after.raw);
  expect(after.raw.length).toBeGreaterThanOrEqual(3);

  // Once it has landed everywhere, a further repeat changes nothing, in either table.
  expect(await retry(insert, rows, token)).toBe(0);
  expect(await rawRows(client)).toBe(N);
  expect(await rollupRows(client)).toBe(N);
  expect(await hours(client)).toEqual(after);
}

async function plainRepeat(client: ClickHouseClient, insert: RowInserter): Promise<void> {
  const rows = batch(costMetrics, 1_000, N);
  const token = 'ingest.cost_metrics/0/1000-1239/b';
  const before = await rawRows(client);
  expect(await insert(costMetrics.table, rows, token)).toBe(N);
  expect(await retry(insert, rows, token)).toBe(0);
  expect(await retry(insert, rows, token)).toBe(0);
  expect(await rawRows(client)).toBe(before + N);
  expect(await rollupRows(client)).toBe(before + N);
  const after = await hours(client);
  expect(after.rollup).toEqual(after.raw);
}

describe('hourly rollups deduplicate with their source', () => {
  it('a batch whose rollup write failed after the raw part committed lands in the rollup on the retry, once', async () => {
    await withDb(async (client, insert) => {
      await rollupFailsThenRetry(client, insert);
      expect((await auditRollup(client, 'cost_metrics_ts')).ok).toBe(true);
    });
  });

  it('a plain repeat of a landed batch is dropped by the raw table and by the rollup', async () => {
    await withDb(async (client, insert) => {
      await plainRepeat(client, insert);
      expect((await auditRollup(client, 'cost_metrics_ts')).ok).toBe(true);
    });
  });

  it('the same with deduplicate_blocks_in_dependent_materialized_views = 0 as the profile default (servers before ClickHouse 26.2): the worker sets it per insert', async () => {
    await withDb(
      async (client, insert) => {
        expect(await queryRows(client, "SELECT value FROM system.settings WHERE name = 'deduplicate_blocks_in_dependent_materialized_views'")).toEqual([{ value: '0' }]);
        await rollupFailsThenRetry(client, insert);
        await plainRepeat(client, insert);
      },
      ['SET deduplicate_blocks_in_dependent_materialized_views = 0'],
    );
  });

  it('all four rollups: repeats of every metric type leave each rollup equal to its raw table', async () => {
    await withDb(async (client, insert) => {
      for (const type of types) {
        const rows = batch(type, 0, N);
        expect(await insert(type.table, rows, `ingest.${type.name}/0/0-239/c`)).toBe(N);
        mayRepeat.add(rows);
        expect(await insert(type.table, rows, `ingest.${type.name}/0/0-239/c`)).toBe(0);
      }
      for (const type of types) {
        const audit = await auditRollup(client, type.table);
        expect(audit, type.table).toMatchObject({ ok: true, rawRows: N, rollupRows: N, mismatches: [] });
        expect(audit.groups, type.table).toBeGreaterThan(3);
      }
      expect(Object.keys(ROLLUPS).sort()).toEqual(types.map((t) => t.table).sort());
    });
  });

  it('the audit names the bucket a rollup has too many or too few rows in', async () => {
    await withDb(async (client, insert) => {
      await insert(costMetrics.table, batch(costMetrics, 0, N), 'ingest.cost_metrics/0/0-239/d');
      expect((await auditRollup(client, 'cost_metrics_ts')).ok).toBe(true);
      // One bucket counted twice in the rollup (what a repeat without a window on the rollup does).
      await client.command({
        query: `INSERT INTO cost_metrics_hourly SELECT toStartOfHour(timestamp) AS hour, customer_id, cloud_provider, service_name, region, instance_type,
          sumState(cost_per_hour), avgState(utilization_percent), maxState(utilization_percent), countState(), uniqState(instance_id)
          FROM cost_metrics_ts WHERE _kafka_offset < 2 GROUP BY hour, customer_id, cloud_provider, service_name, region, instance_type`,
      });
      const audit = await auditRollup(client, 'cost_metrics_ts');
      expect(audit.ok).toBe(false);
      expect(audit.rollupRows).toBe(N + 2);
      expect(audit.mismatches.length).toBeGreaterThanOrEqual(1);
      const m = audit.mismatches.reduce((a, x) => ({ raw: a.raw + x.raw.rows, rollup: a.rollup + x.rollup.rows }), { raw: 0, rollup: 0 });
      expect(m.rollup - m.raw).toBe(2);
      expect(audit.mismatches[0]!.hour).toBe(new Date(base).toISOString().slice(0, 19).replace('T', ' '));
      await expect(auditRollup(client, 'llm_logs')).rejects.toThrow(/no hourly rollup/);
    });
  });
});
