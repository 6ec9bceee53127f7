import { mkdirSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseClientConfigOptions } from '@clickhouse/client';
// A type only: the embedded engine's module is loaded in openClickHouse, when it is used.
import type { ChdbConnection } from 'chdb/connection';
import type { Config } from './config.js';

/**
 * The one ClickHouse client factory. With `url` set it talks to that server over HTTP;
 * otherwise to the embedded chDB engine at `dataPath`, where rows survive restarts.
 * The embedded engine belongs to one process per data directory: run several
 * consumer-group members in that process (`consumer.concurrency`), or set CLICKHOUSE_URL
 * to run workers as separate processes.
 *
 * The database is created when missing and made the client's current database, so
 * unqualified table names (as in the seed documents' SQL) resolve to our tables.
 */
export async function openClickHouse(config: Config['clickhouse'], opts: { quiet?: boolean } = {}): Promise<ClickHouseClient> {
  // quiet: the client's own log off (a command reports a failure in one line of its own,
  // not the client's multi-line error dump with a stack).
  const log = opts.quiet ? { log: { level: ClickHouseLogLevel.OFF } } : {};
  if (config.url) {
    const connection = { ...clickhouseConnectionOptions(config), ...log };
    const bootstrap = createClient({ ...connection, request_timeout: config.requestTimeoutMs });
    try {
      await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.database}` });
    } finally {
      await bootstrap.close();
    }
    return createClient({
      ...connection,
      database: config.database,
      request_timeout: config.requestTimeoutMs,
      compression: { request: false, response: true },
    });
  }
  // Loaded only here, without CLICKHOUSE_URL: chdb is a native library with prebuilt binaries
  // for a few platforms (none for musl), and a worker on a ClickHouse server must start where
  // it cannot load (test/integration/compiled-worker.test.ts runs one with chdb blocked).
  const { createChdbConnection } = await import('chdb/connection');
  const path = resolve(config.dataPath);
  mkdirSync(path, { recursive: true });
  const connection = createChdbConnection({ path });
  const client = createClient({
    connection,
    request_timeout: config.requestTimeoutMs,
    ...log,
  } as Parameters<typeof createClient>[0]);
  // chdb/connection ignores the client's `database` option; USE is kept by its session.
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.database}` });
  await client.command({ query: `USE ${config.database}` });
  embedded.set(client, { connection, path, database: config.database, repeats: Promise.resolve() });
  return client;
}

/**
 * Connection options for a ClickHouse server (config.url set): the URL without its credentials
 * and path, which are passed explicitly instead, because @clickhouse/client lets a URL's user,
 * password and database win over the options, and CLICKHOUSE_PASSWORD (or its _FILE) must win
 * over the URL's, and the database (from the URL's path, see loadConfig) must not be current
 * before the bootstrap client has created it. TLS: CLICKHOUSE_CA_CERT as the trusted CA (the
 * system CAs when unset) and CLICKHOUSE_TLS_CERT/KEY as a client certificate. Pure, apart from
 * reading those files.
 */
export function clickhouseConnectionOptions(config: Config['clickhouse']): Pick<ClickHouseClientConfigOptions, 'url' | 'username' | 'password' | 'tls'> {
  const url = new URL(config.url!);
  const username = config.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = config.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  url.username = '';
  url.password = '';
  url.pathname = '/';
  const options: Pick<ClickHouseClientConfigOptions, 'url' | 'username' | 'password' | 'tls'> = {
    url: url.toString().replace(/\/$/, ''),
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
  if (config.caCert || config.tlsCert) {
    // @clickhouse/client takes a CA with a client certificate; without CLICKHOUSE_CA_CERT that is the system's.
    const ca_cert = config.caCert ? readFileSync(config.caCert) : Buffer.from(rootCertificates.join('\n'));
    options.tls = config.tlsCert ? { ca_cert, cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey!) } : { ca_cert };
  }
  return options;
}

interface Embedded {
  connection: ChdbConnection;
  path: string;
  database: string;
  repeats: Promise<void>;
}

const embedded = new WeakMap<ClickHouseClient, Embedded>();

