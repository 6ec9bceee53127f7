import { describe, expect, it } from 'vitest';
import { MemoryBatchJournal } from '../../consumers/batch-journal.js';
import { CommitStage } from '../../consumers/commit-offsets.js';
import { TsvBody } from '../../consumers/tsv-body.js';
import type { Batch } from '../../consumers/types.js';
import { createLogger } from '../../lib/logger.js';
import { createWorkerMetrics } from '../../lib/metrics.js';
import { costMetrics } from '../../schemas/cost-metrics.js';

const batch = (first: number, last: number, epoch = 0, poisonWrites: Promise<unknown>[] = []): Batch => ({
  topic: 't', partition: 0, eventType: costMetrics, firstOffset: first, lastOffset: last, rows: new TsvBody('t', 0).finish(), bytes: 0, messages: 0, reason: 'rows', poisonWrites, epoch,
});

describe('CommitStage', () => {
  const log = createLogger({}, 'silent');

  it('commits the next offset after the poison letters are durable, then forgets the journaled range', async () => {
    const journal = new MemoryBatchJournal();
    await journal.record('t', 0, { firstOffset: 0, lastOffset: 9 });
    const commits: number[] = [];
    let letterWritten = false;
    const letter = new Promise((r) => setTimeout(r, 20)).then(() => (letterWritten = true));
    const stage = new CommitStage(async (_t, _p, next) => {
      expect(letterWritten).toBe(true);
      commits.push(next);
    }, journal, createWorkerMetrics(), log);
    await stage.submit(batch(0, 9, 0, [letter]));
    expect(commits).toEqual([10]);
    expect(await journal.pending('t', 0, 0)).toEqual([]);
  });

  it('does not commit a batch sealed before a rebalance, and keeps its range journaled', async () => {
    const journal = new MemoryBatchJournal();
    await journal.record('t', 0, { firstOffset: 0, lastOffset: 9 });
    const commits: number[] = [];
    let epoch = 1;
    const stage = new CommitStage(async (_t, _p, next) => void commits.push(next), journal, createWorkerMetrics(), log, (b) => b.epoch !== epoch);
    await stage.submit(batch(0, 9, 0));
    expect(commits).toEqual([]);
    expect(await journal.pending('t', 0, 0)).toEqual([{ firstOffset: 0, lastOffset: 9 }]);
    epoch = 0;
    await stage.submit(batch(0, 9, 0));
    expect(commits).toEqual([10]);
  });

  it('a failed commit keeps the range journaled', async () => {
    const journal = new MemoryBatchJournal();
    await journal.record('t', 0, { firstOffset: 0, lastOffset: 9 });
    const stage = new CommitStage(async () => {
      throw new Error('REBALANCE_IN_PROGRESS');
    }, journal, createWorkerMetrics(), log);
    await stage.submit(batch(0, 9));
    expect(await journal.pending('t', 0, 0)).toHaveLength(1);
  });
});
