import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, readMigrations, type Migration } from '../../sql/migrate.js';
import { applyRetention } from '../../sql/retention.js';
import { evolutionRowsOf, insertLegacyRuns, openDb, recordingClient, schemaOf } from '../helpers/migration-state.js';
import { queryRows, uniqueId } from '../helpers/stack.js';

/**
 * The migration runner on the embedded engine: one runner at a time, resumable from every
 * statement, a rolling upgrade through 0008 that keeps every row old workers insert, and
 * retention DDL only when it changes. (A runner killed for real: migration-lock.test.ts.)
 */
let dataPath: string;
const all = readMigrations();
const upTo = (version: string): Migration[] => all.filter((m) => m.version <= version);
const fast = { leaseMs: 5_000, pollMs: 50 };
const LEGACY_RUNS = 20;

class SimulatedCrash extends Error {}

beforeAll(() => {
  dataPath = mkdtempSync(join(tmpdir(), 'migrations-'));
});
afterAll(() => rmSync(dataPath, { recursive: true, force: true }));

async function withDb<T>(fn: (client: ClickHouseClient) => Promise<T>): Promise<T> {
  const client = await openDb(dataPath, uniqueId('m'));
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** A database migrated to 0007 holding old-release rows, then migrated the rest of the way. */
async function cleanRun(client: ClickHouseClient): Promise<void> {
  await migrate(client, upTo('0007'), { lock: fast });
  await insertLegacyRuns(client, 0, LEGACY_RUNS);
  await migrate(client, all, { lock: fast });
}

let reference: { schema: Awaited<ReturnType<typeof schemaOf>>; rows: Awaited<ReturnType<typeof evolutionRowsOf>> };

describe('migration runner', () => {
  beforeAll(async () => {
    reference = await withDb(async (c) => {
      await cleanRun(c);
      return { schema: await schemaOf(c), rows: await evolutionRowsOf(c) };
    });
  });

  it('the clean run holds every legacy row in the new table, and the view shows every run completed', () => {
    expect(reference.rows.updates).toHaveLength(LEGACY_RUNS);
    expect(reference.rows.runs).toHaveLength(LEGACY_RUNS);
    expect(reference.rows.runs.filter((r) => (r as { status: string }).status === 'completed')).toHaveLength(LEGACY_RUNS / 2);
    const names = reference.schema.tables.map((t) => (t as { name: string }).name);
    expect(names).toContain('evolution_run_events_forward_mv');
    expect(names).toContain('schema_migrations_lock');
  });

  it('two runners at once: every statement runs exactly once, every migration is recorded once', async () => {
    await withDb(async (inner) => {
      const { client, commands } = recordingClient(inner);
      const [a, b] = await Promise.all([
        migrate(client, all, { lock: { ...fast, owner: 'runner-a' } }),
        migrate(client, all, { lock: { ...fast, owner: 'runner-b' } }),
      ]);
      const names = all.map((m) => `${m.version}_${m.name}`);
      expect([...a.applied, ...b.applied].sort()).toEqual(names);
      // One of them did everything; the other waited for the lock and found nothing to do.
      expect([a.applied.length, b.applied.length].sort((x, y) => x - y)).toEqual([0, names.length]);
      // 0008 repeats 0005's CREATE TABLE evolution_run_events: count each text as often as it is written.
      const written = all.flatMap((m) => m.statements);
      for (const s of written) expect(commands.filter((q) => q === s), s.slice(0, 60)).toHaveLength(written.filter((w) => w === s).length);
      const recorded = await queryRows<{ version: string; n: string }>(inner, 'SELECT version, toString(count()) AS n FROM schema_migrations GROUP BY version ORDER BY version');
      expect(recorded).toEqual(all.map((m) => ({ version: m.version, n: '1' })));
      const epochs = await queryRows<{ epoch: string; claims: string }>(inner, "SELECT toString(epoch) AS epoch, toString(countIf(kind = 'claim')) AS claims FROM schema_migrations_lock GROUP BY epoch ORDER BY epoch");
      expect(epochs).toEqual([
        { epoch: '1', claims: '1' },
        { epoch: '2', claims: '1' },
      ]);
    });
  });

  const early = upTo('0007').flatMap((m) => m.statements.map((_, i) => [m.version, i] as const));
  it(`interrupted after each of the ${early.length} statements of 0001-0007 and re-run: the clean run's schema and rows`, async () => {
    for (const [version, index] of early) {
      await withDb(async (c) => {
        const crash = { afterStatement: (at: { version: string; index: number }) => {
          if (at.version === version && at.index === index) throw new SimulatedCrash(`${version}#${index}`);
        } };
        await expect(migrate(c, upTo('0007'), { lock: fast, ...crash })).rejects.toThrow(SimulatedCrash);
        const resumed = await migrate(c, upTo('0007'), { lock: fast });
        // The resumed run starts at the interrupted statement (unrecorded: it may or may not have run).
        expect(resumed.applied[0], `${version}#${index}`).toBe(`${version}_${all.find((m) => m.version === version)!.name}`);
        await insertLegacyRuns(c, 0, LEGACY_RUNS);
        await migrate(c, all, { lock: fast });
        expect(await schemaOf(c), `${version}#${index}`).toEqual(reference.schema);
        expect(await evolutionRowsOf(c), `${version}#${index}`).toEqual(reference.rows);
      });
    }
  }, 900_000);

  const late = all.filter((m) => m.version >= '0008').flatMap((m) => m.statements.map((_, i) => [m.version, i] as const));
  it(`interrupted after each of the ${late.length} statements of 0008 onwards and re-run: the clean run's schema and rows`, async () => {
    for (const [version, index] of late) {
      await withDb(async (c) => {
        await migrate(c, upTo('0007'), { lock: fast });
        await insertLegacyRuns(c, 0, LEGACY_RUNS);
        let ran = 0;
        await expect(
          migrate(c, all, {
            lock: fast,
            afterStatement: (at) => {
              ran++;
              if (at.version === version && at.index === index) throw new SimulatedCrash(`${version}#${index}`);
            },
          }),
        ).rejects.toThrow(SimulatedCrash);
        const resumed = await migrate(c, all, { lock: fast });
        const statementsOf = (v: string) => all.find((m) => m.version === v)!.statements.length;
        const total = all.filter((m) => m.version >= '0008').reduce((n, m) => n + m.statements.length, 0);
        // Resumed at the interrupted statement: only it and those after it ran again.
        expect(resumed.statements, `${version}#${index}`).toBe(total - ran + 1);
        expect(ran).toBeLessThanOrEqual(total);
        expect(statementsOf(version)).toBeGreaterThan(index);
        expect(await schemaOf(c), `${version}#${index}`).toEqual(reference.schema);
        expect(await evolutionRowsOf(c), `${version}#${index}`).toEqual(reference.rows);
      });
    }
  }, 900_000);

  it('a database that applied the first version of 0008 (copy then drop) is neither refused nor migrated again by it', async () => {
    await withDb(async (c) => {
      await migrate(c, upTo('0007'), { lock: fast });
      const v8 = all.find((m) => m.version === '0008')!;
      expect(v8.replaces).toEqual(['a9a07d273752dbad']);
      // What the first version left: the new table and view, the old table dropped.
      await c.command({ query: v8.statements[0]! });
      await c.command({ query: v8.statements.at(-1)! });
      await c.command({ query: 'DROP TABLE evolution_run_events' });
      await c.insert({ table: 'schema_migrations', values: [{ version: '0008', name: v8.name, checksum: 'a9a07d273752dbad' }], format: 'JSONEachRow' });
      const r = await migrate(c, all, { lock: fast });
      expect(r.skipped).toContain(`0008_${v8.name}`);
      expect(r.applied).toEqual(all.filter((m) => m.version > '0008').map((m) => `${m.version}_${m.name}`));
    });
  });

  it('rolling upgrade: rows an old worker inserts while 0008 runs all land in the new table, exactly once', async () => {
    await withDb(async (c) => {
      await migrate(c, upTo('0007'), { lock: fast });
      await insertLegacyRuns(c, 0, LEGACY_RUNS);
      let next = LEGACY_RUNS;
      let stop = false;
      // The old worker: inserting continuously, and once more between every two statements.
      const oldWorker = (async () => {
        while (!stop) await insertLegacyRuns(c, next++, 1);
      })();
      const r = await migrate(c, all, {
        lock: fast,
        afterStatement: async () => {
          await insertLegacyRuns(c, next++, 1);
        },
      });
      // The old worker keeps going after the upgrade until it is replaced.
      await new Promise((r) => setTimeout(r, 200));
      stop = true;
      await oldWorker;
      await insertLegacyRuns(c, next, 3);
      next += 3;
      expect(r.applied).toContain('0008_evolution_runs_order_independent');
      const [u] = await queryRows<{ rows: string; runs: string; offsets: string }>(c, 'SELECT toString(count()) AS rows, toString(uniqExact(run_id)) AS runs, toString(uniqExact(_kafka_offset)) AS offsets FROM evolution_run_updates');
      // Every run the old worker inserted, exactly once.
      expect(u).toEqual({ rows: String(next), runs: String(next), offsets: String(next) });
      const [v] = await queryRows<{ n: string; completed: string }>(c, "SELECT toString(count()) AS n, toString(countIf(status = 'completed' AND total_generations = 5 AND task_name = 'task')) AS completed FROM evolution_runs");
      expect(v).toEqual({ n: String(next), completed: String(Math.floor(next / 2)) });
      expect(next).toBeGreaterThan(LEGACY_RUNS + 16);
    });
  });

  it('retention DDL only when the TTL changes: a second start issues no ALTER', async () => {
    await withDb(async (inner) => {
      await migrate(inner, all, { lock: fast });
      const { client, commands } = recordingClient(inner);
      const alters = () => commands.splice(0).filter((q) => /^\s*ALTER/i.test(q));
      await applyRetention(client, { llmLogsDays: 7, agentActionsDays: 0 });
      expect(alters()).toEqual(['ALTER TABLE llm_logs MODIFY TTL toDateTime(timestamp) + INTERVAL 7 DAY']);
      await applyRetention(client, { llmLogsDays: 7, agentActionsDays: 0 });
      expect(alters()).toEqual([]);
      await applyRetention(client, { llmLogsDays: 7, agentActionsDays: 30 });
      expect(alters()).toEqual(['ALTER TABLE agent_actions MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY']);
      await applyRetention(client, { llmLogsDays: 14, agentActionsDays: 30 });
      expect(alters()).toEqual(['ALTER TABLE llm_logs MODIFY TTL toDateTime(timestamp) + INTERVAL 14 DAY']);
      await applyRetention(client, { agentActionsDays: 30 });
      expect(alters()).toEqual(['ALTER TABLE llm_logs REMOVE TTL']);
      await applyRetention(client, { agentActionsDays: 30 });
      expect(alters()).toEqual([]);
    });
  });

  it('the deduplication window is set for MergeTree and Replicated/Shared engines on every table the worker inserts into', async () => {
    await withDb(async (c) => {
      await migrate(c, all, { lock: fast });
      const rows = await queryRows<{ name: string; engine_full: string }>(c, "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' AND name NOT LIKE '%hourly' AND name NOT LIKE 'schema_migration%' AND name != 'evolution_run_events'");
      expect(rows.length).toBe(11);
      for (const r of rows) {
        expect(r.engine_full, r.name).toContain('non_replicated_deduplication_window = 10000');
        expect(r.engine_full, r.name).toContain('replicated_deduplication_window = 10000');
        expect(r.engine_full, r.name).toContain('replicated_deduplication_window_seconds = 604800');
      }
    });
  });

  it('an installation migrated to 0009 with rollup rows gets the windows on every hourly rollup (0010), its rows unchanged', async () => {
    await withDb(async (c) => {
      await migrate(c, upTo('0009'), { lock: fast });
      await c.command({
        query: `INSERT INTO cost_metrics_ts (timestamp, customer_id, cloud_provider, service_name, instance_id, instance_type, region, cost_per_hour, utilization_percent, is_spot, is_reserved)
          SELECT toStartOfHour(now64(3, 'UTC')) - INTERVAL 2 HOUR + number * 60, generateUUIDv4(), 'aws', 'ec2', toString(number), 'm5.xlarge', 'us-east-1', 0.5, 50, 0, 0 FROM numbers(100)`,
      });
      const rollup = 'SELECT toString(countMerge(samples)) AS n, toString(sumMerge(total_cost)) AS cost FROM cost_metrics_hourly';
      const before = await queryRows(c, rollup);
      expect(before).toEqual([{ n: '100', cost: '50' }]);
      const r = await migrate(c, all, { lock: fast });
      expect(r.applied).toEqual(all.filter((m) => m.version > '0009').map((m) => `${m.version}_${m.name}`));
      expect(r.applied).toContain('0010_rollup_deduplication_windows');
      expect(await queryRows(c, rollup)).toEqual(before);
      const rows = await queryRows<{ name: string; engine_full: string }>(c, "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_hourly' ORDER BY name");
      expect(rows.map((x) => x.name)).toEqual(['cost_metrics_hourly', 'performance_metrics_hourly', 'quality_metrics_hourly', 'resource_metrics_hourly']);
      for (const x of rows) {
        expect(x.engine_full, x.name).toMatch(/^AggregatingMergeTree/);
        expect(x.engine_full, x.name).toContain('non_replicated_deduplication_window = 10000');
        expect(x.engine_full, x.name).toContain('replicated_deduplication_window = 10000');
        expect(x.engine_full, x.name).toContain('replicated_deduplication_window_seconds = 604800');
      }
    });
  });
});