/** Formats the embedded engine takes as a raw buffer (no copy into a query string). */
export type RawFormat = 'TabSeparated' | 'RowBinary';

export type RawInsert = (params: {
  table: string;
  columns: readonly string[];
  format: RawFormat;
  body: Buffer;
  /** RowBinary only: a RowBinaryWithNamesAndTypes header sent before the body (the engine checks its types). */
  header?: Buffer;
  settings: Record<string, string | number>;
  /** The insert may repeat an earlier one (same token): find out whether ClickHouse dropped it (see below). */
  mayRepeat?: boolean;
}) => Promise<RawInsertSummary>;

/**
 * What the engine reports of a raw insert: `rowsWritten`, its written-rows progress (it
 * includes rows written by materialized views), and `deduplicated`, known only for an insert
 * passed with `mayRepeat`.
 */
export interface RawInsertSummary {
  readonly rowsWritten: number;
  readonly deduplicated?: boolean;
}

/**
 * Beware on the embedded engine: chdb/connection applies a call's `clickhouse_settings` as
 * session-level SETs that stay in force for later statements of that client (an
 * insert_deduplication_token would make later inserts look like repeats). The worker passes
 * insert settings only through the raw insert below, where they belong to one insert.
 *
 * For a client on the embedded engine: chDB's raw insert, which hands the buffer to the engine
 * without copying it into a query string (the @clickhouse/client path does): about 1.5x the
 * rows/s in the benchmark. Settings go with each insert. Undefined for a ClickHouse server.
 */
