import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../lib/clickhouse.js';
import { EvolutionLogger } from '@kafka-clickhouse-ingest/producer';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { performanceMetrics } from '@kafka-clickhouse-ingest/producer/schemas/performance-metrics.js';
import { qualityMetrics } from '@kafka-clickhouse-ingest/producer/schemas/quality-metrics.js';
import { resourceMetrics } from '@kafka-clickhouse-ingest/producer/schemas/resource-metrics.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { migrate, MigrationError, readMigrations } from '../../sql/migrate.js';
import * as q from '../../sql/queries.js';
import { applyRetention, RetentionError } from '../../sql/retention.js';
import { CapturingSink, chTime, toRow } from '../fixtures/rows.js';
import { buildEvolutionDataset, buildMetricsDataset, type EvolutionDataset, type Individual, type MetricsDataset } from '../fixtures/seed-dataset.js';
import { expectOrderedRows, expectSameRows } from '../helpers/compare-rows.js';
import { specStatements } from '../helpers/spec-queries.js';

/**
 * Runs every SQL example of the specification (its documents evolution-tables.md and
 * metrics-tables.md; the statements are copied into test/fixtures/spec-queries.sql, checked
 * against the documents by test/unit/spec-queries.test.ts) against a freshly migrated chDB with
 * a fixture data set, and checks each result against the same query computed in TypeScript from
 * the fixture. Only the placeholder ids are replaced.
 */

const DB = 'ingest';
type Row = Record<string, unknown>;

/** The ```sql statements of one specification document, each keyed by its leading `-- title` (#n for repeats). */
const seedSqlQueries = (doc: string) => specStatements(doc, 'sql');
/** The `--query="..."` examples inside the metrics document's bash blocks, titled by their section. */
const seedShellQueries = (doc: string) => specStatements(doc, 'shell');

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const groupBy = <T>(xs: T[], key: (x: T) => string) => {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
};
/** ClickHouse `quantile` on fewer than 8192 values: linear interpolation at level·(n−1) of the sorted values. */
const interpolatedQuantile = (xs: number[], level: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = level * (s.length - 1);
  const lo = Math.floor(pos);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (pos - lo);
};
const hourOf = (ms: number) => chTime(Math.floor(ms / 3_600_000) * 3_600_000).slice(0, 19);

interface Check {
  rows(d: EvolutionDataset): Row[];
  /** Sort key of the query's ORDER BY (rows already sorted by it); absent: any order. */
  order?: (r: Row) => unknown[];
  limit?: number;
}

function mainIndividuals(d: EvolutionDataset): Individual[] {
  return d.individuals.filter((i) => i.run_id === d.mainRunId);
}
const desc = (k: string) => (a: Row, b: Row) => (b[k] as number) - (a[k] as number);
const asc = (k: string) => (a: Row, b: Row) => (a[k] as number) - (b[k] as number);

