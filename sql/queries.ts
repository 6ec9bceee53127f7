import type { ClickHouseClient } from '@clickhouse/client';

/**
 * Typed query helpers mirroring the seed documents' Python helpers and key queries.
 * Every value reaches ClickHouse as a bound `{name:Type}` query parameter, never as SQL text.
 * Inputs are validated first; a bad input throws QueryInputError naming the parameter.
 *
 * Metrics helpers read the hourly rollups (`*_metrics_hourly`) with `-Merge` combinators, so a
 * window of N hours covers whole hours: from the start of the hour N hours ago up to now.
 */

export class QueryInputError extends Error {
  override readonly name = 'QueryInputError';
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Hours accepted by the windowed helpers: up to ten years. */
const MAX_HOURS = 24 * 366 * 10;

export type TimeInput = Date | string | number;

function uuid(name: string, value: unknown): string {
  if (typeof value !== 'string' || !UUID_RE.test(value)) throw new QueryInputError(`${name} must be a UUID, got ${show(value)}`);
  return value;
}

function id(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) throw new QueryInputError(`${name} must be a non-empty string of at most 512 characters, got ${show(value)}`);
  return value;
}

function hoursToSeconds(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_HOURS) {
    throw new QueryInputError(`hours must be a finite number greater than 0 and at most ${MAX_HOURS}, got ${show(value)}`);
  }
  return Math.max(1, Math.round(value * 3600));
}

function epochMs(name: string, value: unknown): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new QueryInputError(`${name} must be a Date, an ISO time or epoch milliseconds at or after 1970, got ${show(value)}`);
  return Math.round(ms);
}

function positiveInt(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) throw new QueryInputError(`${name} must be a whole number from 1 to ${max}, got ${show(value)}`);
  return value;
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Date) return `Date(${value.toString()})`;
  return String(value);
}

