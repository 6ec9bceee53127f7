import { expect } from 'vitest';

/**
 * Row comparison for query results: numbers within a relative 1e-9 (sums in another order),
 * numeric strings (UInt64 in JSON) compared as numbers, everything else exactly.
 */
export function close(actual: unknown, expected: unknown): boolean {
  if (typeof expected === 'number') {
    const a = typeof actual === 'string' && actual.trim() !== '' ? Number(actual) : actual;
    if (typeof a !== 'number') return false;
    if (Number.isNaN(expected)) return Number.isNaN(a);
    return Math.abs(a - expected) <= 1e-9 * Math.max(1, Math.abs(expected));
  }
  if (Array.isArray(expected)) return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => close(actual[i], e));
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object') return false;
    const keys = Object.keys(expected);
    return keys.length === Object.keys(actual).length && keys.every((k) => close((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k]));
  }
  return actual === expected;
}

function take(pool: Record<string, unknown>[], row: Record<string, unknown>, what: string): void {
  const i = pool.findIndex((e) => close(row, e));
  if (i < 0) expect.fail(`${what}: unexpected row ${JSON.stringify(row)}\nexpected one of ${JSON.stringify(pool.slice(0, 5))}${pool.length > 5 ? ' …' : ''}`);
  pool.splice(i, 1);
}

/** Same rows in any order. */
export function expectSameRows(actual: Record<string, unknown>[], expected: Record<string, unknown>[], what: string): void {
  expect(actual.length, `${what}: row count (got ${JSON.stringify(actual.slice(0, 3))}…)`).toBe(expected.length);
  const pool = [...expected];
  for (const row of actual) take(pool, row, what);
}

/**
 * Rows in ORDER BY order, where rows with equal sort keys may come in any order and LIMIT may cut
 * a group of equal keys anywhere: the i-th row must have the i-th expected sort key and be one of
 * the expected rows with that key.
 */
export function expectOrderedRows(
  actual: Record<string, unknown>[],
  expected: Record<string, unknown>[],
  sortKey: (r: Record<string, unknown>) => unknown[],
  what: string,
  limit?: number,
): void {
  const n = Math.min(limit ?? Infinity, expected.length);
  expect(actual.length, `${what}: row count`).toBe(n);
  const sorted = expected.map((r, i) => ({ r, i, k: sortKey(r) }));
  const pool = [...expected];
  for (let i = 0; i < n; i++) {
    const want = sorted[i]!.k;
    const got = sortKey(actual[i]!);
    if (!close(got, want)) expect.fail(`${what}: row ${i} has sort key ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    take(pool, actual[i]!, what);
  }
}