/** Expected result of each seed query, computed from the fixture. */
const CHECKS: Record<string, Check> = {
  'Active runs': {
    rows: (d) => d.runs.filter((r) => r.status === 'running').map((r) => ({ run_id: r.run_id, task_name: r.task_name, start_time: chTime(r.start_time), total_generations: r.total_generations })),
  },
  'Compare configurations': {
    rows: (d) => d.runs.filter((r) => r.task_name === 'circle_packing').sort((a, b) => b.start_time - a.start_time).map((r) => ({ run_id: r.run_id, task_name: r.task_name, config: r.config })),
    order: (r) => [r.run_id],
  },
  'Fitness trajectory': {
    rows: (d) => d.generations.filter((g) => g.run_id === d.mainRunId).map((g) => ({ generation: g.generation, best_score: g.best_score, avg_score: g.avg_score, total_cost: g.total_cost })),
    order: (r) => [r.generation],
  },
  'Cost per generation': {
    rows: (d) => d.generations.filter((g) => g.run_id === d.mainRunId).map((g) => ({ generation: g.generation, total_cost: g.total_cost, cost_per_individual: g.total_cost / g.num_individuals })),
  },
  'Identify breakthrough generations (large improvement)': {
    // lag() over the first row yields the type's default, 0.
    rows: (d) => {
      const gens = d.generations.filter((g) => g.run_id === d.mainRunId).sort((a, b) => a.generation - b.generation);
      return gens.map((g, i) => ({ generation: g.generation, best_score: g.best_score, improvement: g.best_score - (i === 0 ? 0 : gens[i - 1]!.best_score) })).sort(desc('improvement'));
    },
    order: (r) => [r.improvement],
  },
  'Top 10 individuals ever created': {
    rows: (d) => mainIndividuals(d).sort((a, b) => b.fitness_score - a.fitness_score).map((i) => ({ individual_id: i.individual_id, generation: i.generation, fitness_score: i.fitness_score, mutation_type: i.mutation_type, metrics: i.metrics })),
    order: (r) => [r.fitness_score],
    limit: 10,
  },
  'Duplicates (same code hash)': {
    rows: (d) => [...groupBy(mainIndividuals(d), (i) => i.code_hash)].filter(([, xs]) => xs.length > 1).map(([code_hash, xs]) => ({ code_hash, count: xs.length })),
  },
  'Mutation type effectiveness': {
    rows: (d) => [...groupBy(mainIndividuals(d).filter((i) => i.generation > 0), (i) => i.mutation_type)]
      .map(([mutation_type, xs]) => ({ mutation_type, count: xs.length, avg_fitness: mean(xs.map((x) => x.fitness_score)), max_fitness: Math.max(...xs.map((x) => x.fitness_score)) }))
      .sort(desc('avg_fitness')),
    order: (r) => [r.avg_fitness],
  },
  'Pareto frontier members across all generations': {
    rows: (d) => mainIndividuals(d).filter((i) => i.is_pareto).sort((a, b) => a.generation - b.generation || b.fitness_score - a.fitness_score)
      .map((i) => ({ generation: i.generation, individual_id: i.individual_id, fitness_score: i.fitness_score, combined_score: i.combined_score })),
    order: (r) => [r.generation, r.fitness_score],
  },
  'Pareto frontier size over time': {
    rows: (d) => [...groupBy(d.pareto.filter((p) => p.run_id === d.mainRunId), (p) => String(p.generation))].map(([g, xs]) => ({ generation: Number(g), pareto_size: xs.length })).sort(asc('generation')),
    order: (r) => [r.generation],
  },
  'Latest Pareto frontier': {
    rows: (d) => {
      const ps = d.pareto.filter((p) => p.run_id === d.mainRunId);
      const last = Math.max(...ps.map((p) => p.generation));
      return ps.filter((p) => p.generation === last).sort((a, b) => b.fitness_score - a.fitness_score).map((p) => ({ individual_id: p.individual_id, fitness_score: p.fitness_score, combined_score: p.combined_score, metrics: p.metrics }));
    },
    order: (r) => [r.fitness_score],
  },
  'Compare Pareto fronts across generations': {
    rows: (d) => d.pareto.filter((p) => p.run_id === d.mainRunId).sort((a, b) => a.generation - b.generation || b.accuracy - a.accuracy).map((p) => ({ generation: p.generation, individual_id: p.individual_id, accuracy: p.accuracy, size: p.size })),
    order: (r) => [r.generation, r.accuracy],
  },
  'Most successful mutations (biggest improvements)': {
    rows: (d) => d.lineages.filter((l) => l.run_id === d.mainRunId && l.fitness_delta > 0).sort((a, b) => b.fitness_delta - a.fitness_delta)
      .map((l) => ({ child_id: l.child_id, parent_id: l.parent_id, generation: l.generation, mutation_type: l.mutation_type, fitness_delta: l.fitness_delta, edit_summary: l.edit_summary })),
    order: (r) => [r.fitness_delta],
    limit: 10,
  },
  'Mutation success rate': {
    rows: (d) => [...groupBy(d.lineages.filter((l) => l.run_id === d.mainRunId && l.generation > 0), (l) => l.mutation_type)].map(([mutation_type, xs]) => {
      const improvements = xs.filter((x) => x.fitness_delta > 0).length;
      return { mutation_type, total: xs.length, improvements, success_rate: improvements / xs.length, avg_delta: mean(xs.map((x) => x.fitness_delta)) };
    }),
  },
  'Trace lineage of best individual': {
    rows: (d) => {
      const chain: Row[] = [];
      let id: string | undefined = d.bestId;
      while (id) {
        const edge = d.lineages.find((l) => l.child_id === id);
        if (!edge) break;
        chain.push({ id: edge.child_id, parent_id: edge.parent_id, generation: edge.generation, mutation_type: edge.mutation_type, edit_summary: edge.edit_summary });
        id = edge.parent_id;
      }
      return chain.sort(asc('generation'));
    },
    order: (r) => [r.generation],
  },
  'Most prolific parents (many children)': {
    rows: (d) => [...groupBy(d.lineages.filter((l) => l.run_id === d.mainRunId), (l) => l.parent_id)]
      .map(([parent_id, xs]) => ({ parent_id, num_children: xs.length, avg_improvement: mean(xs.map((x) => x.fitness_delta)), successful_children: xs.filter((x) => x.fitness_delta > 0).length }))
      .sort(desc('num_children')),
    order: (r) => [r.num_children],
    limit: 20,
  },
  'Best score per generation': {
    rows: (d) => d.generations.filter((g) => g.run_id === d.mainRunId).map((g) => ({ generation: g.generation, best_score: g.best_score, avg_score: g.avg_score, pareto_size: g.pareto_size, total_cost: g.total_cost })),
    order: (r) => [r.generation],
  },
  'Top 10 individuals across all generations': {
    rows: (d) => mainIndividuals(d).sort((a, b) => b.fitness_score - a.fitness_score).map((i) => ({ individual_id: i.individual_id, generation: i.generation, fitness_score: i.fitness_score, combined_score: i.combined_score, mutation_type: i.mutation_type })),
    order: (r) => [r.fitness_score],
    limit: 10,
  },
  'Total costs by run': {
    rows: (d) => [...groupBy(d.generations, (g) => `${g.run_id}|${g.task_name}`)].map(([k, xs]) => ({ run_id: k.split('|')[0], task_name: k.split('|')[1], total_evolution_cost: sum(xs.map((x) => x.total_cost)), generations: new Set(xs.map((x) => x.generation)).size })).sort(desc('total_evolution_cost')),
    order: (r) => [r.total_evolution_cost],
  },
  'LLM costs by model': {
    rows: (d) => [...groupBy(d.llmLogs, (l) => l.model)].map(([model, xs]) => ({ model, calls: xs.length, total_cost: sum(xs.map((x) => x.cost)), avg_time: mean(xs.map((x) => x.execution_time)) })).sort(desc('total_cost')),
    order: (r) => [r.total_cost],
  },
  'Most successful mutations (positive fitness delta)': {
    rows: (d) => [...groupBy(d.lineages.filter((l) => l.fitness_delta > 0), (l) => l.mutation_type)].map(([mutation_type, xs]) => ({ mutation_type, count: xs.length, avg_improvement: mean(xs.map((x) => x.fitness_delta)), best_improvement: Math.max(...xs.map((x) => x.fitness_delta)) })).sort(desc('avg_improvement')),
    order: (r) => [r.avg_improvement],
  },
  'Build phylogenetic tree': {
    rows: (d) => d.lineages.filter((l) => l.run_id === d.mainRunId).sort((a, b) => a.generation - b.generation || a.timestamp - b.timestamp).map((l) => ({ child_id: l.child_id, parent_id: l.parent_id, generation: l.generation, mutation_type: l.mutation_type, fitness_delta: l.fitness_delta })),
    order: (r) => [r.generation, r.child_id],
  },
  'Track how Pareto frontier changes over time': {
    rows: (d) => [...groupBy(d.pareto.filter((p) => p.run_id === d.mainRunId), (p) => String(p.generation))].map(([g, xs]) => ({ generation: Number(g), pareto_size: new Set(xs.map((x) => x.individual_id)).size, max_fitness: Math.max(...xs.map((x) => x.fitness_score)), min_combined: Math.min(...xs.map((x) => x.combined_score)) })).sort(asc('generation')),
    order: (r) => [r.generation],
  },
  'Find best individual across all runs for a task': {
    rows: (d) => {
      const runs = new Set(d.runs.filter((r) => r.task_name === 'circle_packing').map((r) => r.run_id));
      return d.individuals.filter((i) => runs.has(i.run_id)).sort((a, b) => b.fitness_score - a.fitness_score).map((i) => ({ run_id: i.run_id, individual_id: i.individual_id, generation: i.generation, fitness_score: i.fitness_score, metrics: i.metrics }));
    },
    order: (r) => [r.fitness_score],
    limit: 1,
  },
  'Evolution progress dashboard': {
    rows: (d) => d.generations.filter((g) => g.run_id === d.mainRunId).map((g) => ({
      generation: g.generation, best_score: g.best_score, avg_score: g.avg_score, pareto_size: g.pareto_size, total_cost: g.total_cost,
      pareto_actual: mainIndividuals(d).filter((i) => i.generation === g.generation && i.is_pareto).length,
    })),
    order: (r) => [r.generation],
  },
  'Cost breakdown by component': {
    rows: (d) => {
      const xs = mainIndividuals(d);
      return [{ total_mutation_cost: sum(xs.map((x) => x.api_cost)), total_embedding_cost: sum(xs.map((x) => x.embed_cost)), total_novelty_cost: sum(xs.map((x) => x.novelty_cost)), total_cost: sum(xs.map((x) => x.api_cost + x.embed_cost + x.novelty_cost)) }];
    },
  },
  'Mutation type effectiveness#2': {
    rows: (d) => [...groupBy(mainIndividuals(d).filter((i) => i.generation > 0), (i) => i.mutation_type)].map(([mutation_type, xs]) => {
      const f = xs.map((x) => x.fitness_score);
      return { mutation_type, count: xs.length, avg_fitness: mean(f), median_fitness: interpolatedQuantile(f, 0.5), p90_fitness: interpolatedQuantile(f, 0.9) };
    }),
  },
  'LLM cost by model': {
    rows: (d) => [...groupBy(d.llmLogs, (l) => l.model)].map(([model, xs]) => ({ model, calls: xs.length, total_cost: sum(xs.map((x) => x.cost)), avg_cost_per_call: mean(xs.map((x) => x.cost)), total_time_seconds: sum(xs.map((x) => x.execution_time)) })).sort(desc('total_cost')),
    order: (r) => [r.total_cost],
  },
};

