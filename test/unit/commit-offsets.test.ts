import { describe, expect, it } from 'vitest';
import { CommitStage, type OffsetCommitter } from '../../consumers/commit-offsets.js';
import { encodeRange, PartitionLedger } from '../../consumers/partition-ledger.js';
import { InsertBody } from '../../consumers/insert-body.js';
import { BatchAbandoned, type Batch } from '../../consumers/types.js';
import { createLogger } from '../../lib/logger.js';
import { createWorkerMetrics } from '../../lib/metrics.js';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';

const backoff = { initialBackoffMs: 1, maxBackoffMs: 2 };

function batch(ledger: PartitionLedger, first: number, last: number, opts: { poisonWrites?: Promise<unknown>[] } = {}): Batch {
  return {
    topic: 't', partition: 0, eventType: costMetrics, firstOffset: first, lastOffset: last, firstTimestamp: first, lastTimestamp: last, ledger,
    rows: new InsertBody('t', 0).finish(), bytes: 0, messages: 0, reason: 'rows', poisonWrites: opts.poisonWrites ?? [],
  };
}

describe('CommitStage', () => {
  const log = createLogger({}, 'silent');

  it('commits past the range after the poison letters are durable, naming the next sealed range', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null }, () => 0);
    const b1 = batch(ledger, 0, 9);
    const b2 = batch(ledger, 10, 19);
    ledger.sealed(b1);
    ledger.sealed(b2);
    const commits: Array<[number, string, string]> = [];
    let letterWritten = false;
    const letter = new Promise((r) => setTimeout(r, 20)).then(() => (letterWritten = true));
    const stage = new CommitStage(async (_t, _p, next, metadata, purpose) => {
      expect(letterWritten).toBe(true);
      commits.push([next, metadata, purpose]);
    }, backoff, createWorkerMetrics(), log);
    await stage.submit({ ...b1, poisonWrites: [letter] });
    expect(commits).toEqual([[10, encodeRange(b2), 'advance']]);
    // b2's insert needs no commit of its own: Kafka already names it.
    expect(ledger.beforeInsert(b2)).toBeUndefined();
  });

  it('does not commit a batch sealed before a rebalance', async () => {
    const revoked = new PartitionLedger('t', 0);
    revoked.revoke();
    const commits: number[] = [];
    const stage = new CommitStage(async (_t, _p, next) => void commits.push(next), backoff, createWorkerMetrics(), log);
    await stage.submit(batch(revoked, 0, 9));
    expect(commits).toEqual([]);
    await stage.submit(batch(new PartitionLedger('t', 0), 0, 9));
    expect(commits).toEqual([10]);
  });

  it('retries a failed commit until Kafka takes it, and records only the acknowledged one', async () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: encodeRange({ firstOffset: 0, lastOffset: 9, firstTimestamp: 0, lastTimestamp: 9 }) });
    let calls = 0;
    const commit: OffsetCommitter = async () => {
      if (++calls < 3) throw new Error('REBALANCE_IN_PROGRESS');
    };
    await new CommitStage(commit, backoff, createWorkerMetrics(), log).submit(batch(ledger, 0, 9));
    expect(calls).toBe(3);
    expect(ledger.committed).toBe(10);
    expect(ledger.pending).toBeUndefined();
  });

  it('a commit that keeps failing until a stop aborts it gives the batch up and forgets nothing', async () => {
    const named = encodeRange({ firstOffset: 0, lastOffset: 9, firstTimestamp: 0, lastTimestamp: 9 });
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: named });
    const commit: OffsetCommitter = async () => {
      ledger.stopRetrying();
      throw new Error('kafkajs consumer is not running: offset commit not sent');
    };
    await expect(new CommitStage(commit, backoff, createWorkerMetrics(), log).submit(batch(ledger, 0, 9))).rejects.toBeInstanceOf(BatchAbandoned);
    expect(ledger.committed).toBe(0);
    expect(ledger.pending).toEqual({ firstOffset: 0, lastOffset: 9, firstTimestamp: 0, lastTimestamp: 9 });
  });
});
