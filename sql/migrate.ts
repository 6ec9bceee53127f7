import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { engineFor, renderStatement, type TableLayout } from './ddl.js';
import { LOCK_TABLE, MigrationLock, type MigrationLockOptions } from './migration-lock.js';
import { PACKAGE_ROOT } from '../lib/package-root.js';

// From the package root, not from this module: compiled, it runs from dist/sql/, and the .sql
// files stay where they are (the build does not copy them).
export const MIGRATIONS_DIR = join(PACKAGE_ROOT, 'sql', 'migrations');

export interface Migration {
  version: string;
  name: string;
  checksum: string;
  /**
   * Checksums of earlier versions of this file that count as this one when recorded as applied
   * (`-- Replaces-checksum: <hex>` lines). For a migration rewritten to be safe: a database that
   * applied the old version completely is not migrated again, nor refused.
   */
  replaces: string[];
  statements: string[];
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Reads `NNNN_name.sql` files in version order. Statements are separated by a `;` at the
 * end of a line; `--` comment lines are dropped. Every statement must be idempotent
 * (IF NOT EXISTS, CREATE OR REPLACE, MODIFY SETTING, a copy guarded by NOT IN), because the
 * runner resumes an interrupted migration at the first statement it did not record as done,
 * and the statement running at the crash may or may not have taken effect.
 */
export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<string>();
  return files.map((file) => {
    const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) throw new MigrationError(`${file}: migration files are named NNNN_snake_case.sql`);
    const [, version, name] = match as unknown as [string, string, string];
    if (seen.has(version)) throw new MigrationError(`${file}: version ${version} is used twice`);
    seen.add(version);
    const text = readFileSync(join(dir, file), 'utf8');
    const replaces = [...text.matchAll(/^--\s*Replaces-checksum:\s*([0-9a-f, ]+)$/gim)].flatMap((m) => m[1]!.split(/[,\s]+/).filter(Boolean));
    const statements = text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('--'))
      .join('\n')
      .split(/;\s*$/m)
      .map((s) => s.trim())
      .filter(Boolean);
    return { version, name, checksum: createHash('sha256').update(text).digest('hex').slice(0, 16), replaces, statements };
  });
}

export interface MigrateOptions {
  /** Single server (default), replicated or sharded cluster: see sql/ddl.ts. */
  layout?: TableLayout;
  /** Lease and waiting of the runner lock: see sql/migration-lock.ts. */
  lock?: MigrationLockOptions;
  /**
   * Called after each statement has run and before it is recorded as done. Tests throw from
   * it (or kill the process in it) to interrupt a migration at every point.
   */
  afterStatement?: (at: { version: string; name: string; index: number; statement: string }) => void | Promise<void>;
}

export interface MigrateResult {
  applied: string[];
  skipped: string[];
  /** Statements run by this call (a resumed migration runs only those not recorded as done). */
  statements: number;
  lock: { epoch: number; waitedMs: number; tookOverFrom?: string };
}

const SINGLE: TableLayout = { kind: 'single', database: '' };
/** The runner's own tables are one history for the whole cluster: a Keeper path without {shard}. */
const GLOBAL_PATH = "'/clickhouse/tables/{database}/{table}'";