/**
 * Seed queries ClickHouse cannot run as written, with the error it gives. The test asserts the
 * error, so the day the engine (or the spec) changes, this list must be revisited.
 */
const KNOWN_INVALID: Record<string, RegExp> = {
  // Window functions are not allowed in HAVING (and HAVING without GROUP BY filters nothing here).
  'Find generations with breakthroughs (>10% improvement)': /Window function .* is found in HAVING/,
};

/** Statements that change tables (the seed's retention examples): run last, checked separately. */
const isDdl = (sql: string) => /^\s*(--.*\n\s*)*ALTER\s/i.test(sql);

function substitute(sql: string, d: EvolutionDataset): string {
  return sql
    .replaceAll("'run_20240115_142345'", `'${d.mainRunId}'`)
    .replaceAll("'your_run_id'", `'${d.mainRunId}'`)
    .replaceAll("'YOUR_RUN_ID'", `'${d.mainRunId}'`)
    .replaceAll("'ind_gen10_best'", `'${d.bestId}'`)
    .replaceAll("'optiinfra'", `'${DB}'`);
}

let client: ClickHouseClient;
let dataDir: string;
let data: EvolutionDataset;
let metrics: MetricsDataset;
const NOW = Date.now();

async function select(sql: string, params?: Record<string, unknown>): Promise<Row[]> {
  const r = await client.query({ query: sql, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
  return r.json<Row>();
}

async function insertMetrics(): Promise<void> {
  const sets = [
    [costMetrics, metrics.cost],
    [performanceMetrics, metrics.performance],
    [resourceMetrics, metrics.resource],
    [qualityMetrics, metrics.quality],
  ] as const;
  for (const [type, rows] of sets) {
    const records = rows.map((r, i) => toRow(type, toEventRecord(type, r, i)));
    // Three inserts: three parts, so the rollups hold several partial states per hour to merge.
    const third = Math.ceil(records.length / 3);
    for (let k = 0; k < 3; k++) await client.insert({ table: type.table, values: records.slice(k * third, (k + 1) * third), format: 'JSONEachRow' });
  }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'seed-queries-'));
  client = await openClickHouse({ dataPath: dataDir, database: DB, requestTimeoutMs: 60_000 });
  await migrate(client);
  const built = await buildEvolutionDataset();
  data = built.data;
  await built.sink.insertAll(client);
  metrics = buildMetricsDataset(NOW);
  await insertMetrics();
});

