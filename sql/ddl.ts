/**
 * Renders the migrations' single-node DDL for the table layout of the target ClickHouse:
 *
 * - `single` (no CLICKHOUSE_CLUSTER): the statements as written. ClickHouse Cloud belongs
 *   here too: it turns plain `MergeTree` DDL into SharedMergeTree by itself.
 * - `replicated` (CLICKHOUSE_CLUSTER=name): every DDL statement `ON CLUSTER name`, every
 *   `*MergeTree` engine its `Replicated*` variant, with the Keeper path
 *   `/clickhouse/tables/{shard}/{database}/{table}` and replica `{replica}` (server macros).
 * - `sharded` (CLICKHOUSE_SHARDING=true as well): each table `t` becomes a replicated local
 *   table `t_local` on every shard plus a `Distributed` table `t` over them, sharded by the
 *   key in SHARDING_KEYS. Materialized views read and write the local tables (each shard rolls
 *   up its own rows); plain views, inserts and selects use the Distributed names.
 *
 * The migration files stay single-node SQL (their checksums are of the files), and this module
 * is the one place that knows the cluster forms. A statement it does not know how to render
 * for a cluster throws, so a new migration cannot silently create a single-node table on one
 * host of a cluster (test/unit/ddl.test.ts renders every migration in every layout).
 */

export type LayoutKind = 'single' | 'replicated' | 'sharded';

export interface TableLayout {
  kind: LayoutKind;
  /** Cluster name of `ON CLUSTER` and `Distributed(...)`; set for replicated and sharded. */
  cluster?: string;
  /** Database of the tables (the `Distributed` engine names it explicitly). */
  database: string;
}

export class DdlError extends Error {
  override readonly name = 'DdlError';
}

/**
 * Sharding key of every table, for the sharded layout. Chosen so that rows read together live
 * on one shard: a customer's metrics (and their hourly rollups, which the materialized view
 * writes on the shard of the raw rows) and an evolution run's events. The key is a hash of row
 * contents, never rand(): a batch re-inserted after a crash must split across the shards
 * exactly as the first time, so each shard sees the same block and drops it as a repeat
 * (the worker's exactly-once relies on that; see docs/deployment.md).
 */
export const SHARDING_KEYS: Readonly<Record<string, string>> = {
  cost_metrics_ts: 'cityHash64(customer_id)',
  cost_metrics_hourly: 'cityHash64(customer_id)',
  performance_metrics_ts: 'cityHash64(customer_id)',
  performance_metrics_hourly: 'cityHash64(customer_id)',
  resource_metrics_ts: 'cityHash64(customer_id)',
  resource_metrics_hourly: 'cityHash64(customer_id)',
  quality_metrics_ts: 'cityHash64(customer_id)',
  quality_metrics_hourly: 'cityHash64(customer_id)',
  evolution_run_events: 'cityHash64(run_id)',
  evolution_run_updates: 'cityHash64(run_id)',
  generations: 'cityHash64(run_id)',
  individuals: 'cityHash64(run_id)',
  pareto_fronts: 'cityHash64(run_id)',
  code_lineages: 'cityHash64(run_id)',
  // The log tables are read by model / action type and time, not by run: spread them evenly
  // by their own id (a UUID), still deterministic per row.
  llm_logs: 'cityHash64(id)',
  agent_actions: 'cityHash64(id)',
};

/** Setting the inserter must send with every insert into a Distributed table (sharded layout). */
export const DISTRIBUTED_INSERT_SETTINGS: Readonly<Record<string, number>> = {
  // Synchronous: the insert returns only when every shard has its rows, so the offset commit
  // that follows the acknowledgement never covers rows still queued on the initiator's disk.
  // Formerly insert_distributed_sync (still accepted as an alias).
  distributed_foreground_insert: 1,
};

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The layout for a `clickhouse` config section (`cluster`, `sharding`, `database`). */
export function layoutOf(ch: { cluster?: string | undefined; sharding?: boolean | undefined; database: string }): TableLayout {
  if (!ch.cluster) {
    if (ch.sharding) throw new DdlError('CLICKHOUSE_SHARDING=true needs CLICKHOUSE_CLUSTER (the cluster the Distributed tables span)');
    return { kind: 'single', database: ch.database };
  }
  if (!IDENT.test(ch.cluster)) throw new DdlError(`CLICKHOUSE_CLUSTER must be a plain identifier, got ${JSON.stringify(ch.cluster)}`);
  return { kind: ch.sharding ? 'sharded' : 'replicated', cluster: ch.cluster, database: ch.database };
}

/** Name of the table holding a table's rows: `t_local` in the sharded layout, else `t`. */
export function storageName(table: string, layout: TableLayout): string {
  return layout.kind === 'sharded' && table in SHARDING_KEYS ? `${table}_local` : table;
}

const onCluster = (layout: TableLayout) => (layout.kind === 'single' ? '' : ` ON CLUSTER ${layout.cluster}`);

/**
 * The engine clause for `engine` (e.g. `MergeTree`, `ReplacingMergeTree(applied_at)`) in a layout.
 * `keeperPath` overrides the Keeper path: the runner's own tables use one path without `{shard}`,
 * so a sharded cluster has one migration history and one lock, not one per shard.
 */
