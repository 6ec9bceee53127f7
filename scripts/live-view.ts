import type { WorkerMetrics } from '../lib/metrics.js';

/**
 * The main job's live view of a worker: rows/s landed in ClickHouse, consumer lag, freshness and
 * dead letters, read from the worker's own metrics (the numbers Prometheus scrapes), optionally
 * per event type. On a terminal one line (plus a line per event type when asked) is redrawn in
 * place; when stdout is not a terminal (a pipe, a CI log) a plain line is logged every
 * `logEveryMs` instead, since carriage returns and escape codes would only clutter a log.
 */

export interface LiveSnapshot {
  /** Epoch ms when it was read. */
  at: number;
  /** ingest_rows_inserted_total by table. */
  rows: ReadonlyMap<string, number>;
  /** ingest_consumer_lag_messages summed over partitions, by topic. */
  lag: ReadonlyMap<string, number>;
  /** ingest_freshness_seconds by table (absent until the table has rows). */
  freshness: ReadonlyMap<string, number>;
  /** ingest_dead_letter_depth summed over states (retrying + dead). */
  deadLetters: number;
  /** ingest_poison_messages_total, all topics and reasons. */
  poison: number;
}

export interface LiveType {
  name: string;
  table: string;
  topic: string;
}

async function byLabel(metric: { get(): Promise<{ values: Array<{ labels: Record<string, string | number>; value: number }> }> }, label: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await metric.get()).values) {
    const key = String(v.labels[label] ?? '');
    out.set(key, (out.get(key) ?? 0) + v.value);
  }
  return out;
}

const total = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** Reads a snapshot from a worker's metrics registry (in process; no scrape). */
export async function readSnapshot(metrics: WorkerMetrics, now: number): Promise<LiveSnapshot> {
  return {
    at: now,
    rows: await byLabel(metrics.rowsInserted, 'table'),
    lag: await byLabel(metrics.consumerLag, 'topic'),
    freshness: await byLabel(metrics.freshness, 'table'),
    deadLetters: total(await byLabel(metrics.deadLetterDepth, 'state')),
    poison: total(await byLabel(metrics.poisonMessages, 'topic')),
  };
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const rate = (n: number) => (n >= 100 ? count(n) : n.toFixed(1));
function seconds(s: number | undefined): string {
  if (s === undefined) return '–';
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3_600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3_600).toFixed(1)} h`;
}

/** Rows per second of `table` (or all tables) between two snapshots; 0 for the first. */
function rowsPerSecond(prev: LiveSnapshot | undefined, cur: LiveSnapshot, table?: string): number {
  if (!prev || cur.at <= prev.at) return 0;
  const of = (s: LiveSnapshot) => (table === undefined ? total(s.rows) : (s.rows.get(table) ?? 0));
  return Math.max(0, of(cur) - of(prev)) / ((cur.at - prev.at) / 1000);
}

/**
 * The lines of the view: a summary, then one per event type when `perType`. Freshness shows
 * the freshest and the stalest table: a table that stopped receiving rows shows in the second.
 */
export function formatLive(prev: LiveSnapshot | undefined, cur: LiveSnapshot, types: readonly LiveType[], opts: { perType?: boolean } = {}): string[] {
  const fresh = [...cur.freshness.values()];
  const freshness = fresh.length === 0 ? '–' : fresh.length === 1 ? seconds(fresh[0]) : `${seconds(Math.min(...fresh))} … ${seconds(Math.max(...fresh))}`;
  const lines = [
    `landed ${rate(rowsPerSecond(prev, cur))} rows/s (${count(total(cur.rows))} rows)` +
      ` | lag ${count(total(cur.lag))} msgs | freshness ${freshness}` +
      ` | dead letters ${count(cur.deadLetters)} (poison ${count(cur.poison)})`,
  ];
  if (opts.perType) {
    const width = Math.max(...types.map((t) => t.name.length));
    for (const t of types) {
      lines.push(
        `  ${t.name.padEnd(width)}  ${rate(rowsPerSecond(prev, cur, t.table)).padStart(7)} rows/s  ${count(cur.rows.get(t.table) ?? 0).padStart(9)} rows  lag ${count(cur.lag.get(t.topic) ?? 0).padStart(6)}  freshness ${seconds(cur.freshness.get(t.table))}`,
      );
    }
  }
  return lines;
}

export interface LiveOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Renders successive views: in place on a terminal, as timestamped log lines otherwise. */
export class LiveView {
  private drawn = 0;
  private lastLog = -Infinity;

  constructor(
    private readonly out: LiveOutput,
    private readonly opts: { logEveryMs: number; clock?: () => number } = { logEveryMs: 5_000 },
  ) {}

  get tty(): boolean {
    return this.out.isTTY === true;
  }

  show(lines: readonly string[]): void {
    if (this.tty) {
      // Lines longer than the terminal would wrap, and moving up by our line count would
      // then land inside the previous frame: cut them to the width instead.
      const width = Math.max(20, (this.out.columns ?? 120) - 1);
      const up = this.drawn > 1 ? `\x1b[${this.drawn - 1}A` : '';
      this.out.write(`${up}\r${lines.map((l) => `\x1b[2K${l.length > width ? `${l.slice(0, width - 1)}…` : l}`).join('\n')}`);
      this.drawn = lines.length;
      return;
    }
    const now = (this.opts.clock ?? Date.now)();
    if (now - this.lastLog < this.opts.logEveryMs) return;
    this.lastLog = now;
    const stamp = new Date(now).toISOString().slice(11, 19);
    this.out.write(lines.map((l) => `live ${stamp}  ${l}\n`).join(''));
  }

  /** Leaves the cursor below the view, so what is printed next does not overwrite it. */
  done(): void {
    if (this.tty && this.drawn > 0) this.out.write('\n');
    this.drawn = 0;
  }
}