afterAll(async () => {
  await client?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('seed SQL examples (the specification\'s statements, test/fixtures/spec-queries.sql)', () => {
  const queries = [...seedSqlQueries('evolution-tables.md'), ...seedSqlQueries('metrics-tables.md')];

  it('finds the examples and has an expectation for every one', () => {
    expect(queries.length).toBeGreaterThan(25);
    const unknown = queries.filter((s) => !isDdl(s.sql) && !CHECKS[s.title] && !KNOWN_INVALID[s.title]).map((s) => s.title);
    expect(unknown, 'seed queries without an expected result: add them to CHECKS').toEqual([]);
  });

  it('the fixture exercises the queries (non-trivial results)', () => {
    for (const title of ['Active runs', 'Duplicates (same code hash)', 'Most successful mutations (biggest improvements)', 'Trace lineage of best individual', 'Mutation success rate']) {
      expect(CHECKS[title]!.rows(data).length, title).toBeGreaterThan(1);
    }
  });

  for (const s of seedSqlQueries('evolution-tables.md').filter((x) => !isDdl(x.sql))) {
    it(`${s.title}`, async () => {
      const sql = substitute(s.sql, data);
      if (KNOWN_INVALID[s.title]) {
        await expect(select(sql)).rejects.toThrow(KNOWN_INVALID[s.title]!);
        return;
      }
      const check = CHECKS[s.title];
      expect(check, `no expectation for ${s.title}`).toBeDefined();
      const actual = await select(sql);
      const expected = check!.rows(data);
      if (check!.order) expectOrderedRows(actual, expected, check!.order, s.title, check!.limit);
      else expectSameRows(actual, expected, s.title);
    });
  }

  it('the breakthrough query works once its window filter moves out of HAVING', async () => {
    const s = seedSqlQueries('evolution-tables.md').find((x) => KNOWN_INVALID[x.title])!;
    const inner = substitute(s.sql, data).replace(/HAVING[\s\S]*$/, '');
    const rows = await select(`SELECT * FROM (${inner}) WHERE improvement_pct > 0.1 ORDER BY improvement_pct DESC`);
    const gens = data.generations.filter((g) => g.run_id === data.mainRunId).sort((a, b) => a.generation - b.generation);
    const expected = gens
      .map((g, i) => {
        const prev = i === 0 ? 0 : gens[i - 1]!.best_score;
        return { generation: g.generation, best_score: g.best_score, improvement: g.best_score - prev, improvement_pct: (g.best_score - prev) / prev };
      })
      // x/0 is +inf in ClickHouse (> 0.1, sorted first) and JSON-encoded as null.
      .filter((r) => r.improvement_pct > 0.1)
      .sort((a, b) => b.improvement_pct - a.improvement_pct)
      .map((r) => (Number.isFinite(r.improvement_pct) ? r : { ...r, improvement_pct: null }));
    expect(rows.length).toBe(expected.length);
    expectSameRows(rows, expected as Row[], 'breakthroughs');
    expect(rows.map((r) => r.generation)).toEqual(expected.map((r) => r.generation));
  });

  it('metrics document shell examples: table sizes and partitions match the fixture', async () => {
    const shell = seedShellQueries('metrics-tables.md');
    expect(shell.map((s) => s.title)).toEqual(['Check Table Sizes', 'Check Partitions']);
    const counts: Record<string, number> = {
      cost_metrics_ts: metrics.cost.length,
      performance_metrics_ts: metrics.performance.length,
      resource_metrics_ts: metrics.resource.length,
      quality_metrics_ts: metrics.quality.length,
      generations: data.generations.length,
      individuals: data.individuals.length,
      pareto_fronts: data.pareto.length,
      code_lineages: data.lineages.length,
      llm_logs: data.llmLogs.length,
      agent_actions: data.agentActions,
    };
    const sizes = await select(substitute(shell[0]!.sql, data));
    for (const [table, n] of Object.entries(counts)) expect(Number(sizes.find((r) => r.table === table)?.rows), table).toBe(n);
    const parts = await select(substitute(shell[1]!.sql, data));
    const month = (ms: number) => new Date(ms).toISOString().slice(0, 7).replace('-', '');
    const months: Record<string, number[]> = {
      performance_metrics_ts: metrics.performance.map((r) => r.timestamp),
      individuals: data.individuals.map((i) => i.timestamp),
      llm_logs: data.llmLogs.map((l) => l.timestamp),
    };
    for (const [table, n] of Object.entries(counts)) expect(sum(parts.filter((p) => p.table === table).map((p) => Number(p.rows))), table).toBe(n);
    for (const [table, ts] of Object.entries(months)) {
      expect(new Set(parts.filter((p) => p.table === table).map((p) => String(p.partition))), table).toEqual(new Set(ts.map(month)));
    }
  });

});

describe('evolution_runs update path', () => {
  it('a run logged running then updated completed reads as one row with the new status, without OPTIMIZE', async () => {
    const sink = new CapturingSink();
    const logger = new EvolutionLogger(sink);
    const start = Date.UTC(2024, 5, 1, 10, 0, 0);
    // Keep the start and update rows in separate, unmerged parts: the view must collapse them itself.
    await client.command({ query: 'SYSTEM STOP MERGES evolution_run_updates' });
    await logger.logEvolutionRun({ run_id: 'run_update_check', task_name: 'circle_packing', config: { a: 1 }, population_size: 20, cluster_type: 'local', database_path: '/x.db', start_time: start });
    await sink.insertAll(client);
    const active = async () => (await select("SELECT run_id, task_name, start_time, total_generations FROM evolution_runs WHERE status = 'running'")).map((r) => r.run_id);
    expect(await active()).toContain('run_update_check');
    const before = await select("SELECT end_time, total_generations FROM evolution_runs WHERE run_id = 'run_update_check'");
    expect(before).toEqual([{ end_time: '1970-01-01 00:00:00.000', total_generations: 0 }]);

    sink.now += 1_000; // the update is emitted after the start
    await logger.updateEvolutionRun({ run_id: 'run_update_check', status: 'completed', total_generations: 10, end_time: start + 3_600_000 });
    await sink.insertAll(client); // a second insert: a second part, not merged with the first
    const parts = await select("SELECT count() AS n FROM system.parts WHERE database = currentDatabase() AND table = 'evolution_run_updates' AND active");
    expect(Number(parts[0]!.n)).toBeGreaterThan(1);
    expect(await active()).not.toContain('run_update_check');
    const rows = await select("SELECT * EXCEPT updated_at FROM evolution_runs WHERE run_id = 'run_update_check'");
    expect(rows).toEqual([
      {
        run_id: 'run_update_check', start_time: chTime(start), end_time: chTime(start + 3_600_000), task_name: 'circle_packing', config: '{"a":1}',
        status: 'completed', total_generations: 10, population_size: 20, cluster_type: 'local', database_path: '/x.db',
      },
    ]);
    // The raw table holds both events; only the view collapses them.
    expect((await select("SELECT count() AS n FROM evolution_run_updates WHERE run_id = 'run_update_check'"))[0]!.n).toBe(2);
    await client.command({ query: 'SYSTEM START MERGES evolution_run_updates' });
  });

  it('the current row does not depend on insert order (a start event re-inserted late from the dead-letter queue)', async () => {
    const sink = new CapturingSink();
    const logger = new EvolutionLogger(sink);
    await logger.logEvolutionRun({ run_id: 'run_late_start', task_name: 'mask_to_seg', config: {}, population_size: 8, cluster_type: 'slurm', database_path: '/y.db', start_time: sink.now });
    const startEvent = sink.batches.splice(0);
    sink.now += 60_000;
    await logger.updateEvolutionRun({ run_id: 'run_late_start', status: 'completed', total_generations: 4 });
    await sink.insertAll(client); // the update lands first…
    sink.batches.push(...startEvent);
    await sink.insertAll(client); // …and the older start event after it
    const rows = await select("SELECT status, total_generations, task_name, cluster_type FROM evolution_runs WHERE run_id = 'run_late_start'");
    expect(rows).toEqual([{ status: 'completed', total_generations: 4, task_name: 'mask_to_seg', cluster_type: 'slurm' }]);
  });

  it('the fixture runs: completed ones are not active, every run appears once', async () => {
    const rows = await select('SELECT run_id, status, count() OVER (PARTITION BY run_id) AS n FROM evolution_runs');
    for (const r of data.runs) expect(rows.filter((x) => x.run_id === r.run_id)).toEqual([{ run_id: r.run_id, status: r.status, n: 1 }]);
  });
});

describe('hourly rollups equal the same aggregate over the raw table', () => {
  const pairs = [
    {
      raw: `SELECT toStartOfHour(timestamp) AS hour, customer_id, cloud_provider, service_name, region, instance_type, sum(cost_per_hour) AS total_cost, avg(utilization_percent) AS avg_u, max(utilization_percent) AS max_u, count() AS n, uniq(instance_id) AS inst FROM cost_metrics_ts GROUP BY ALL`,
      rollup: `SELECT hour, customer_id, cloud_provider, service_name, region, instance_type, sumMerge(total_cost) AS total_cost, avgMerge(avg_utilization) AS avg_u, maxMerge(max_utilization) AS max_u, countMerge(samples) AS n, uniqMerge(instances) AS inst FROM cost_metrics_hourly GROUP BY ALL`,
    },
    {
      raw: `SELECT toStartOfHour(timestamp) AS hour, customer_id, service_id, service_type, model_name, quantilesTDigest(0.5, 0.95, 0.99)(latency_ms) AS q, avg(latency_ms) AS avg_l, max(latency_ms) AS max_l, avg(throughput_tokens_per_sec) AS tp, avg(gpu_utilization) AS gpu, avg(kv_cache_utilization) AS kv, sum(prompt_tokens) AS pt, sum(completion_tokens) AS ct, sum(total_tokens) AS tt, count() AS n FROM performance_metrics_ts GROUP BY ALL`,
      rollup: `SELECT hour, customer_id, service_id, service_type, model_name, quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_quantiles) AS q, avgMerge(avg_latency_ms) AS avg_l, maxMerge(max_latency_ms) AS max_l, avgMerge(avg_throughput) AS tp, avgMerge(avg_gpu_utilization) AS gpu, avgMerge(avg_kv_cache_utilization) AS kv, sumMerge(total_prompt_tokens) AS pt, sumMerge(total_completion_tokens) AS ct, sumMerge(total_tokens) AS tt, countMerge(requests) AS n FROM performance_metrics_hourly GROUP BY ALL`,
    },
    {
      raw: `SELECT toStartOfHour(timestamp) AS hour, customer_id, instance_id, instance_type, avg(gpu_utilization) AS a1, max(gpu_utilization) AS a2, avg(gpu_memory_used_mb) AS a3, max(gpu_memory_used_mb) AS a4, max(gpu_temperature) AS a5, avg(cpu_utilization) AS a6, max(cpu_utilization) AS a7, avg(memory_used_gb) AS a8, avg(network_rx_mbps) AS a9, avg(network_tx_mbps) AS a10, count() AS n FROM resource_metrics_ts GROUP BY ALL`,
      rollup: `SELECT hour, customer_id, instance_id, instance_type, avgMerge(avg_gpu_utilization) AS a1, maxMerge(max_gpu_utilization) AS a2, avgMerge(avg_gpu_memory_used_mb) AS a3, maxMerge(max_gpu_memory_used_mb) AS a4, maxMerge(max_gpu_temperature) AS a5, avgMerge(avg_cpu_utilization) AS a6, maxMerge(max_cpu_utilization) AS a7, avgMerge(avg_memory_used_gb) AS a8, avgMerge(avg_network_rx_mbps) AS a9, avgMerge(avg_network_tx_mbps) AS a10, countMerge(samples) AS n FROM resource_metrics_hourly GROUP BY ALL`,
    },
    {
      raw: `SELECT toStartOfHour(timestamp) AS hour, customer_id, service_id, model_name, avg(overall_quality_score) AS q, min(overall_quality_score) AS qmin, avg(relevance_score) AS r, avg(coherence_score) AS c, avg(factuality_score) AS f, avg(toxicity_score) AS t, max(toxicity_score) AS tmax, sum(hallucination_detected) AS h, count() AS n FROM quality_metrics_ts GROUP BY ALL`,
      rollup: `SELECT hour, customer_id, service_id, model_name, avgMerge(avg_quality) AS q, minMerge(min_quality) AS qmin, avgMerge(avg_relevance) AS r, avgMerge(avg_coherence) AS c, avgMerge(avg_factuality) AS f, avgMerge(avg_toxicity) AS t, maxMerge(max_toxicity) AS tmax, sumMerge(hallucinations) AS h, countMerge(requests) AS n FROM quality_metrics_hourly GROUP BY ALL`,
    },
  ];
  for (const p of pairs) {
    const table = /FROM (\w+)/.exec(p.raw)![1]!;
    it(`${table}: rollup rows equal the raw aggregate, per hour and key`, async () => {
      const raw = await select(p.raw);
      const rollup = await select(p.rollup);
      expect(raw.length).toBeGreaterThan(5);
      expectSameRows(rollup, raw, table);
    });
  }

  it('p95 from merged t-digest states stays within the t-digest rank error of the exact percentile', async () => {
    // Exact comparison is with quantilesTDigest over the raw rows (above). Against the exact
    // percentile we allow the rank error a t-digest of this size has: ±2 % of the rank.
    const rows = metrics.performance.filter((r) => r.customer_id === metrics.customerId && r.service_id === metrics.serviceId && r.timestamp > NOW - 24 * 3_600_000);
    const lat = rows.map((r) => r.latency_ms).sort((a, b) => a - b);
    const stats = await q.queryPerformanceP95(client, { customerId: metrics.customerId, serviceId: metrics.serviceId, hours: 24 });
    const at = (level: number) => lat[Math.min(lat.length - 1, Math.max(0, Math.round(level * (lat.length - 1))))]!;
    for (const [level, value] of [[0.5, stats.p50_latency_ms], [0.95, stats.p95_latency_ms], [0.99, stats.p99_latency_ms]] as const) {
      expect(value).not.toBeNull();
      expect(value!).toBeGreaterThanOrEqual(at(level - 0.02));
      expect(value!).toBeLessThanOrEqual(at(Math.min(1, level + 0.02)));
    }
    const exact = await select(
      `SELECT quantilesTDigest(0.5, 0.95, 0.99)(latency_ms) AS q FROM performance_metrics_ts WHERE customer_id = {c:UUID} AND service_id = {s:UUID} AND timestamp >= toStartOfHour(now64(3) - INTERVAL 24 HOUR)`,
      { c: metrics.customerId, s: metrics.serviceId },
    );
    expect([stats.p50_latency_ms, stats.p95_latency_ms, stats.p99_latency_ms]).toEqual(exact[0]!.q);
  });
});

describe('query helpers (the seed Python helpers) against values computed from the fixture', () => {
  const inWindow = (ts: number) => ts > NOW - 24 * 3_600_000;

  it('queryPerformanceP95: counts, tokens, averages', async () => {
    const rows = metrics.performance.filter((r) => r.customer_id === metrics.customerId && r.service_id === metrics.serviceId && inWindow(r.timestamp));
    const s = await q.queryPerformanceP95(client, { customerId: metrics.customerId, serviceId: metrics.serviceId, hours: 24 });
    expect(s.total_requests).toBe(rows.length);
    expect(s.total_tokens).toBe(sum(rows.map((r) => r.total_tokens)));
    expect(s.avg_latency_ms).toBeCloseTo(mean(rows.map((r) => r.latency_ms)), 9);
    expect(s.max_latency_ms).toBe(Math.max(...rows.map((r) => r.latency_ms)));
    const none = await q.queryPerformanceP95(client, { customerId: metrics.customerId, serviceId: '00000000-0000-4000-8000-000000000000', hours: 24 });
    expect(none).toMatchObject({ total_requests: 0, p95_latency_ms: null });
  });

  it('queryResourceUtilization', async () => {
    const rows = metrics.resource.filter((r) => r.customer_id === metrics.customerId && r.instance_id === metrics.instanceId && inWindow(r.timestamp));
    const u = await q.queryResourceUtilization(client, { customerId: metrics.customerId, instanceId: metrics.instanceId, hours: 24 });
    expect(u.samples).toBe(rows.length);
    expect(u.avg_gpu_utilization!).toBeCloseTo(mean(rows.map((r) => r.gpu_utilization)), 9);
    expect(u.max_gpu_utilization).toBe(Math.max(...rows.map((r) => r.gpu_utilization)));
    expect(u.max_gpu_temperature).toBe(Math.max(...rows.map((r) => r.gpu_temperature)));
    expect(u.avg_cpu_utilization!).toBeCloseTo(mean(rows.map((r) => r.cpu_utilization)), 9);
  });

  it('queryQualityTrends: one row per hour with avg quality and hallucinations', async () => {
    const rows = metrics.quality.filter((r) => r.customer_id === metrics.customerId && r.service_id === metrics.serviceId && inWindow(r.timestamp));
    const expected = [...groupBy(rows, (r) => hourOf(r.timestamp))]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([hour, xs]) => ({ hour, avg_quality: mean(xs.map((x) => x.overall_quality_score)), hallucinations: sum(xs.map((x) => x.hallucination_detected)), requests: xs.length }));
    const trends = await q.queryQualityTrends(client, { customerId: metrics.customerId, serviceId: metrics.serviceId, hours: 24 });
    expect(trends.map((t) => ({ hour: t.hour, avg_quality: t.avg_quality, hallucinations: t.hallucinations, requests: t.requests })).length).toBe(expected.length);
    expectOrderedRows(trends.map((t) => ({ hour: t.hour, avg_quality: t.avg_quality, hallucinations: t.hallucinations, requests: t.requests })), expected, (r) => [r.hour], 'quality trends');
    expect(sum(expected.map((e) => e.hallucinations))).toBeGreaterThan(0);
  });

  it('queryCostHourly', async () => {
    const start = NOW - 30 * 3_600_000;
    const rows = metrics.cost.filter((r) => r.customer_id === metrics.customerId && r.timestamp >= Math.floor(start / 3_600_000) * 3_600_000 && r.timestamp <= NOW);
    const expected = [...groupBy(rows, (r) => hourOf(r.timestamp))]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([hour, xs]) => ({ hour, total_cost: sum(xs.map((x) => x.cost_per_hour)), avg_utilization: mean(xs.map((x) => x.utilization_percent)), max_utilization: Math.max(...xs.map((x) => x.utilization_percent)), samples: xs.length, instances: new Set(xs.map((x) => x.instance_id)).size }));
    const got = await q.queryCostHourly(client, { customerId: metrics.customerId, start: new Date(start), end: new Date(NOW) });
    expectOrderedRows(got as unknown as Row[], expected, (r) => [r.hour], 'cost hourly');
  });

  it('evolution helpers', async () => {
    const d = data;
    const traj = await q.queryFitnessTrajectory(client, d.mainRunId);
    expect(traj).toEqual(d.generations.filter((g) => g.run_id === d.mainRunId).map((g) => ({ generation: g.generation, best_score: g.best_score, avg_score: g.avg_score, pareto_size: g.pareto_size, total_cost: g.total_cost })));

    const top = await q.queryTopIndividuals(client, d.mainRunId, 5);
    expect(top.map((t) => t.individual_id)).toEqual(mainIndividuals(d).sort((a, b) => b.fitness_score - a.fitness_score).slice(0, 5).map((i) => i.individual_id));

    const eff = await q.queryMutationEffectiveness(client, d.mainRunId);
    expectOrderedRows(eff as unknown as Row[], CHECKS['Mutation type effectiveness']!.rows(d), (r) => [r.avg_fitness], 'mutation effectiveness');

    const lineage = await q.queryLineage(client, d.bestId, d.mainRunId);
    const chain = CHECKS['Trace lineage of best individual']!.rows(d);
    expect(lineage.map((l) => l.id)).toEqual(chain.map((c) => c.id));
    expect(lineage[0]!.parent_id).toBe('');
    expect(lineage.at(-1)!.id).toBe(d.bestId);
    expect(await q.queryLineage(client, d.bestId, 'run_fixture_b')).toEqual([]);
    expect((await q.queryLineage(client, d.bestId)).map((l) => l.id)).toEqual(chain.map((c) => c.id));

    const front = await q.queryLatestParetoFront(client, d.mainRunId);
    expect(front.map((f) => f.individual_id)).toEqual(CHECKS['Latest Pareto frontier']!.rows(d).map((r) => r.individual_id));

    const llm = await q.queryLlmCostByModel(client);
    expectOrderedRows(
      llm.map(({ avg_time: _t, ...r }) => r) as unknown as Row[],
      CHECKS['LLM cost by model']!.rows(d),
      (r) => [r.total_cost],
      'llm cost',
    );
    const from = Date.UTC(2024, 0, 15, 15, 10, 0);
    const windowed = await q.queryLlmCostByModel(client, { start: new Date(from), end: new Date(from + 10 * 60_000) });
    expect(sum(windowed.map((w) => w.calls))).toBe(d.llmLogs.filter((l) => l.timestamp >= from && l.timestamp < from + 600_000).length);

    const cb = await q.queryCostBreakdown(client, d.mainRunId);
    expectSameRows([cb as unknown as Row], CHECKS['Cost breakdown by component']!.rows(d), 'cost breakdown');
  });

  it('helpers reject bad input with a message naming the parameter, before querying', async () => {
    const c = { customerId: metrics.customerId, serviceId: metrics.serviceId };
    await expect(q.queryPerformanceP95(client, { ...c, hours: 0 })).rejects.toThrow(/hours/);
    await expect(q.queryPerformanceP95(client, { ...c, hours: Number.NaN })).rejects.toThrow(/hours/);
    await expect(q.queryPerformanceP95(client, { ...c, customerId: "x' OR 1=1 --" , hours: 1 })).rejects.toThrow(/customerId must be a UUID/);
    await expect(q.queryQualityTrends(client, { ...c, serviceId: 'nope', hours: 1 })).rejects.toThrow(/serviceId/);
    await expect(q.queryTopIndividuals(client, data.mainRunId, 0)).rejects.toThrow(/limit/);
    await expect(q.queryFitnessTrajectory(client, '')).rejects.toThrow(/runId/);
    await expect(q.queryCostHourly(client, { customerId: metrics.customerId, start: 'yesterday', end: new Date() })).rejects.toThrow(/start/);
    // A quote in a run id is data, not SQL: bound as a parameter, it just matches nothing.
    expect(await q.queryFitnessTrajectory(client, "run' OR '1'='1")).toEqual([]);
  });
});

