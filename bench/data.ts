import type { LogLlmInteractionInput, CostMetricInput } from '@kafka-clickhouse-ingest/producer';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { encodeSingleObject } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { sampleEvents } from '../test/fixtures/events.js';
import { rng, uuidFrom } from '../test/fixtures/rows.js';

/**
 * Seeded bench data. Events come from a pool of distinct generated events that the producers
 * cycle through, so generating data costs nothing inside a measurement.
 *
 * Cost events are the test fixtures' (`sampleEvents('cost_metrics', …)`) with two changes:
 * - 1,000 customers instead of 3: the key decides the partition, and three keys cannot spread
 *   over 4 or 8 partitions;
 * - timestamps just before the run, because cost_metrics_ts has a 90-day TTL and rows with
 *   the fixtures' 2024 timestamps could be deleted by a TTL merge while we count them.
 */
export const COST_POOL_SIZE = 20_000;
const CUSTOMERS = 1_000;

export function costEventPool(seed: number, size = COST_POOL_SIZE, now = Date.now()): CostMetricInput[] {
  const next = rng(seed);
  const customers = Array.from({ length: CUSTOMERS }, () => uuidFrom(next));
  const base = now - size;
  return sampleEvents('cost_metrics', size, seed).map((e, i) => ({
    ...(e as CostMetricInput),
    customer_id: customers[Math.floor(next() * CUSTOMERS)]!,
    instance_id: `i-${Math.floor(next() * 0xffffffff).toString(16).padStart(8, '0')}`,
    timestamp: base + i,
  }));
}

/** The pool as the SDK would put it on the wire: Avro single-object encoded. */
export function encodeCostPool(pool: readonly CostMetricInput[]): Buffer[] {
  return pool.map((e) => encodeSingleObject(costMetrics.avroType, costMetrics.fingerprint, toEventRecord(costMetrics, e)));
}

/** The pool's records (what the worker decodes and inserts), e.g. as JSON for the native Kafka engine. */
export function costRecords(pool: readonly CostMetricInput[]): Record<string, unknown>[] {
  return pool.map((e) => toEventRecord(costMetrics, e));
}

const WORDS = (
  'the a of to and in is for that with on as this be are function return value const let if else loop array index ' +
  'score fitness mutation candidate improve solution circle packing radius boundary overlap constraint optimise ' +
  'gradient step iteration population elite crossover random seed evaluate result error handle edge case performance ' +
  'memory allocation vector matrix sort search heuristic greedy dynamic programming recursion cache'
).split(' ');

const CODE_LINES = [
  'def pack_circles(n, width, height):',
  '    centers = np.random.rand(n, 2) * [width, height]',
  '    radii = np.full(n, min(width, height) / (2 * np.sqrt(n)))',
  '    for step in range(max_iters):',
  '        d = np.linalg.norm(centers[:, None] - centers[None], axis=-1)',
  '        overlap = np.maximum(0, radii[:, None] + radii[None] - d)',
  '        np.fill_diagonal(overlap, 0)',
  '        centers += lr * (overlap[..., None] * (centers[:, None] - centers[None])).sum(1)',
  '        radii = np.clip(radii * (1 + growth), 0, None)',
  '    return centers, radii',
  'function evaluate(candidate: Candidate): number {',
  '  const penalty = candidate.overlaps.reduce((a, b) => a + b, 0);',
  '  return candidate.radii.reduce((a, r) => a + r, 0) - 10 * penalty;',
  '}',
];

function prose(next: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(next() * WORDS.length)]!);
  return out.join(' ');
}

function code(next: () => number, lines: number): string {
  return Array.from({ length: lines }, () => CODE_LINES[Math.floor(next() * CODE_LINES.length)]!).join('\n');
}

/**
 * LLM-call log events of a few KB each, like an evolution run produces: a system prompt, a user
 * prompt with the current program, an answer with prose and a code block, and metadata.
 */
export function llmLogPool(seed: number, size: number, now = Date.now()): LogLlmInteractionInput[] {
  const next = rng(seed);
  const runs = Array.from({ length: 5 }, () => `run_${uuidFrom(next).slice(0, 8)}`);
  return Array.from({ length: size }, (_, i) => ({
    timestamp: now - size + i,
    model: ['claude-3-5-sonnet-20241022', 'gpt-4o-2024-08-06', 'gemini-1.5-pro'][i % 3]!,
    messages: [
      { role: 'system', content: `You are an expert optimisation engineer. ${prose(next, 60)}` },
      { role: 'user', content: `Improve the program below. Current fitness ${next().toFixed(4)}. ${prose(next, 40)}\n\`\`\`python\n${code(next, 20 + Math.floor(next() * 20))}\n\`\`\`` },
    ],
    response: `${prose(next, 80 + Math.floor(next() * 80))}\n\`\`\`python\n${code(next, 15 + Math.floor(next() * 20))}\n\`\`\`\n${prose(next, 30)}`,
    cost: Math.round(next() * 5_000) / 100_000,
    execution_time: Math.round(next() * 30_000) / 1_000,
    metadata: { task: 'circle_packing', generation: Math.floor(i / 20), mutation_type: ['diff', 'full', 'crossover'][i % 3], prompt_tokens: 800 + Math.floor(next() * 1500), completion_tokens: 300 + Math.floor(next() * 1200) },
    run_id: runs[i % runs.length]!,
  }));
}
