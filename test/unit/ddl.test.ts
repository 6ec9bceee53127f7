import { describe, expect, it } from 'vitest';
import { DdlError, engineFor, layoutOf, renderStatement, SHARDING_KEYS, storageName, type TableLayout } from '../../sql/ddl.js';
import { readMigrations } from '../../sql/migrate.js';
import { lockIsFree } from '../../sql/migration-lock.js';

const single: TableLayout = { kind: 'single', database: 'ingest' };
const replicated: TableLayout = { kind: 'replicated', cluster: 'events', database: 'ingest' };
const sharded: TableLayout = { kind: 'sharded', cluster: 'events', database: 'ingest' };
const PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'";

describe('choice of engine', () => {
  it('single server (and ClickHouse Cloud): the engine as written', () => {
    expect(engineFor('MergeTree', single)).toBe('MergeTree');
    expect(engineFor('ReplacingMergeTree(applied_at)', single)).toBe('ReplacingMergeTree(applied_at)');
  });
  it('a cluster: the Replicated variant with the Keeper path and replica macros, engine arguments after them', () => {
    expect(engineFor('MergeTree', replicated)).toBe(`ReplicatedMergeTree(${PATH})`);
    expect(engineFor('AggregatingMergeTree', sharded)).toBe(`ReplicatedAggregatingMergeTree(${PATH})`);
    expect(engineFor('CoalescingMergeTree', replicated)).toBe(`ReplicatedCoalescingMergeTree(${PATH})`);
    expect(engineFor('ReplacingMergeTree(applied_at)', replicated)).toBe(`ReplicatedReplacingMergeTree(${PATH}, applied_at)`);
    expect(engineFor('MergeTree', replicated, "'/clickhouse/tables/{database}/{table}'")).toBe("ReplicatedMergeTree('/clickhouse/tables/{database}/{table}', '{replica}')");
  });
  it('engines that are not MergeTree stay; an already replicated engine in a migration is refused', () => {
    expect(engineFor('Null', replicated)).toBe('Null');
    expect(() => engineFor('ReplicatedMergeTree', replicated)).toThrow(DdlError);
  });
  it('layout from config: sharding needs a cluster, the cluster must be an identifier', () => {
    expect(layoutOf({ database: 'd' })).toEqual({ kind: 'single', database: 'd' });
    expect(layoutOf({ database: 'd', cluster: 'c' })).toEqual({ kind: 'replicated', cluster: 'c', database: 'd' });
    expect(layoutOf({ database: 'd', cluster: 'c', sharding: true })).toEqual({ kind: 'sharded', cluster: 'c', database: 'd' });
    expect(() => layoutOf({ database: 'd', sharding: true })).toThrow(/CLICKHOUSE_CLUSTER/);
    expect(() => layoutOf({ database: 'd', cluster: "c'; DROP" })).toThrow(DdlError);
  });
});