async function rows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  const result = await client.query({
    query,
    query_params: params,
    format: 'JSONEachRow',
    // Counts are UInt64: return them as JSON numbers (exact below 2^53), not strings.
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  return result.json<T>();
}

// ---------------------------------------------------------------- infra metrics

export interface CostHourlyRow {
  hour: string;
  total_cost: number;
  avg_utilization: number;
  max_utilization: number;
  samples: number;
  instances: number;
}

/** Hourly cost of one customer between `start` and `end` (the hour containing `start` included). */
export async function queryCostHourly(client: ClickHouseClient, opts: { customerId: string; start: TimeInput; end: TimeInput }): Promise<CostHourlyRow[]> {
  const customerId = uuid('customerId', opts.customerId);
  const startMs = epochMs('start', opts.start);
  const endMs = epochMs('end', opts.end);
  if (endMs < startMs) throw new QueryInputError('end must not be before start');
  return rows<CostHourlyRow>(
    client,
    `SELECT
        hour,
        sumMerge(total_cost) AS total_cost,
        avgMerge(avg_utilization) AS avg_utilization,
        maxMerge(max_utilization) AS max_utilization,
        countMerge(samples) AS samples,
        uniqMerge(instances) AS instances
     FROM cost_metrics_hourly
     WHERE customer_id = {customerId:UUID}
       AND hour >= toStartOfHour(fromUnixTimestamp64Milli({startMs:Int64}, 'UTC'))
       AND hour <= fromUnixTimestamp64Milli({endMs:Int64}, 'UTC')
     GROUP BY hour
     ORDER BY hour`,
    { customerId, startMs, endMs },
  );
}

const WINDOW = `hour >= toStartOfHour(now64(3, 'UTC') - toIntervalSecond({seconds:UInt32}))`;

export interface PerformanceStats {
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
  p99_latency_ms: number | null;
  avg_latency_ms: number | null;
  max_latency_ms: number | null;
  total_requests: number;
  total_tokens: number;
  avg_throughput_tokens_per_sec: number | null;
}

/**
 * Latency percentiles of one service over the last `hours`, merged from the hourly t-digest
 * states (percentiles of all the window's requests, not averages of hourly percentiles).
 * Latency fields are null when the window has no requests.
 */
export async function queryPerformanceP95(client: ClickHouseClient, opts: { customerId: string; serviceId: string; hours: number }): Promise<PerformanceStats> {
  const params = { customerId: uuid('customerId', opts.customerId), serviceId: uuid('serviceId', opts.serviceId), seconds: hoursToSeconds(opts.hours) };
  const [row] = await rows<{ q: Array<number | null>; avg_latency_ms: number | null; max_latency_ms: number | null; total_requests: number; total_tokens: number; avg_tp: number | null }>(
    client,
    `SELECT
        quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_quantiles) AS q,
        avgMerge(avg_latency_ms) AS avg_latency_ms,
        maxMerge(max_latency_ms) AS max_latency_ms,
        countMerge(requests) AS total_requests,
        sumMerge(total_tokens) AS total_tokens,
        avgMerge(avg_throughput) AS avg_tp
     FROM performance_metrics_hourly
     WHERE customer_id = {customerId:UUID} AND service_id = {serviceId:UUID} AND ${WINDOW}`,
    params,
  );
  const empty = !row || row.total_requests === 0;
  return {
    p50_latency_ms: empty ? null : (row.q[0] ?? null),
    p95_latency_ms: empty ? null : (row.q[1] ?? null),
    p99_latency_ms: empty ? null : (row.q[2] ?? null),
    avg_latency_ms: empty ? null : row.avg_latency_ms,
    max_latency_ms: empty ? null : row.max_latency_ms,
    total_requests: row?.total_requests ?? 0,
    total_tokens: row?.total_tokens ?? 0,
    avg_throughput_tokens_per_sec: empty ? null : row.avg_tp,
  };
}

export interface ResourceUtilization {
  avg_gpu_utilization: number | null;
  max_gpu_utilization: number | null;
  avg_gpu_memory_used_mb: number | null;
  max_gpu_memory_used_mb: number | null;
  max_gpu_temperature: number | null;
  avg_cpu_utilization: number | null;
  max_cpu_utilization: number | null;
  avg_memory_used_gb: number | null;
  samples: number;
}

/** Utilization of one instance (all its GPUs) over the last `hours`; null fields when there are no samples. */
export async function queryResourceUtilization(client: ClickHouseClient, opts: { customerId: string; instanceId: string; hours: number }): Promise<ResourceUtilization> {
  const params = { customerId: uuid('customerId', opts.customerId), instanceId: id('instanceId', opts.instanceId), seconds: hoursToSeconds(opts.hours) };
  const [row] = await rows<ResourceUtilization>(
    client,
    `SELECT
        avgMerge(avg_gpu_utilization) AS avg_gpu_utilization,
        maxMerge(max_gpu_utilization) AS max_gpu_utilization,
        avgMerge(avg_gpu_memory_used_mb) AS avg_gpu_memory_used_mb,
        maxMerge(max_gpu_memory_used_mb) AS max_gpu_memory_used_mb,
        maxMerge(max_gpu_temperature) AS max_gpu_temperature,
        avgMerge(avg_cpu_utilization) AS avg_cpu_utilization,
        maxMerge(max_cpu_utilization) AS max_cpu_utilization,
        avgMerge(avg_memory_used_gb) AS avg_memory_used_gb,
        countMerge(samples) AS samples
     FROM resource_metrics_hourly
     WHERE customer_id = {customerId:UUID} AND instance_id = {instanceId:String} AND ${WINDOW}`,
    params,
  );
  if (!row || row.samples === 0) {
    return { avg_gpu_utilization: null, max_gpu_utilization: null, avg_gpu_memory_used_mb: null, max_gpu_memory_used_mb: null, max_gpu_temperature: null, avg_cpu_utilization: null, max_cpu_utilization: null, avg_memory_used_gb: null, samples: 0 };
  }
  return row;
}

export interface QualityTrendRow {
  hour: string;
  avg_quality: number;
  min_quality: number;
  avg_relevance: number;
  avg_coherence: number;
  avg_factuality: number;
  max_toxicity: number;
  hallucinations: number;
  requests: number;
}

/** Per-hour quality of one service over the last `hours`, oldest hour first. */
export async function queryQualityTrends(client: ClickHouseClient, opts: { customerId: string; serviceId: string; hours: number }): Promise<QualityTrendRow[]> {
  const params = { customerId: uuid('customerId', opts.customerId), serviceId: uuid('serviceId', opts.serviceId), seconds: hoursToSeconds(opts.hours) };
  return rows<QualityTrendRow>(
    client,
    `SELECT
        hour,
        avgMerge(avg_quality) AS avg_quality,
        minMerge(min_quality) AS min_quality,
        avgMerge(avg_relevance) AS avg_relevance,
        avgMerge(avg_coherence) AS avg_coherence,
        avgMerge(avg_factuality) AS avg_factuality,
        maxMerge(max_toxicity) AS max_toxicity,
        sumMerge(hallucinations) AS hallucinations,
        countMerge(requests) AS requests
     FROM quality_metrics_hourly
     WHERE customer_id = {customerId:UUID} AND service_id = {serviceId:UUID} AND ${WINDOW}
     GROUP BY hour
     ORDER BY hour`,
    params,
  );
}

// ---------------------------------------------------------------- evolution

export interface FitnessRow {
  generation: number;
  best_score: number;
  avg_score: number;
  pareto_size: number;
  total_cost: number;
}

/** Best/average score per generation of one run (seed: "Best score per generation"). */
export async function queryFitnessTrajectory(client: ClickHouseClient, runId: string): Promise<FitnessRow[]> {
  return rows<FitnessRow>(
    client,
    `SELECT generation, best_score, avg_score, pareto_size, total_cost
     FROM generations
     WHERE run_id = {runId:String}
     ORDER BY generation`,
    { runId: id('runId', runId) },
  );
}

export interface IndividualRow {
  individual_id: string;
  generation: number;
  fitness_score: number;
  combined_score: number;
  mutation_type: string;
  metrics: string;
}

/** The `limit` fittest individuals of one run (ties broken by individual_id, so the result is stable). */
export async function queryTopIndividuals(client: ClickHouseClient, runId: string, limit = 10): Promise<IndividualRow[]> {
  return rows<IndividualRow>(
    client,
    `SELECT individual_id, generation, fitness_score, combined_score, mutation_type, metrics
     FROM individuals
     WHERE run_id = {runId:String}
     ORDER BY fitness_score DESC, individual_id
     LIMIT {limit:UInt32}`,
    { runId: id('runId', runId), limit: positiveInt('limit', limit, 100_000) },
  );
}

export interface MutationEffectivenessRow {
  mutation_type: string;
  count: number;
  avg_fitness: number;
  max_fitness: number;
}

/** Fitness per mutation type of evolved individuals (generation > 0), best average first. */
export async function queryMutationEffectiveness(client: ClickHouseClient, runId: string): Promise<MutationEffectivenessRow[]> {
  return rows<MutationEffectivenessRow>(
    client,
    `SELECT mutation_type, count() AS count, avg(fitness_score) AS avg_fitness, max(fitness_score) AS max_fitness
     FROM individuals
     WHERE run_id = {runId:String} AND generation > 0
     GROUP BY mutation_type
     ORDER BY avg_fitness DESC, mutation_type`,
    { runId: id('runId', runId) },
  );
}

export interface LineageRow {
  id: string;
  parent_id: string;
  generation: number;
  mutation_type: string;
  fitness_delta: number;
  edit_summary: string;
}

/**
 * Ancestry of one individual back to its root (initial population), oldest first, with a
 * recursive CTE. With `runId`, only that run's edges are followed (individual ids need only be
 * unique within a run). ClickHouse bounds the recursion (max_recursive_cte_evaluation_depth).
 */
export async function queryLineage(client: ClickHouseClient, individualId: string, runId?: string): Promise<LineageRow[]> {
  const params: Record<string, unknown> = { individualId: id('individualId', individualId) };
  if (runId !== undefined) params.runId = id('runId', runId);
  const inRun = runId === undefined ? '' : 'AND run_id = {runId:String}';
  const inRunC = runId === undefined ? '' : 'AND c.run_id = {runId:String}';
  return rows<LineageRow>(
    client,
    `WITH RECURSIVE lineage AS (
        SELECT child_id AS id, parent_id, generation, mutation_type, fitness_delta, edit_summary
        FROM code_lineages
        WHERE child_id = {individualId:String} ${inRun}
        UNION ALL
        SELECT c.child_id, c.parent_id, c.generation, c.mutation_type, c.fitness_delta, c.edit_summary
        FROM code_lineages c
        INNER JOIN lineage l ON c.child_id = l.parent_id
        WHERE 1 ${inRunC}
     )
     SELECT * FROM lineage ORDER BY generation, id`,
    params,
  );
}

export interface ParetoMemberRow {
  generation: number;
  individual_id: string;
  fitness_score: number;
  combined_score: number;
  metrics: string;
}

/** Members of the most recent Pareto frontier snapshot of one run, fittest first. */
export async function queryLatestParetoFront(client: ClickHouseClient, runId: string): Promise<ParetoMemberRow[]> {
  return rows<ParetoMemberRow>(
    client,
    `SELECT generation, individual_id, fitness_score, combined_score, metrics
     FROM pareto_fronts
     WHERE run_id = {runId:String}
       AND generation = (SELECT max(generation) FROM pareto_fronts WHERE run_id = {runId:String})
     ORDER BY fitness_score DESC, individual_id`,
    { runId: id('runId', runId) },
  );
}

export interface LlmCostRow {
  model: string;
  calls: number;
  total_cost: number;
  avg_cost_per_call: number;
  avg_time: number;
  total_time_seconds: number;
}

/** LLM calls and cost per model, optionally within [start, end), most expensive first. */
export async function queryLlmCostByModel(client: ClickHouseClient, opts: { start?: TimeInput; end?: TimeInput } = {}): Promise<LlmCostRow[]> {
  const startMs = opts.start === undefined ? null : epochMs('start', opts.start);
  const endMs = opts.end === undefined ? null : epochMs('end', opts.end);
  if (startMs !== null && endMs !== null && endMs < startMs) throw new QueryInputError('end must not be before start');
  return rows<LlmCostRow>(
    client,
    `SELECT
        model,
        count() AS calls,
        sum(cost) AS total_cost,
        avg(cost) AS avg_cost_per_call,
        avg(execution_time) AS avg_time,
        sum(execution_time) AS total_time_seconds
     FROM llm_logs
     WHERE ({startMs:Nullable(Int64)} IS NULL OR timestamp >= fromUnixTimestamp64Milli(assumeNotNull({startMs:Nullable(Int64)}), 'UTC'))
       AND ({endMs:Nullable(Int64)} IS NULL OR timestamp < fromUnixTimestamp64Milli(assumeNotNull({endMs:Nullable(Int64)}), 'UTC'))
     GROUP BY model
     ORDER BY total_cost DESC, model`,
    { startMs, endMs },
  );
}

export interface CostBreakdown {
  total_mutation_cost: number;
  total_embedding_cost: number;
  total_novelty_cost: number;
  total_cost: number;
}

/** Cost of one run by component (seed: "Cost breakdown by component"). Zeros for an unknown run. */
export async function queryCostBreakdown(client: ClickHouseClient, runId: string): Promise<CostBreakdown> {
  const [row] = await rows<CostBreakdown>(
    client,
    `SELECT
        sum(api_cost) AS total_mutation_cost,
        sum(embed_cost) AS total_embedding_cost,
        sum(novelty_cost) AS total_novelty_cost,
        sum(api_cost + embed_cost + novelty_cost) AS total_cost
     FROM individuals
     WHERE run_id = {runId:String}`,
    { runId: id('runId', runId) },
  );
  return row ?? { total_mutation_cost: 0, total_embedding_cost: 0, total_novelty_cost: 0, total_cost: 0 };
}
