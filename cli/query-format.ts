/**
 * How query results are shown: tables for reading (numbers rounded, timestamps ISO 8601, no
 * index column) and JSON for programs (every number at full precision, timestamps ISO 8601).
 */

/** Significant digits a table shows for a fractional number: enough for costs and scores, no float noise. */
const SIGNIFICANT = 6;

/** `0.7849999999999999` → `0.785`, `27.000000000000004` → `27`; whole numbers stay exact. */
export function readableNumber(n: number): string {
  if (!Number.isFinite(n) || Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(SIGNIFICANT)));
}

const CH_TIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/;

/** ClickHouse DateTime text of a UTC column (`2026-12-01 10:00:00.000`) as ISO 8601 (`2026-12-01T10:00:00.000Z`); anything else unchanged. */
export function isoTime(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const m = CH_TIME.exec(value);
  return m ? `${m[1]}T${m[2]}Z` : value;
}

/** The result with `timeColumns` of every row in ISO 8601. Our tables store UTC (DateTime64(3, 'UTC')), which ClickHouse prints without a zone. */
export function withIsoTimes(result: unknown, timeColumns: readonly string[] = []): unknown {
  if (timeColumns.length === 0) return result;
  const fix = (row: unknown) => {
    if (typeof row !== 'object' || row === null) return row;
    const out: Record<string, unknown> = { ...(row as Record<string, unknown>) };
    for (const c of timeColumns) if (c in out) out[c] = isoTime(out[c]);
    return out;
  };
  return Array.isArray(result) ? result.map(fix) : fix(result);
}

function cell(v: unknown): string {
  if (typeof v === 'number') return readableNumber(v);
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/**
 * Rows (or one object) as an aligned text table: a header, a rule, one line per row. Numbers
 * are rounded for reading and right-aligned; there is no index column.
 */
export function formatTable(result: unknown): string {
  const rows = (Array.isArray(result) ? result : [result]) as Array<Record<string, unknown>>;
  if (rows.length === 0) return '(no rows)';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const numeric = cols.map((c) => rows.every((r) => typeof r[c] === 'number' || r[c] === null || r[c] === undefined) && rows.some((r) => typeof r[c] === 'number'));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** JSON for programs: numbers exactly as ClickHouse returned them. */
export function formatJson(result: unknown): string {
  return JSON.stringify(result, null, 2);
}