/** DDL of the runner's own tables, in a layout. schema_migrations is as releases before the lock created it. */
function runnerTables(layout: TableLayout): string[] {
  const oc = layout.kind === 'single' ? '' : ` ON CLUSTER ${layout.cluster}`;
  const engine = (e: string) => engineFor(e, layout, GLOBAL_PATH);
  return [
    `CREATE TABLE IF NOT EXISTS schema_migrations${oc}
      (version String, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = ${engine('ReplacingMergeTree(applied_at)')} ORDER BY version`,
    // One row per statement done, so an interrupted migration resumes where it stopped.
    `CREATE TABLE IF NOT EXISTS schema_migration_steps${oc}
      (version String, checksum String, step UInt32, owner String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = ${engine('ReplacingMergeTree(applied_at)')} ORDER BY (version, checksum, step)`,
    // The lock's claims rely on insert deduplication (sql/migration-lock.ts): keep the window
    // on both engines, whatever the server default.
    `CREATE TABLE IF NOT EXISTS ${LOCK_TABLE}${oc}
      (epoch UInt64, kind LowCardinality(String), owner String, expires_at DateTime64(3, 'UTC'), at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = ${engine('MergeTree')} ORDER BY (epoch, at)
      SETTINGS non_replicated_deduplication_window = 1000, replicated_deduplication_window = 1000, replicated_deduplication_window_seconds = 604800`,
  ];
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order, one runner at a
 * time (MigrationLock: every worker may call this at start; the others wait, then find
 * nothing to do). Each statement is recorded in `schema_migration_steps` once it has run, so a
 * runner that crashed is resumed at the statement it was running. Refuses to run when an
 * applied migration's file has changed since (edit history is immutable: add a new migration
 * instead), unless the file names the old checksum in a `Replaces-checksum` line.
 * Throws MigrationError for a failed statement and MigrationLockError when the lock cannot be
 * had or was lost; either way nothing after the failing statement ran.
 */
export async function migrate(client: ClickHouseClient, migrations = readMigrations(), opts: MigrateOptions = {}): Promise<MigrateResult> {
  const layout = opts.layout ?? SINGLE;
  if (layout.kind !== 'single') {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${layout.database} ON CLUSTER ${layout.cluster}` });
  }
  for (const query of runnerTables(layout)) await client.command({ query });

  const lock = new MigrationLock(client, opts.lock);
  const taken = await lock.acquire();
  const result: MigrateResult = { applied: [], skipped: [], statements: 0, lock: taken };
  try {
    const rows = await select<{ version: string; checksum: string }>(client, 'SELECT version, checksum FROM schema_migrations FINAL');
    const applied = new Map(rows.map((r) => [r.version, r.checksum]));
    for (const m of migrations) {
      const prior = applied.get(m.version);
      if (prior !== undefined) {
        if (prior !== m.checksum && !m.replaces.includes(prior)) {
          throw new MigrationError(`migration ${m.version}_${m.name} was changed after it was applied (checksum ${prior} → ${m.checksum}); add a new migration instead`);
        }
        result.skipped.push(`${m.version}_${m.name}`);
        continue;
      }
      const done = new Set(
        (await select<{ step: number }>(client, `SELECT DISTINCT step FROM schema_migration_steps WHERE version = '${m.version}' AND checksum = '${m.checksum}'`)).map((r) => Number(r.step)),
      );
      for (const [index, statement] of m.statements.entries()) {
        if (done.has(index)) continue;
        await lock.assertHeld();
        try {
          for (const query of renderStatement(statement, layout)) await client.command({ query });
        } catch (err) {
          throw new MigrationError(`migration ${m.version}_${m.name} failed at statement ${index + 1}: ${(err as Error).message}\n--- statement ---\n${statement}`, { cause: err });
        }
        result.statements++;
        await opts.afterStatement?.({ version: m.version, name: m.name, index, statement });
        await client.command({
          query: `INSERT INTO schema_migration_steps (version, checksum, step, owner) SETTINGS insert_deduplicate = 0 VALUES ('${m.version}', '${m.checksum}', ${index}, '${lock.owner}')`,
        });
      }
      await lock.assertHeld();
      // No clickhouse_settings here: chdb/connection turns them into session-level SETs that stay
      // in force for later statements (a token would make later inserts look like repeats).
      await client.insert({ table: 'schema_migrations', values: [{ version: m.version, name: m.name, checksum: m.checksum }], format: 'JSONEachRow' });
      result.applied.push(`${m.version}_${m.name}`);
    }
  } finally {
    await lock.release();
  }
  return result;
}

async function select<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}