describe('tables and migrations', () => {
  const expectTables: Record<string, { partition: string; sorting: string; ttl: string | null }> = {
    cost_metrics_ts: { partition: 'toYYYYMM(timestamp)', sorting: 'customer_id, timestamp', ttl: 'toDateTime(timestamp) + toIntervalDay(90)' },
    performance_metrics_ts: { partition: 'toYYYYMM(timestamp)', sorting: 'customer_id, service_id, timestamp', ttl: 'toDateTime(timestamp) + toIntervalDay(30)' },
    resource_metrics_ts: { partition: 'toYYYYMM(timestamp)', sorting: 'customer_id, instance_id, timestamp', ttl: 'toDateTime(timestamp) + toIntervalDay(90)' },
    quality_metrics_ts: { partition: 'toYYYYMM(timestamp)', sorting: 'customer_id, service_id, timestamp', ttl: 'toDateTime(timestamp) + toIntervalDay(30)' },
    performance_metrics_hourly: { partition: 'toYYYYMM(hour)', sorting: 'customer_id, service_id, hour, service_type, model_name', ttl: 'hour + toIntervalDay(30)' },
    resource_metrics_hourly: { partition: 'toYYYYMM(hour)', sorting: 'customer_id, instance_id, hour, instance_type', ttl: 'hour + toIntervalDay(90)' },
    quality_metrics_hourly: { partition: 'toYYYYMM(hour)', sorting: 'customer_id, service_id, hour, model_name', ttl: 'hour + toIntervalDay(30)' },
    evolution_run_updates: { partition: '', sorting: 'run_id, event_time', ttl: null },
    generations: { partition: 'toYYYYMM(timestamp)', sorting: 'run_id, generation', ttl: null },
    individuals: { partition: 'toYYYYMM(timestamp)', sorting: 'run_id, generation, individual_id', ttl: null },
    pareto_fronts: { partition: 'toYYYYMM(timestamp)', sorting: 'run_id, generation, individual_id', ttl: null },
    code_lineages: { partition: 'toYYYYMM(timestamp)', sorting: 'run_id, generation, child_id', ttl: null },
  };
  for (const [table, want] of Object.entries(expectTables)) {
    it(`${table}: partition key, sorting key and TTL read back from system.tables`, async () => {
      const [row] = await select('SELECT partition_key, sorting_key, engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}', { t: table });
      expect(row).toBeDefined();
      expect(row!.partition_key).toBe(want.partition);
      expect(row!.sorting_key).toBe(want.sorting);
      const ttl = / TTL (.*?)(?: SETTINGS|$)/.exec(String(row!.engine_full))?.[1] ?? null;
      expect(ttl).toBe(want.ttl);
    });
  }

  it('every base table an event type writes has the _kafka_* columns and the deduplication window', async () => {
    for (const type of eventTypes) {
      const cols = await select('SELECT name, type, default_expression FROM system.columns WHERE database = currentDatabase() AND table = {t:String}', { t: type.table });
      const byName = new Map(cols.map((c) => [c.name, c]));
      expect(byName.get('_kafka_topic'), type.table).toMatchObject({ type: 'LowCardinality(String)', default_expression: "''" });
      expect(byName.get('_kafka_partition'), type.table).toMatchObject({ type: 'UInt32', default_expression: '0' });
      expect(byName.get('_kafka_offset'), type.table).toMatchObject({ type: 'UInt64', default_expression: '0' });
      const [t] = await select('SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}', { t: type.table });
      expect(String(t!.engine_full), type.table).toContain('non_replicated_deduplication_window = 10000');
    }
  });

  it('migrating again applies nothing; a changed applied migration is refused', async () => {
    const again = await migrate(client);
    expect(again.applied).toEqual([]);
    expect(again.skipped.length).toBe(readMigrations().length);
    const changed = readMigrations().map((m, i) => (i === 2 ? { ...m, checksum: `${m.checksum}x` } : m));
    await expect(migrate(client, changed)).rejects.toThrow(MigrationError);
    await expect(migrate(client, changed)).rejects.toThrow(/0003_resource_metrics was changed after it was applied/);
  });

  it('every statement of every migration is idempotent (runs twice on the migrated database)', async () => {
    for (const m of readMigrations()) for (const s of m.statements) await client.command({ query: s });
  });
});

