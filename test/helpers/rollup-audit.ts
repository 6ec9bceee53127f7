import type { ClickHouseClient } from '@clickhouse/client';

/**
 * What an hourly rollup must agree on with its raw table: the group keys of the materialized
 * view, its count state, and the sums it keeps (rollup column → raw column). Averages and
 * maxima follow from the same rows; counts and sums are what a lost or doubled block changes.
 */
interface RollupShape {
  readonly rollup: string;
  readonly keys: readonly string[];
  readonly count: string;
  readonly sums: Readonly<Record<string, string>>;
}

/** The four rollups of sql/migrations/0001-0004, by raw table. */
export const ROLLUPS: Readonly<Record<string, RollupShape>> = {
  cost_metrics_ts: {
    rollup: 'cost_metrics_hourly',
    keys: ['customer_id', 'cloud_provider', 'service_name', 'region', 'instance_type'],
    count: 'samples',
    sums: { total_cost: 'cost_per_hour' },
  },
  performance_metrics_ts: {
    rollup: 'performance_metrics_hourly',
    keys: ['customer_id', 'service_id', 'service_type', 'model_name'],
    count: 'requests',
    sums: { total_prompt_tokens: 'prompt_tokens', total_completion_tokens: 'completion_tokens', total_tokens: 'total_tokens' },
  },
  resource_metrics_ts: {
    rollup: 'resource_metrics_hourly',
    keys: ['customer_id', 'instance_id', 'instance_type'],
    count: 'samples',
    sums: {},
  },
  quality_metrics_ts: {
    rollup: 'quality_metrics_hourly',
    keys: ['customer_id', 'service_id', 'model_name'],
    count: 'requests',
    sums: { hallucinations: 'hallucination_detected' },
  },
};

/** One hour bucket (and group) where the rollup and the raw rows disagree. */
export interface RollupMismatch {
  hour: string;
  key: Record<string, string>;
  raw: { rows: number; sums: Record<string, number> };
  rollup: { rows: number; sums: Record<string, number> };
}

export interface RollupAudit {
  ok: boolean;
  /** Hour buckets (with their group keys) found in either table. */
  groups: number;
  /** Rows of the raw table and the rollup's merged count over all groups. */
  rawRows: number;
  rollupRows: number;
  mismatches: RollupMismatch[];
}

/**
 * Compares an hourly rollup with its raw table, bucket by bucket: the same hours and group keys,
 * the same number of rows (the rollup's merged count state) and the same sums (floating-point
 * sums to 1e-9 relative). A block lost by the rollup shows as a bucket short of rows, a block
 * counted twice as one with too many. Reads through the client's current database; in the
 * sharded layout the Distributed names cover every shard. One query, no settings (the embedded
 * engine would keep them for the session). `maxMismatches` (default 100) caps the buckets
 * returned; `ok` and the totals always cover all of them. Throws for a table without a rollup.
 */
export async function auditRollup(client: ClickHouseClient, rawTable: string, opts: { maxMismatches?: number } = {}): Promise<RollupAudit> {
  const shape = ROLLUPS[rawTable];
  if (!shape) throw new Error(`${rawTable} has no hourly rollup; known: ${Object.keys(ROLLUPS).join(', ')}`);
  const sums = Object.entries(shape.sums);
  const keys = shape.keys.join(', ');
  const rawSide = [`'raw' AS side, toDateTime(toStartOfHour(timestamp), 'UTC') AS hour, ${keys}, toUInt64(count()) AS n`, ...sums.map(([, col], i) => `toFloat64(sum(${col})) AS s${i}`)].join(', ');
  const rollupSide = [`'rollup' AS side, hour, ${keys}, toUInt64(countMerge(${shape.count})) AS n`, ...sums.map(([agg], i) => `toFloat64(sumMerge(${agg})) AS s${i}`)].join(', ');
  const pick = (side: string) => [`sumIf(n, side = '${side}') AS ${side}_n`, ...sums.map((_, i) => `sumIf(s${i}, side = '${side}') AS ${side}_s${i}`)].join(', ');
  const differs = ['raw_n != rollup_n', ...sums.map((_, i) => `abs(raw_s${i} - rollup_s${i}) > 1e-9 * greatest(abs(raw_s${i}), abs(rollup_s${i}), 1)`)].join(' OR ');
  const grouped = `
    SELECT hour, ${keys}, ${pick('raw')}, ${pick('rollup')}
    FROM (
      SELECT ${rawSide} FROM ${rawTable} GROUP BY hour, ${keys}
      UNION ALL
      SELECT ${rollupSide} FROM ${shape.rollup} GROUP BY hour, ${keys}
    )
    GROUP BY hour, ${keys}`;
  // A mismatching bucket travels as an array of strings, in the order of `names`.
  const names = ['hour', ...shape.keys, 'raw_n', ...sums.map((_, i) => `raw_s${i}`), 'rollup_n', ...sums.map((_, i) => `rollup_s${i}`)];
  const query = `
    SELECT toString(count()) AS groups, toString(sum(raw_n)) AS raw_rows, toString(sum(rollup_n)) AS rollup_rows,
           toString(countIf(${differs})) AS bad_groups,
           groupArrayIf(${Math.max(1, Math.floor(opts.maxMismatches ?? 100))})([${names.map((n) => `toString(${n})`).join(', ')}], ${differs}) AS bad
    FROM (${grouped})`;
  const rs = await client.query({ query, format: 'JSONEachRow' });
  const [row] = await rs.json<{ groups: string; raw_rows: string; rollup_rows: string; bad_groups: string; bad: string[][] }>();
  const mismatches = row!.bad.map((values): RollupMismatch => {
    const v = Object.fromEntries(names.map((n, i) => [n, values[i]]));
    const sumsOf = (side: string) => Object.fromEntries(sums.map(([agg], i) => [agg, Number(v[`${side}_s${i}`])]));
    return {
      hour: String(v.hour),
      key: Object.fromEntries(shape.keys.map((k) => [k, String(v[k])])),
      raw: { rows: Number(v.raw_n), sums: sumsOf('raw') },
      rollup: { rows: Number(v.rollup_n), sums: sumsOf('rollup') },
    };
  });
  return { ok: Number(row!.bad_groups) === 0, groups: Number(row!.groups), rawRows: Number(row!.raw_rows), rollupRows: Number(row!.rollup_rows), mismatches };
}
