import { describe, expect, it } from 'vitest';
import { summaryRows, type Figures } from '../../bench/report.js';

/** Only what the SDK goal reads: the SDK's rate and ProducerPerformance's. */
const figures = (sdk: number, perf: number) =>
  ({
    producerCost: { eventsPerSec: sdk, latencyMsPerCall: {}, producerOptions: { client: 'platformatic' } },
    kafkaProducerPerf: { recordsPerSec: perf },
  }) as unknown as Figures;

const verdict = (rows: [string, string, string][], name: string) => rows.find((r) => r[0].startsWith(name))!;

describe('the benchmark summary', () => {
  it('judges a full run against the goal: met at or above 0.5, NOT met below', () => {
    expect(verdict(summaryRows(figures(60, 100)), 'GOAL producer SDK').slice(1)).toEqual(['0.6', 'met']);
    expect(verdict(summaryRows(figures(40, 100)), 'GOAL producer SDK').slice(1)).toEqual(['0.4', 'NOT met']);
    expect(verdict(summaryRows(figures(40, 100)), 'GOAL drain / native')[2]).toBe('not measured');
    // The SDK's row names the client it measured (the SDK's default).
    expect(verdict(summaryRows(figures(60, 100)), 'Producer SDK (')[0]).toBe('Producer SDK (default client platformatic), cost events');
  });

  it('prints the ratios of a quick run but judges none of them (its sizes are too small)', () => {
    const rows = summaryRows(figures(60, 100), { quick: true });
    expect(verdict(rows, 'GOAL producer SDK').slice(1)).toEqual(['0.6', 'not judged (quick run: sizes too small)']);
    const judged = rows.filter((r) => /GOAL|target/.test(r[0])).map((r) => r[2]);
    expect(judged.length).toBeGreaterThanOrEqual(8);
    expect(new Set(judged)).toEqual(new Set(['not judged (quick run: sizes too small)']));
  });
});