export function engineFor(engine: string, layout: TableLayout, keeperPath = "'/clickhouse/tables/{shard}/{database}/{table}'"): string {
  const m = /^([A-Za-z]+)\s*(?:\((.*)\))?$/s.exec(engine.trim());
  if (!m) throw new DdlError(`cannot parse engine ${JSON.stringify(engine)}`);
  const [, name, args] = m as unknown as [string, string, string | undefined];
  if (layout.kind === 'single' || !name.endsWith('MergeTree')) return engine.trim();
  if (name.startsWith('Replicated') || name.startsWith('Shared')) throw new DdlError(`migrations are written with plain engines; got ${name}`);
  const replicated = [keeperPath, "'{replica}'", ...(args?.trim() ? [args.trim()] : [])].join(', ');
  return `Replicated${name}(${replicated})`;
}

const CREATE_TABLE = /^CREATE TABLE IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*)(\s*\([\s\S]*?\)\s*)ENGINE\s*=\s*([A-Za-z]+(?:\([^)]*\))?)([\s\S]*)$/;
const CREATE_MV = /^CREATE MATERIALIZED VIEW IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*) TO ([A-Za-z_][A-Za-z0-9_]*)(\s+AS\s+[\s\S]*)$/;
const CREATE_VIEW = /^CREATE (OR REPLACE VIEW|VIEW IF NOT EXISTS) ([A-Za-z_][A-Za-z0-9_]*)(\s+AS\s+[\s\S]*)$/;
const DROP = /^DROP (TABLE|VIEW) IF EXISTS ([A-Za-z_][A-Za-z0-9_]*)$/;
const ALTER = /^ALTER TABLE ([A-Za-z_][A-Za-z0-9_]*) ([\s\S]*)$/;
const INSERT = /^INSERT INTO ([A-Za-z_][A-Za-z0-9_]*)\b([\s\S]*)$/;

/**
 * One migration statement in a layout: one or more statements to run in order. Throws DdlError
 * for a statement form it does not know (in the cluster layouts; `single` returns it as is).
 */
export function renderStatement(sql: string, layout: TableLayout): string[] {
  const s = sql.trim();
  if (layout.kind === 'single') return [s];
  const oc = onCluster(layout);
  let m: RegExpExecArray | null;
  if ((m = CREATE_TABLE.exec(s))) {
    const [, table, columns, engine, rest] = m as unknown as [string, string, string, string, string];
    const body = `${columns}ENGINE = ${engineFor(engine, layout)}${rest}`;
    if (layout.kind === 'replicated') return [`CREATE TABLE IF NOT EXISTS ${table}${oc}${body}`];
    const key = SHARDING_KEYS[table];
    if (!key) throw new DdlError(`table ${table} has no sharding key: add it to SHARDING_KEYS in sql/ddl.ts (and docs/deployment.md)`);
    const local = `${table}_local`;
    return [
      `CREATE TABLE IF NOT EXISTS ${local}${oc}${body}`,
      `CREATE TABLE IF NOT EXISTS ${table}${oc} AS ${local}\nENGINE = Distributed(${layout.cluster}, ${layout.database}, ${local}, ${key})`,
    ];
  }
  if ((m = CREATE_MV.exec(s))) {
    const [, view, target, select] = m as unknown as [string, string, string, string];
    // A view fires on inserts into the table its FROM names, on the host that stores them:
    // in the sharded layout that is each shard's local table, and it writes the local rollup.
    const body = layout.kind === 'sharded' ? select.replace(/\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)/g, (all, t: string) => (t in SHARDING_KEYS ? `FROM ${t}_local` : all)) : select;
    return [`CREATE MATERIALIZED VIEW IF NOT EXISTS ${view}${oc} TO ${storageName(target, layout)}${body}`];
  }
  if ((m = CREATE_VIEW.exec(s))) {
    const [, form, view, select] = m as unknown as [string, string, string, string];
    return [`CREATE ${form} ${view}${oc}${select}`];
  }
  if ((m = DROP.exec(s))) {
    const [, kind, name] = m as unknown as [string, string, string];
    const names = kind === 'TABLE' && layout.kind === 'sharded' && name in SHARDING_KEYS ? [name, `${name}_local`] : [name];
    return names.map((n) => `DROP ${kind} IF EXISTS ${n}${oc} SYNC`);
  }
  if ((m = ALTER.exec(s))) {
    // TTL and MergeTree settings belong to the table that stores the rows.
    const [, table, action] = m as unknown as [string, string, string];
    return [`ALTER TABLE ${storageName(table, layout)}${oc} ${action}`];
  }
  if ((m = INSERT.exec(s))) {
    // An INSERT ... SELECT runs once, on the host we are connected to: replication (or the
    // Distributed table) carries the rows to the others. A subquery over a Distributed table
    // inside a query over another must be GLOBAL (distributed_product_mode = deny).
    return [layout.kind === 'sharded' ? s.replace(/\bNOT IN\s*\(/g, 'GLOBAL NOT IN (') : s];
  }
  throw new DdlError(`sql/ddl.ts cannot render this statement for a cluster; extend renderStatement:\n${s}`);
}