describe('rendering the migrations', () => {
  const statements = readMigrations().flatMap((m) => m.statements);
  const created = statements.map((s) => /^CREATE TABLE IF NOT EXISTS (\w+)/.exec(s)?.[1]).filter((t): t is string => !!t);

  it('every table the migrations create has a documented sharding key, and no key is stale', () => {
    expect(new Set(created)).toEqual(new Set(Object.keys(SHARDING_KEYS)));
    for (const key of Object.values(SHARDING_KEYS)) expect(key).not.toMatch(/rand/);
  });

  it('single layout: every statement unchanged', () => {
    for (const s of statements) expect(renderStatement(s, single)).toEqual([s]);
  });

  it('replicated: every DDL statement ON CLUSTER, every MergeTree replicated, inserts unchanged', () => {
    for (const s of statements) {
      const out = renderStatement(s, replicated);
      expect(out).toHaveLength(1);
      if (s.startsWith('INSERT')) expect(out[0]).toBe(s);
      else expect(out[0]).toMatch(/^\S+(?: \S+)*? ON CLUSTER events\b/);
      expect(out[0]).not.toMatch(/ENGINE = (?!Replicated)\w*MergeTree/);
    }
  });

  it('sharded: a replicated local table plus a Distributed table per table; views read and write the local tables', () => {
    const out = statements.flatMap((s) => renderStatement(s, sharded));
    const cost = out.filter((s) => /^CREATE TABLE IF NOT EXISTS cost_metrics_ts(_local)? /.test(s));
    expect(cost).toHaveLength(2);
    expect(cost[0]).toMatch(/^CREATE TABLE IF NOT EXISTS cost_metrics_ts_local ON CLUSTER events/);
    expect(cost[0]).toContain(`ENGINE = ReplicatedMergeTree(${PATH})`);
    expect(cost[1]).toBe('CREATE TABLE IF NOT EXISTS cost_metrics_ts ON CLUSTER events AS cost_metrics_ts_local\nENGINE = Distributed(events, ingest, cost_metrics_ts_local, cityHash64(customer_id))');
    const mv = out.find((s) => s.startsWith('CREATE MATERIALIZED VIEW IF NOT EXISTS cost_metrics_hourly_mv'))!;
    expect(mv).toMatch(/ON CLUSTER events TO cost_metrics_hourly_local\s+AS/);
    expect(mv).toMatch(/FROM cost_metrics_ts_local\s+GROUP BY/);
    const forward = out.find((s) => s.startsWith('CREATE MATERIALIZED VIEW IF NOT EXISTS evolution_run_events_forward_mv'))!;
    expect(forward).toMatch(/TO evolution_run_updates_local[\s\S]*FROM evolution_run_events_local$/);
    const view = out.find((s) => s.startsWith('CREATE OR REPLACE VIEW evolution_runs'))!;
    expect(view).toMatch(/FROM evolution_run_updates\nGROUP BY run_id$/);
    const copy = out.find((s) => s.startsWith('INSERT INTO evolution_run_updates'))!;
    expect(copy).toContain('GLOBAL NOT IN (');
    const alter = renderStatement('ALTER TABLE llm_logs MODIFY TTL toDateTime(timestamp) + INTERVAL 7 DAY', sharded);
    expect(alter).toEqual(['ALTER TABLE llm_logs_local ON CLUSTER events MODIFY TTL toDateTime(timestamp) + INTERVAL 7 DAY']);
    expect(renderStatement('DROP TABLE IF EXISTS llm_logs', sharded)).toEqual(['DROP TABLE IF EXISTS llm_logs ON CLUSTER events SYNC', 'DROP TABLE IF EXISTS llm_logs_local ON CLUSTER events SYNC']);
    expect(storageName('llm_logs', sharded)).toBe('llm_logs_local');
    expect(storageName('llm_logs', replicated)).toBe('llm_logs');
  });

  it('every hourly rollup gets the deduplication windows, applied to the table that stores its rows in every layout', () => {
    const rollups = created.filter((t) => t.endsWith('_hourly'));
    expect(rollups.sort()).toEqual(['cost_metrics_hourly', 'performance_metrics_hourly', 'quality_metrics_hourly', 'resource_metrics_hourly']);
    const windows = 'MODIFY SETTING non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800';
    const v10 = readMigrations().find((m) => m.version === '0010')!;
    expect(v10.statements.sort()).toEqual(rollups.map((t) => `ALTER TABLE ${t} ${windows}`));
    for (const t of rollups) {
      const s = `ALTER TABLE ${t} ${windows}`;
      // Single server and ClickHouse Cloud (SharedMergeTree takes the replicated settings).
      expect(renderStatement(s, single)).toEqual([s]);
      expect(renderStatement(s, replicated)).toEqual([`ALTER TABLE ${t} ON CLUSTER events ${windows}`]);
      // Sharded: the views write each shard's local rollup; the Distributed table stores nothing.
      expect(renderStatement(s, sharded)).toEqual([`ALTER TABLE ${t}_local ON CLUSTER events ${windows}`]);
    }
  });

  it('a statement form the renderer does not know is refused for a cluster, not passed through', () => {
    expect(() => renderStatement('RENAME TABLE a TO b', replicated)).toThrow(DdlError);
    expect(() => renderStatement('CREATE TABLE IF NOT EXISTS unknown_table (x UInt8) ENGINE = MergeTree ORDER BY x', sharded)).toThrow(/sharding key/);
  });
});

describe('migration lock decision', () => {
  it('free when never taken, released or expired; held while the lease has time left', () => {
    expect(lockIsFree(undefined)).toBe(true);
    expect(lockIsFree({ epoch: 3, holder: 'a', remainingMs: 1, released: false })).toBe(false);
    expect(lockIsFree({ epoch: 3, holder: 'a', remainingMs: 0, released: false })).toBe(true);
    expect(lockIsFree({ epoch: 3, holder: 'a', remainingMs: 50_000, released: true })).toBe(true);
  });
});
