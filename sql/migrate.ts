import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface Migration {
  version: string;
  name: string;
  checksum: string;
  statements: string[];
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Reads `NNNN_name.sql` files in version order. Statements are separated by a `;` at the
 * end of a line; `--` comment lines are dropped. Every statement must be idempotent
 * (IF NOT EXISTS), so a migration interrupted half-way can simply run again.
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
    const statements = text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('--'))
      .join('\n')
      .split(/;\s*$/m)
      .map((s) => s.trim())
      .filter(Boolean);
    return { version, name, checksum: createHash('sha256').update(text).digest('hex').slice(0, 16), statements };
  });
}

export interface MigrateResult {
  applied: string[];
  skipped: string[];
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in order, and records each.
 * Refuses to run when an applied migration's file has changed since (edit history is
 * immutable: add a new migration instead).
 */
export async function migrate(client: ClickHouseClient, migrations = readMigrations()): Promise<MigrateResult> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations
      (version String, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = ReplacingMergeTree(applied_at) ORDER BY version`,
  });
  const rows = await (await client.query({ query: 'SELECT version, name, checksum FROM schema_migrations FINAL', format: 'JSONEachRow' })).json<{
    version: string;
    name: string;
    checksum: string;
  }>();
  const applied = new Map(rows.map((r) => [r.version, r]));
  const result: MigrateResult = { applied: [], skipped: [] };
  for (const m of migrations) {
    const prior = applied.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new MigrationError(`migration ${m.version}_${m.name} was changed after it was applied (checksum ${prior.checksum} → ${m.checksum}); add a new migration instead`);
      }
      result.skipped.push(`${m.version}_${m.name}`);
      continue;
    }
    for (const statement of m.statements) {
      try {
        await client.command({ query: statement });
      } catch (err) {
        throw new MigrationError(`migration ${m.version}_${m.name} failed: ${(err as Error).message}\n--- statement ---\n${statement}`, { cause: err });
      }
    }
    // No clickhouse_settings here: chdb/connection turns them into session-level SETs that stay
    // in force for later statements (a token would make later inserts look like repeats).
    await client.insert({ table: 'schema_migrations', values: [{ version: m.version, name: m.name, checksum: m.checksum }], format: 'JSONEachRow' });
    result.applied.push(`${m.version}_${m.name}`);
  }
  return result;
}
