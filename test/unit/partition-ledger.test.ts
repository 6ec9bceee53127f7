import { describe, expect, it } from 'vitest';
import { decodeRange, encodeRange, MAX_METADATA_BYTES, PartitionLedger, tokenOf, type LedgerRange } from '../../consumers/partition-ledger.js';

const range = (first: number, last: number, t0 = 1_700_000_000_000 + first, t1 = 1_700_000_000_000 + last): LedgerRange => ({ firstOffset: first, lastOffset: last, firstTimestamp: t0, lastTimestamp: t1 });

describe('PartitionLedger metadata and tokens', () => {
  it('round-trips a range through the commit metadata, well under the broker limit', () => {
    const r = range(9_007_199_254_740_000, 9_007_199_254_740_990, -1, 8_640_000_000_000_000);
    const text = encodeRange(r);
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_METADATA_BYTES / 40);
    expect(decodeRange(text)).toEqual(r);
  });

  it('ignores metadata that is not ours or is malformed', () => {
    for (const m of [null, undefined, '', 'event-id-3', 'ingest/1 9-3 0-0', 'ingest/1 1-2', 'ingest/2 1-2 3-4']) expect(decodeRange(m)).toBeUndefined();
  });

  it('tokens name the data: the same offsets with other timestamps (a recreated topic) give another token', () => {
    const old = tokenOf('t', 0, range(0, 99, 1_000, 2_000));
    expect(old).toBe('t/0/0-99/1000-2000');
    expect(tokenOf('t', 0, range(0, 99, 5_000, 6_000))).not.toBe(old);
    expect(tokenOf('t', 0, range(0, 99, 1_000, 2_000))).toBe(old);
  });
});

describe('PartitionLedger protocol', () => {
  it('walks a partition from assignment through inserts and commits', () => {
    let now = 100;
    const ledger = new PartitionLedger('t', 3, { offset: -1, metadata: null }, () => now);
    expect(ledger.replay).toBeUndefined();
    const a = range(0, 9);
    const b = range(10, 19);
    ledger.sealed(a);
    // Before a's insert: commit the unchanged position (0) naming a.
    const journalA = ledger.beforeInsert(a)!;
    expect(journalA).toEqual({ offset: 0, metadata: encodeRange(a) });
    ledger.didCommit(journalA);
    expect(ledger.beforeInsert(a)).toBeUndefined(); // already named
    ledger.sealed(b);
    // After a's insert: commit past a, naming b (sealed meanwhile), so b needs no journal commit.
    const afterA = ledger.afterInsert(a);
    expect(afterA).toEqual({ offset: 10, metadata: encodeRange(b) });
    now = 200;
    ledger.didCommit(afterA);
    expect(ledger.changedAt).toBe(200);
    expect(ledger.waiting).toEqual([b]);
    expect(ledger.beforeInsert(b)).toBeUndefined();
    // After b, nothing waits: commit past b with no metadata.
    const afterB = ledger.afterInsert(b);
    expect(afterB).toEqual({ offset: 20, metadata: '' });
    ledger.didCommit(afterB);
    expect(ledger.waiting).toEqual([]);
    expect(ledger.pending).toBeUndefined();
  });

  it('a commit that was not acknowledged forgets nothing: the next insert journals again from where Kafka is', () => {
    const ledger = new PartitionLedger('t', 0, { offset: 0, metadata: null });
    const a = range(0, 9);
    const b = range(10, 19);
    ledger.sealed(a);
    ledger.didCommit(ledger.beforeInsert(a)!);
    ledger.sealed(b);
    ledger.afterInsert(a); // sent, but never acknowledged (didCommit not called)
    expect(ledger.committed).toBe(0);
    expect(ledger.waiting).toEqual([a, b]);
    // b's insert must first name b in Kafka (and moves the position past a, which landed).
    expect(ledger.beforeInsert(b)).toEqual({ offset: 10, metadata: encodeRange(b) });
  });

  it('after a crash, re-forms exactly the range the metadata names when it starts at the committed offset', () => {
    const r = range(500, 899);
    const ledger = new PartitionLedger('t', 0, { offset: 500, metadata: encodeRange(r) });
    expect(ledger.replay).toEqual(r);
    expect(ledger.cutBefore(500, undefined)).toBe('none');
    expect(ledger.isReplaying(500)).toBe(true);
    expect(ledger.endsReplay(700, 500)).toBe(false);
    expect(ledger.cutBefore(701, 500)).toBe('none');
    expect(ledger.endsReplay(899, 500)).toBe(true);
    expect(ledger.replay).toBeUndefined();
    expect(ledger.isReplaying(500)).toBe(false);
    // Its insert needs no journal commit: Kafka named it already.
    expect(ledger.beforeInsert(r)).toBeUndefined();
  });

  it('ignores a named range that does not start at the committed offset', () => {
    const ledger = new PartitionLedger('t', 0, { offset: 100, metadata: encodeRange(range(500, 899)) });
    expect(ledger.replay).toBeUndefined();
  });

  it('cuts the batch before the range where the range starts, and gives up a range it cannot form exactly', () => {
    // A range ahead of the fetch position (defensive; not produced by our commits).
    const ledger = new PartitionLedger('t', 0, { offset: 500, metadata: encodeRange(range(500, 599)) });
    expect(ledger.cutBefore(500, 480)).toBe('seal'); // a batch open before the range ends before it
    const missed = new PartitionLedger('t', 0, { offset: 500, metadata: encodeRange(range(500, 599)) });
    expect(missed.cutBefore(520, undefined)).toBe('none'); // its first message never came (deleted)
    expect(missed.replay).toBeUndefined();
    const passed = new PartitionLedger('t', 0, { offset: 500, metadata: encodeRange(range(500, 599)) });
    expect(passed.cutBefore(500, undefined)).toBe('none');
    expect(passed.cutBefore(650, 500)).toBe('seal'); // its last message never came: seal what was formed
    expect(passed.replay).toBeUndefined();
  });

  it('forgets everything it knew at a rebalance: the next assignment is a new ledger that reads Kafka again', () => {
    const ledger = new PartitionLedger('t', 0, { offset: 500, metadata: encodeRange(range(500, 599)) });
    ledger.sealed(range(500, 599));
    ledger.revoke();
    expect({ revoked: ledger.revoked, aborted: ledger.signal.aborted }).toEqual({ revoked: true, aborted: true });
    const next = new PartitionLedger('t', 0);
    expect({ committed: next.committed, replay: next.replay, pending: next.pending, waiting: next.waiting }).toEqual({ committed: -1, replay: undefined, pending: undefined, waiting: [] });
  });
});
