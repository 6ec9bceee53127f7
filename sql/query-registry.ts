import type { ClickHouseClient } from '@clickhouse/client';
import * as q from './queries.js';

/**
 * The named query helpers: the only queries `npm run query` and the worker's read-only query
 * endpoint (consumers/query-endpoint.ts) run. A caller names a helper and passes string
 * parameters (CLI flags, URL query parameters); this module checks the names, converts the
 * values, and the helper of sql/queries.ts validates them and binds them as `{name:Type}`
 * query parameters. No SQL text ever comes from the caller.
 *
 * Throws QueryInputError (from sql/queries.ts) for an unknown helper, an unknown, repeated or
 * missing parameter, or a bad value, before any query runs.
 */

export type QueryParams = Readonly<Record<string, string>>;

export interface NamedQuery {
  summary: string;
  /** Parameter names (kebab-case, as CLI flags and URL parameters). */
  required: readonly string[];
  optional?: readonly string[];
  /** Result columns holding ClickHouse DateTime text (UTC); output shows them as ISO 8601. */
  timeColumns?: readonly string[];
  run(client: ClickHouseClient, p: QueryParams): Promise<unknown>;
}

export class UnknownQueryError extends q.QueryInputError {}

const num = (name: string, value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new q.QueryInputError(`${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
};

export const NAMED_QUERIES: Readonly<Record<string, NamedQuery>> = {
  'cost-hourly': {
    summary: 'hourly cost of a customer between --start and --end (ISO times)',
    required: ['customer-id', 'start', 'end'],
    timeColumns: ['hour'],
    run: (c, p) => q.queryCostHourly(c, { customerId: p['customer-id']!, start: p.start!, end: p.end! }),
  },
  'performance-p95': {
    summary: 'p50/p95/p99 latency of a service over the last --hours',
    required: ['customer-id', 'service-id', 'hours'],
    run: (c, p) => q.queryPerformanceP95(c, { customerId: p['customer-id']!, serviceId: p['service-id']!, hours: num('hours', p.hours!) }),
  },
  'resource-utilization': {
    summary: 'GPU/CPU utilization of an instance over the last --hours',
    required: ['customer-id', 'instance-id', 'hours'],
    run: (c, p) => q.queryResourceUtilization(c, { customerId: p['customer-id']!, instanceId: p['instance-id']!, hours: num('hours', p.hours!) }),
  },
  'quality-trends': {
    summary: 'hourly quality and hallucinations of a service over the last --hours',
    required: ['customer-id', 'service-id', 'hours'],
    timeColumns: ['hour'],
    run: (c, p) => q.queryQualityTrends(c, { customerId: p['customer-id']!, serviceId: p['service-id']!, hours: num('hours', p.hours!) }),
  },
  'fitness-trajectory': {
    summary: 'best/average score per generation of a run',
    required: ['run-id'],
    run: (c, p) => q.queryFitnessTrajectory(c, p['run-id']!),
  },
  'top-individuals': {
    summary: 'fittest individuals of a run (--limit, default 10)',
    required: ['run-id'],
    optional: ['limit'],
    run: (c, p) => q.queryTopIndividuals(c, p['run-id']!, p.limit === undefined ? 10 : num('limit', p.limit)),
  },
  'mutation-effectiveness': {
    summary: 'fitness per mutation type of a run',
    required: ['run-id'],
    run: (c, p) => q.queryMutationEffectiveness(c, p['run-id']!),
  },
  lineage: {
    summary: 'ancestry of an individual back to its root (optionally within --run-id)',
    required: ['individual-id'],
    optional: ['run-id'],
    run: (c, p) => q.queryLineage(c, p['individual-id']!, p['run-id']),
  },
  'latest-pareto-front': {
    summary: 'members of the latest Pareto frontier of a run',
    required: ['run-id'],
    run: (c, p) => q.queryLatestParetoFront(c, p['run-id']!),
  },
  'llm-cost-by-model': {
    summary: 'LLM calls and cost per model (optionally between --start and --end)',
    required: [],
    optional: ['start', 'end'],
    run: (c, p) => q.queryLlmCostByModel(c, { start: p.start, end: p.end }),
  },
  'cost-breakdown': {
    summary: 'cost of a run by component',
    required: ['run-id'],
    run: (c, p) => q.queryCostBreakdown(c, p['run-id']!),
  },
};

/** The helper called `name`; throws UnknownQueryError naming the known ones. */
export function namedQuery(name: string): NamedQuery {
  const spec = Object.hasOwn(NAMED_QUERIES, name) ? NAMED_QUERIES[name] : undefined;
  if (!spec) throw new UnknownQueryError(`unknown helper ${JSON.stringify(name)} (known: ${Object.keys(NAMED_QUERIES).join(', ')})`);
  return spec;
}

/** Checks parameter names against the helper: every required one present, nothing unknown. */
export function checkParams(name: string, params: QueryParams): void {
  const spec = namedQuery(name);
  const allowed = new Set([...spec.required, ...(spec.optional ?? [])]);
  for (const key of Object.keys(params)) {
    if (!allowed.has(key)) throw new q.QueryInputError(`unknown parameter ${key} for ${name} (allowed: ${[...allowed].join(', ') || 'none'})`);
  }
  for (const r of spec.required) if (params[r] === undefined) throw new q.QueryInputError(`${name} needs ${r}`);
}

/** Runs one named helper with checked parameters. Errors of the query itself propagate as they are. */
export async function runNamedQuery(client: ClickHouseClient, name: string, params: QueryParams): Promise<unknown> {
  checkParams(name, params);
  return namedQuery(name).run(client, params);
}
