import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../../lib/metrics.js';
import { formatLive, LiveView, readSnapshot, type LiveSnapshot } from '../../scripts/live-view.js';

const types = [
  { name: 'cost_metrics', table: 'cost_metrics_ts', topic: 'ingest.cost_metrics' },
  { name: 'llm_logs', table: 'llm_logs', topic: 'ingest.llm_logs' },
];

function snap(at: number, rows: Record<string, number>, lag: Record<string, number> = {}, freshness: Record<string, number> = {}, deadLetters = 0, poison = 0): LiveSnapshot {
  return { at, rows: new Map(Object.entries(rows)), lag: new Map(Object.entries(lag)), freshness: new Map(Object.entries(freshness)), deadLetters, poison };
}

class Sink {
  text = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns = 200,
  ) {}
  write(t: string) {
    this.text += t;
  }
}

describe('live view lines', () => {
  const a = snap(10_000, { cost_metrics_ts: 1_000, llm_logs: 40 });
  const b = snap(15_000, { cost_metrics_ts: 7_000, llm_logs: 40 }, { 'ingest.cost_metrics': 1_234, 'ingest.llm_logs': 0 }, { cost_metrics_ts: 1.25, llm_logs: 95 }, 2, 3);

  it('summary: rows/s landed between two snapshots, total rows, lag, freshest … stalest table, dead letters', () => {
    expect(formatLive(a, b, types)).toEqual(['landed 1,200 rows/s (7,040 rows) | lag 1,234 msgs | freshness 1.3 s … 1.6 min | dead letters 2 (poison 3)']);
  });

  it('first snapshot: 0 rows/s, no freshness yet shown as a dash', () => {
    expect(formatLive(undefined, snap(0, {}), types)).toEqual(['landed 0.0 rows/s (0 rows) | lag 0 msgs | freshness – | dead letters 0 (poison 0)']);
  });

  it('per event type on request: one line per type with its rows/s, rows, lag and freshness', () => {
    const lines = formatLive(a, b, types, { perType: true });
    expect(lines.slice(1)).toEqual([
      '  cost_metrics    1,200 rows/s      7,000 rows  lag  1,234  freshness 1.3 s',
      '  llm_logs          0.0 rows/s         40 rows  lag      0  freshness 1.6 min',
    ]);
  });

  it('reads the numbers from the worker metrics Prometheus scrapes', async () => {
    const m = createWorkerMetrics(new Registry());
    m.rowsInserted.inc({ table: 'cost_metrics_ts' }, 5);
    m.consumerLag.set({ group: 'g', topic: 'ingest.cost_metrics', partition: '0' }, 3);
    m.consumerLag.set({ group: 'g', topic: 'ingest.cost_metrics', partition: '1' }, 4);
    m.freshness.set({ table: 'cost_metrics_ts' }, 2);
    m.deadLetterDepth.set({ state: 'dead' }, 1);
    m.deadLetterDepth.set({ state: 'retrying' }, 2);
    m.poisonMessages.inc({ topic: 'ingest.cost_metrics', reason: 'undecodable' });
    const s = await readSnapshot(m, 42);
    expect(s).toEqual(snap(42, { cost_metrics_ts: 5 }, { 'ingest.cost_metrics': 7 }, { cost_metrics_ts: 2 }, 3, 1));
  });
});

describe('live view rendering', () => {
  it('on a terminal: redraws in place (carriage return, clear line, cursor up over the previous frame), cut to the width', () => {
    const out = new Sink(true, 30);
    const view = new LiveView(out, { logEveryMs: 5_000 });
    view.show(['one']);
    view.show(['two']);
    expect(out.text).toBe('\r\x1b[2Kone\r\x1b[2Ktwo');
    out.text = '';
    view.show(['a', 'b', 'c']);
    view.show(['d', 'x'.repeat(50), 'f']);
    expect(out.text).toBe(`\r\x1b[2Ka\n\x1b[2Kb\n\x1b[2Kc\x1b[2A\r\x1b[2Kd\n\x1b[2K${'x'.repeat(28)}…\n\x1b[2Kf`);
    view.done();
    expect(out.text.endsWith('\n')).toBe(true);
  });

  it('not a terminal: plain timestamped lines, at most one every logEveryMs, no escape codes', () => {
    let now = Date.UTC(2026, 11, 1, 10, 0, 0);
    const out = new Sink(false);
    const view = new LiveView(out, { logEveryMs: 5_000, clock: () => now });
    view.show(['first', '  detail']);
    now += 1_000;
    view.show(['skipped']);
    now += 4_000;
    view.show(['second']);
    expect(out.text).toBe('live 10:00:00  first\nlive 10:00:00    detail\nlive 10:00:05  second\n');
    expect(out.text).not.toMatch(/[\r\x1b]/);
    view.done();
    expect(out.text.endsWith('second\n')).toBe(true);
  });
});
