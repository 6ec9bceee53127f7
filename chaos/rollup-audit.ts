/**
 * The hourly rollup against the raw table: for every hour bucket, the rollup's merged count and
 * sum (cost_metrics_hourly: countMerge(samples), sumMerge(total_cost)) must equal what the raw
 * table holds (cost_metrics_ts: count(), sum(cost_per_hour)). A row inserted twice into the
 * rollup (a repeated insert ClickHouse dropped from the raw table but not from the view's
 * target) shows as a larger count; a row missing from it as a smaller one.
 *
 * `query` runs SQL where the rows are (the fault suite: the worker child's IPC query, the same
 * way it counts rows). Counts must match exactly; sums within 1e-9 relative (floating-point
 * addition in another order).
 */
export interface RollupMismatch {
  hour: string;
  rawRows: number;
  rollupRows: number;
  rawSum: number;
  rollupSum: number;
}

export interface RollupAudit {
  hours: number;
  rawRows: number;
  rollupRows: number;
  mismatches: RollupMismatch[];
}

type Query = <T>(sql: string) => Promise<T[]>;

export async function auditRollup(query: Query): Promise<RollupAudit> {
  const [raw, rollup] = await Promise.all([
    query<{ hour: string; n: string; s: number }>('SELECT toString(toStartOfHour(timestamp)) AS hour, count() AS n, sum(cost_per_hour) AS s FROM cost_metrics_ts GROUP BY hour ORDER BY hour'),
    query<{ hour: string; n: string; s: number }>('SELECT toString(hour) AS hour, countMerge(samples) AS n, sumMerge(total_cost) AS s FROM cost_metrics_hourly GROUP BY hour ORDER BY hour'),
  ]);
  const byHour = new Map<string, RollupMismatch>();
  const at = (hour: string) => {
    let m = byHour.get(hour);
    if (!m) byHour.set(hour, (m = { hour, rawRows: 0, rollupRows: 0, rawSum: 0, rollupSum: 0 }));
    return m;
  };
  for (const r of raw) Object.assign(at(r.hour), { rawRows: Number(r.n), rawSum: Number(r.s) });
  for (const r of rollup) Object.assign(at(r.hour), { rollupRows: Number(r.n), rollupSum: Number(r.s) });
  const all = [...byHour.values()];
  const sumsDiffer = (a: number, b: number) => Math.abs(a - b) > 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return {
    hours: all.length,
    rawRows: all.reduce((n, m) => n + m.rawRows, 0),
    rollupRows: all.reduce((n, m) => n + m.rollupRows, 0),
    mismatches: all.filter((m) => m.rawRows !== m.rollupRows || sumsDiffer(m.rawSum, m.rollupSum)),
  };
}