export function rawInsertOf(client: ClickHouseClient): RawInsert | undefined {
  const e = embedded.get(client);
  if (!e) return undefined;
  const insert = async (table: string, columns: readonly string[], format: RawFormat, body: Buffer, settings: Record<string, string | number>, header?: Buffer) =>
    format === 'RowBinary'
      ? (await binaryInsertAt(e.path)(`${e.database}.${table}`, columns, body, settings, header)).rowsWritten
      : (await e.connection.chdb.rawInsert({ table: `${e.database}.${table}`, columns, format, values: body, settings })).rowsWritten;
  return async ({ table, columns, format, body, header, settings, mayRepeat }) => {
    if (!mayRepeat) return { rowsWritten: await insert(table, columns, format, body, settings, header) };
    // chDB's rowsWritten counts the rows of an insert ClickHouse dropped as a repeat of its
    // token as written (verified: the same token twice reports the same rowsWritten, the table
    // holds the rows once). The engine's DuplicatedInsertedBlocks event counter does move, so
    // an insert that may repeat (a re-formed range, a retry) reads it around the insert. Such
    // inserts run one at a time, so the counter's move is theirs: an insert that cannot repeat
    // (a fresh token) never adds to it. They are rare (after a crash, rebalance or failure).
    const run = e.repeats.then(async () => {
      const before = await duplicatedBlocks(e.connection);
      const rowsWritten = await insert(table, columns, format, body, settings, header);
      return { rowsWritten, deduplicated: (await duplicatedBlocks(e.connection)) > before };
    });
    e.repeats = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
}

async function duplicatedBlocks(connection: ChdbConnection): Promise<number> {
  const text = (await connection.chdb.queryAsync("SELECT value FROM system.events WHERE event = 'DuplicatedInsertedBlocks'", { format: 'TSV' })).text();
  return Number(text.trim() || 0);
}


/** With `header` (RowBinaryWithNamesAndTypes' names and types), the body goes after it in that format. */
export type BinaryInsert = (table: string, columns: readonly string[], body: Buffer, settings: Record<string, string | number>, header?: Buffer) => Promise<{ rowsWritten: number }>;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/**
 * RowBinary into the embedded engine, through a file. chDB's raw insert hands a body to the
 * engine as the inline data of `INSERT … FORMAT <fmt>`, and its JavaScript side accepts text
 * formats only ("binary formats wait on the upstream inline-data feasibility check"). Measured
 * with chdb 3.4 by calling the native entry directly: inline binary data ends at the first two
 * consecutive newline bytes, silently when that falls between rows (a UInt64 offset of 2570 is
 * 0A 0A 00 …), so rows would be lost. `INSERT … FROM INFILE` reads the file as it is, so the body
 * is written to a file (in memory where there is room, see spoolDir) for the insert and removed
 * after it.
 * The statement runs through chDB's native raw-insert entry (`InsertRawAsyncConnection`) with an
 * empty inline body, because that entry reports the written rows as the raw insert does. It runs
 * on a session of its own at the same data directory (chDB allows several connections to one
 * directory; they share the engine and its tables). Identifiers and settings are checked here,
 * as chDB checks its own raw insert's. test/integration/row-binary.test.ts inserts rows holding
 * every byte value and reads them back equal.
 */
export function binaryInsertAt(path: string): BinaryInsert {
  const known = binaryInserts.get(path);
  if (known) return known;
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('chdb'));
  const native = (require(join(root, 'dist/loader.js')) as { loadNative(): ChdbNative }).loadNative();
  const errors = require(join(root, 'dist/errors.js')) as { mapNativeError(message: string, code: number | undefined, cause: unknown): Error };
  const { Session } = require('chdb') as { Session: new (path: string) => { connection: unknown } };
  const session = new Session(path);
  const dir = spoolDir();
  // The files are removed after each insert; the directory when the process exits.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  let seq = 0;
  const empty = Buffer.alloc(0);
  const binaryInsert: BinaryInsert = async (table, columns, body, settings, header) => {
    for (const name of [table, ...columns, ...Object.keys(settings)]) if (!IDENTIFIER.test(name)) throw new Error(`RowBinary insert: not an identifier: ${JSON.stringify(name)}`);
    const sets = Object.entries(settings).map(([k, v]) => (typeof v === 'number' ? `${k}=${v}` : `${k}=${quote(v)}`));
    const file = join(dir, `${++seq}.bin`);
    if (header) {
      const fh = await open(file, 'w');
      try {
        await fh.writev([header, body]);
      } finally {
        await fh.close();
      }
    } else await writeFile(file, body);
    try {
      const prefix = `INSERT INTO ${table} (${columns.join(', ')}) FROM INFILE ${quote(file)}${sets.length ? ` SETTINGS ${sets.join(', ')}` : ''} FORMAT ${header ? 'RowBinaryWithNamesAndTypes' : 'RowBinary'}`;
      let result: { rowsWritten?: number };
      try {
        result = await native.InsertRawAsyncConnection(session.connection, prefix, empty, false);
      } catch (err) {
        // As chDB's own raw insert: the engine's code read from the message (`clickhouseCode`),
        // which classifyClickHouseError decides on (a data error is poison, not retried).
        const e = err as { code?: unknown; message?: unknown } | null;
        if (e && typeof e.code === 'string' && e.code.startsWith('CHDB_')) throw err;
        throw errors.mapNativeError(String(e?.message ?? err), undefined, err);
      }
      return { rowsWritten: Number(result.rowsWritten ?? 0) };
    } finally {
      await rm(file, { force: true });
    }
  };
  binaryInserts.set(path, binaryInsert);
  return binaryInsert;
}

/**
 * The directory of this process's RowBinary files: in memory (/dev/shm) when it has room for
 * several batches (a container's default /dev/shm is 64 MiB, too small for four 16 MiB bodies
 * in flight), else the temporary directory (TMPDIR), where the page cache holds them. Named by
 * process id; the directories of processes that are gone (a kill -9) are removed first.
 */
function spoolDir(): string {
  let base = tmpdir();
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize >= 1024 ** 3) base = '/dev/shm';
  } catch {
    // No /dev/shm: the temporary directory.
  }
  for (const name of readdirSync(base)) {
    const pid = /^ingest-rowbinary-(\d+)$/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(base, name), { recursive: true, force: true });
    }
  }
  const dir = join(base, `ingest-rowbinary-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const quote = (v: string): string => `'${v.replace(/[\\']/g, (c) => `\\${c}`)}'`;

const binaryInserts = new Map<string, BinaryInsert>();

interface ChdbNative {
  InsertRawAsyncConnection(connection: unknown, prefix: string, body: Buffer, countLines: boolean): Promise<{ rowsWritten?: number }>;
}