// Last: the seed's retention statements set a 30-day TTL on llm_logs, which removes the 2024 fixture rows.
describe('retention', () => {
  it('retention examples (ALTER TABLE … MODIFY TTL) apply to our tables, and applyRetention sets/removes TTLs', async () => {
    const ddl = seedSqlQueries('evolution-tables.md').filter((x) => isDdl(x.sql));
    expect(ddl.length).toBe(2);
    const ttlOf = async (t: string) => String((await select('SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}', { t }))[0]!.engine_full);
    for (const s of ddl) await client.command({ query: s.sql });
    expect(await ttlOf('llm_logs')).toMatch(/TTL timestamp \+ toIntervalDay\(30\)/);
    expect(await ttlOf('agent_actions')).toMatch(/TTL timestamp \+ toIntervalDay\(90\)/);

    await applyRetention(client, { llmLogsDays: 14, agentActionsDays: 0 });
    expect(await ttlOf('llm_logs')).toMatch(/TTL toDateTime\(timestamp\) \+ toIntervalDay\(14\)/);
    expect(await ttlOf('agent_actions')).not.toMatch(/ TTL /);
    await applyRetention(client, {});
    expect(await ttlOf('llm_logs')).not.toMatch(/ TTL /);
    await applyRetention(client, {}); // removing an absent TTL is a no-op, not an error
    for (const bad of [-1, 1.5, Number.NaN, Infinity, 1e9]) {
      await expect(applyRetention(client, { llmLogsDays: bad })).rejects.toThrow(RetentionError);
    }
    await expect(applyRetention(client, { agentActionsDays: '7' as unknown as number })).rejects.toThrow(/agentActionsDays/);
  });
});
