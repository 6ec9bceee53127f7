import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderStatement, type TableLayout } from '../../sql/ddl.js';
import { migrate, readMigrations } from '../../sql/migrate.js';
import { openDb, schemaOf } from '../helpers/migration-state.js';
import { queryRows } from '../helpers/stack.js';

/**
 * A runner killed (SIGKILL) in the middle of 0008 while holding the lock: the next runner waits
 * for the dead holder's lease, takes over, resumes at the interrupted statement and ends with
 * the schema of a clean run. Also: every statement rendered for each cluster layout parses in
 * the real engine. Own file: the embedded engine takes one data directory per process, and here
 * the child process must own it first.
 */
const dataPath = mkdtempSync(join(tmpdir(), 'migration-lock-'));
afterAll(() => rmSync(dataPath, { recursive: true, force: true }));

describe('migration lock', () => {
  it('a holder killed mid-migration: the next runner takes over after its lease and finishes the job', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../fixtures/migrate-then-hang.ts'), dataPath, 'crashed', '0008', '2'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('HANG')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before hanging: ${out}`)));
    });
    const killedAt = Date.now();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const client = await openDb(dataPath, 'crashed');
    try {
      const result = await migrate(client, undefined, { lock: { leaseMs: 4_000, pollMs: 100, owner: 'successor' } });
      expect(result.lock.tookOverFrom).toBe('doomed-runner');
      expect(result.lock.epoch).toBe(2);
      // It had to wait for the rest of the dead holder's lease (renewed every 1.3 s, 4 s long).
      expect(Date.now() - killedAt).toBeGreaterThan(2_000);
      expect(result.lock.waitedMs).toBeGreaterThan(1_000);
      // 0001-0007 were done; 0008 resumes at its third statement (index 2, unrecorded), then those after it.
      const v8 = readMigrations().find((m) => m.version === '0008')!;
      const later = readMigrations().filter((m) => m.version > '0008');
      expect(result.applied).toEqual([`0008_${v8.name}`, ...later.map((m) => `${m.version}_${m.name}`)]);
      expect(result.statements).toBe(v8.statements.length - 2 + later.reduce((n, m) => n + m.statements.length, 0));
      const crashed = await schemaOf(client);
      await client.command({ query: 'CREATE DATABASE IF NOT EXISTS clean' });
      await client.command({ query: 'USE clean' });
      await migrate(client, undefined, { lock: { leaseMs: 4_000, pollMs: 100 } });
      expect(crashed).toEqual(await schemaOf(client));
    } finally {
      await client.close();
    }
  });

  it('every migration statement, rendered for a replicated and a sharded cluster, parses in the real engine', async () => {
    const client = await openDb(dataPath, 'parse');
    try {
      const layouts: TableLayout[] = [
        { kind: 'replicated', cluster: 'events', database: 'ingest' },
        { kind: 'sharded', cluster: 'events', database: 'ingest' },
      ];
      let n = 0;
      for (const layout of layouts) {
        for (const m of readMigrations()) {
          for (const s of m.statements) {
            for (const q of renderStatement(s, layout)) {
              const [row] = await queryRows<{ f: string }>(client, 'SELECT formatQuery({q:String}) AS f', { q });
              expect(row!.f, q).toContain(layout.kind === 'sharded' && /^CREATE TABLE \w+ ON/.test(row!.f) ? 'ON CLUSTER events' : '');
              if (!q.startsWith('INSERT')) expect(row!.f, q).toContain('ON CLUSTER events');
              n++;
            }
          }
        }
      }
      expect(n).toBeGreaterThan(60);
    } finally {
      await client.close();
    }
  });
});
