import { setMaxListeners } from 'node:events';
/**
 * The exactly-once protocol of one topic-partition, in one place: what is pending, what to
 * re-form after a crash or a rebalance, what to commit and when, what to forget. No I/O and no
 * timers: the stages do the I/O and tell the ledger what happened; the clock is passed in.
 *
 * Why a protocol at all: ClickHouse drops a repeated insert only when it carries the same
 * insert_deduplication_token. If a worker dies (or loses the partition) after an insert but
 * before committing past it, the next owner re-reads from the committed offset; batching
 * depends on timing and configuration, so it would cut different batches, the tokens would
 * differ and the rows would land twice. So the range about to be inserted is made durable
 * first, and the next owner re-forms exactly that range before anything else.
 *
 * Where it is durable: in Kafka itself, as the metadata of the partition's committed offset,
 * not in Redis. Before an insert the unchanged position is committed again with metadata
 * naming the range (`beforeInsert`); after the insert, `lastOffset + 1` is committed with the
 * next sealed range's name if one is already waiting, else none (`afterInsert`). The committed
 * offset and its metadata are written in one OffsetCommit, so they can never disagree, and a
 * new owner reads both with one OffsetFetch (`assigned`). One range per partition is enough:
 * a partition has at most one insert in flight, and an insert starts only after the previous
 * one committed, so the committed offset is always the first offset of the only range that may
 * have landed without being committed.
 *
 * Tokens name the data, not only its offsets (`tokenOf`): a topic deleted and created again
 * starts its offsets at 0 and Kafka drops the group's offsets with it, so offsets alone would
 * repeat old tokens and ClickHouse would drop the new rows as repeats. The range's first and
 * last Kafka record timestamps go into the token and the metadata.
 */

/** A batch's identity: its offsets and the Kafka timestamps of its first and last message. */
export interface LedgerRange {
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** Kafka record timestamp (epoch ms) of the message at firstOffset. */
  readonly firstTimestamp: number;
  /** Kafka record timestamp (epoch ms) of the message at lastOffset. */
  readonly lastTimestamp: number;
}

/** An offset commit the caller must send: `offset` is the next offset to read. */
export interface OffsetCommit {
  readonly offset: number;
  readonly metadata: string;
}

/**
 * The broker's `offset.metadata.max.bytes` default; a longer metadata fails the commit with
 * OFFSET_METADATA_TOO_LARGE. Ours is below 100 bytes (see encodeRange), checked at encoding.
 */
export const MAX_METADATA_BYTES = 4_096;

const METADATA_PREFIX = 'ingest/1 ';
const METADATA_PATTERN = /^ingest\/1 (\d+)-(\d+) (-?\d+)-(-?\d+)$/;

/** The commit metadata naming a range: `ingest/1 first-last firstTs-lastTs`. */
export function encodeRange(r: LedgerRange): string {
  const text = `${METADATA_PREFIX}${r.firstOffset}-${r.lastOffset} ${ts(r.firstTimestamp)}-${ts(r.lastTimestamp)}`;
  if (Buffer.byteLength(text) > MAX_METADATA_BYTES) throw new Error(`offset metadata of ${Buffer.byteLength(text)} bytes exceeds ${MAX_METADATA_BYTES}`);
  return text;
}

/** The range a commit's metadata names, or undefined (none, another tool's metadata, a malformed one). */
export function decodeRange(metadata: string | null | undefined): LedgerRange | undefined {
  const m = metadata ? METADATA_PATTERN.exec(metadata) : null;
  if (!m) return undefined;
  const [firstOffset, lastOffset, firstTimestamp, lastTimestamp] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  if (!(lastOffset >= firstOffset) || !Number.isSafeInteger(lastOffset)) return undefined;
  return { firstOffset, lastOffset, firstTimestamp, lastTimestamp };
}

/** Deduplication token of a range: `topic/partition/first-last/firstTs-lastTs`. */
export function tokenOf(topic: string, partition: number, r: LedgerRange): string {
  return `${topic}/${partition}/${r.firstOffset}-${r.lastOffset}/${ts(r.firstTimestamp)}-${ts(r.lastTimestamp)}`;
}

/** Timestamps are integers in Kafka; a missing one (NaN in tests) is written as -1. */
const ts = (t: number): number => (Number.isFinite(t) ? Math.trunc(t) : -1);

const sameRange = (a: LedgerRange | undefined, b: LedgerRange): boolean =>
  !!a && a.firstOffset === b.firstOffset && a.lastOffset === b.lastOffset && ts(a.firstTimestamp) === ts(b.firstTimestamp) && ts(a.lastTimestamp) === ts(b.lastTimestamp);

/** What BatchStage must do with its open batch before appending a message (see cutBefore). */
export type Cut = 'none' | 'seal';

/** What Kafka holds for a partition: its committed offset (-1: none) and that commit's metadata. */
export interface CommittedOffset {
  readonly offset: number;
  readonly metadata: string | null;
}

/**
 * The protocol of one topic-partition for ONE assignment: built when the partition is assigned
 * to this member (or its log is replaced under it), revoked when it is not ours any more. Like
 * kafkajs's OffsetManager (a fresh one at every group sync) and arroyo's strategy (rebuilt at
 * every assignment), nothing of an old assignment survives into a new one, so there are no
 * epochs, reset counters or "still current?" closures: a batch is stale if and only if the
 * ledger it was sealed under is revoked.
 *
 * Life of one ledger, as the caller reports it, top to bottom:
 *
 *   new PartitionLedger(committed)  what Kafka holds for the partition when it became ours, and
 *                                   which log of the topic that is (its topic id)
 *   fetched(first, last) → bool     kafkajs handed us these offsets; false: the log was replaced
 *   skips(offset)                   below the committed offset: durable already, not batched again
 *   cutBefore / endsReplay          cut points while messages are batched (hot path: cheap)
 *   sealed(range)                   a batch was sealed, in offset order
 *   beforeInsert(range) → commit?   send this commit (if any) before inserting, then didCommit
 *   afterInsert(range) → commit     send this once the range is durable, then didCommit
 *   didCommit(commit)               Kafka acknowledged that commit (verified by the caller)
 *   abandon()                       a batch was given up (a stop interrupted it): nothing later
 *                                   may insert or commit under this ledger
 *   stopRetrying()                  a stop: retry loops under this ledger give up (signal)
 *   revoke()                        no longer ours (rebalance, log replaced, stop, crash): no
 *                                   commit may be sent under this ledger any more, retried
 *                                   sends included (see commit-offsets.ts fencedPartition)
 *
 * No I/O and no timers; the clock is injected.
 */
export class PartitionLedger {
  /**
   * The next offset Kafka holds as committed for the group, as far as this assignment knows; -1
   * none. Offsets below it are durable (commits follow the inserts) and are skipped: kafkajs may
   * fetch some of them again (its fetch position for a new generation can come from a read of
   * the committed offsets taken before a commit in flight at the rebalance landed).
   */
  committed: number;
  /** The range named by the metadata of the committed offset. */
  private journaled: LedgerRange | undefined;
  /**
   * The range to re-form exactly before anything else: what the metadata named when the
   * partition was assigned. Undefined once formed, once passed, or when there was none. Read
   * on every message by BatchStage, so the common case (undefined) costs one field load.
   */
  replay: LedgerRange | undefined;
  /** Sealed ranges not yet committed past, oldest first (the first may be inserting). */
  private readonly sealedRanges: LedgerRange[] = [];
  /** Highest offset kafkajs handed us under this assignment (-1: none yet). */
  private highestFetched = -1;
  private revokedFlag = false;
  private abandonedFlag = false;
  /** Aborted at revoke() and stopRetrying(): the retry loops of this assignment's batches give up. */
  private readonly retries = quietController();
  /** When the ledger last changed (the injected clock), for "no progress since" diagnostics. */
  changedAt: number;

  /**
   * The partition was assigned to us; Kafka holds `committed.offset` (-1: none) with
   * `committed.metadata`. A range named there starting at the committed offset may have landed
   * in ClickHouse without being committed past: it is re-formed exactly (`replay`), so its
   * token matches and a repeated insert is dropped. A range that does not start at the
   * committed offset is another tool's or an older protocol's: ignored.
   */
  constructor(
    readonly topic: string,
    readonly partition: number,
    committed: CommittedOffset = { offset: -1, metadata: null },
    private readonly clock: () => number = Date.now,
    /**
     * The id Kafka gave the topic (undefined: no such topic) when this assignment started: the
     * log its offsets belong to. A commit is sent only while the topic still has this id
     * (topic-ids.ts), so an insert of a deleted log never commits onto its successor.
     */
    readonly topicId?: string,
  ) {
    this.committed = committed.offset;
    this.journaled = decodeRange(committed.metadata);
    this.replay = this.journaled && this.journaled.firstOffset === committed.offset ? this.journaled : undefined;
    this.changedAt = clock();
  }

  /**
   * kafkajs handed us `first..last`. Under one assignment our fetch position only moves forward
   * (every fetched offset is resolved), so offsets at or below ones already handed to us mean
   * the partition's log was replaced (the topic deleted and created again, or truncated):
   * returns false, and the caller revokes this ledger and starts the partition afresh.
   */
  fetched(first: number, last: number): boolean {
    if (first <= this.highestFetched) return false;
    this.highestFetched = last;
    return true;
  }

  /** True for an offset below the committed offset: already durable, not batched again. */
  skips(offset: number): boolean {
    return offset < this.committed;
  }

  /**
   * Before a message at `offset` joins the open batch that starts at `openFirst` (undefined:
   * no open batch): must that batch be sealed first? Only while a replay range is pending:
   * the batch before the range ends where the range starts, and a batch holding the range
   * ends at its last offset. Outside the range the size and age limits apply as always, so a
   * range ahead of the fetch position never stops other seals.
   */
  cutBefore(offset: number, openFirst: number | undefined): Cut {
    const r = this.replay;
    if (!r) return 'none';
    if (offset > r.lastOffset) {
      // Passed without being formed (its messages were deleted by retention, or skipped):
      // it can no longer be re-formed, and nothing of it is being batched now.
      this.replay = undefined;
      return openFirst !== undefined && openFirst === r.firstOffset ? 'seal' : 'none';
    }
    if (offset === r.firstOffset) return openFirst === undefined ? 'none' : 'seal';
    if (offset > r.firstOffset && openFirst !== r.firstOffset) {
      // The range's first message never reached this batch: it cannot be re-formed exactly.
      this.replay = undefined;
    }
    return 'none';
  }

  /** True when the open batch starting at `openFirst` is the replay range being re-formed: no size or age seal applies to it. */
  isReplaying(openFirst: number): boolean {
    return this.replay !== undefined && this.replay.firstOffset === openFirst;
  }

  /**
   * True when a message at `offset` belongs to the range being re-formed. The memory budget
   * admits such a message whatever it holds: a re-formed range can only complete by taking all
   * of its messages, and ranges of several partitions waiting for each other's memory would
   * never seal (a lower budget after a restart than when the ranges were cut). Bounded: one
   * range per partition, each as large as the limits were when it was cut.
   */
  inReplay(offset: number): boolean {
    const r = this.replay;
    return r !== undefined && offset >= r.firstOffset && offset <= r.lastOffset;
  }

  /** After a message at `offset` joined the batch starting at `openFirst`: does the batch now hold the whole replay range (seal it now)? */
  endsReplay(offset: number, openFirst: number): boolean {
    const r = this.replay;
    if (!r || r.firstOffset !== openFirst || offset < r.lastOffset) return false;
    this.replay = undefined;
    return true;
  }

  /** A batch was sealed (in offset order). */
  sealed(range: LedgerRange): void {
    this.sealedRanges.push(range);
    this.changedAt = this.clock();
  }

  /**
   * The commit that must be acknowledged before `range` is inserted, or undefined when Kafka
   * already names it (the previous batch's afterInsert carried it). Re-commits the position
   * with the range's name; the position moves only if a previous afterInsert failed, and then
   * only past ranges that landed (inserts of a partition run in order).
   */
  beforeInsert(range: LedgerRange): OffsetCommit | undefined {
    if (this.committed === range.firstOffset && sameRange(this.journaled, range)) return undefined;
    return { offset: range.firstOffset, metadata: encodeRange(range) };
  }

  /**
   * The commit to send once `range` is durable (inserted, or its poison letters written): past
   * its last offset, naming the next sealed range when one is already waiting, so that range's
   * insert needs no commit of its own.
   */
  afterInsert(range: LedgerRange): OffsetCommit {
    const i = this.sealedRanges.findIndex((r) => r.firstOffset === range.firstOffset);
    const next = i >= 0 ? this.sealedRanges[i + 1] : undefined;
    return { offset: range.lastOffset + 1, metadata: next && next.firstOffset === range.lastOffset + 1 ? encodeRange(next) : '' };
  }

  /**
   * Kafka acknowledged `commit` (the caller verified that the commit was really sent: kafkajs
   * returns without sending while its runner is stopping). Ranges wholly below the committed
   * offset are forgotten here, and only here: a commit that did not happen forgets nothing.
   */
  didCommit(commit: OffsetCommit): void {
    this.committed = commit.offset;
    this.journaled = decodeRange(commit.metadata);
    while (this.sealedRanges.length > 0 && this.sealedRanges[0]!.lastOffset < commit.offset) this.sealedRanges.shift();
    this.changedAt = this.clock();
  }

  /** The range named in Kafka now (tests, diagnostics). */
  get pending(): LedgerRange | undefined {
    return this.journaled;
  }

  /** Sealed ranges not yet committed past (tests, diagnostics). */
  get waiting(): readonly LedgerRange[] {
    return this.sealedRanges;
  }

  /**
   * A batch under this ledger was given up without being inserted or committed (a stop
   * interrupted its retries): a later batch must not commit past it, that would skip its rows.
   * Kafka re-delivers them all to whoever owns the partition next.
   */
  abandon(): void {
    this.abandonedFlag = true;
    this.changedAt = this.clock();
  }

  /** True once a batch was given up: nothing more inserts or commits under this ledger. */
  get abandoned(): boolean {
    return this.abandonedFlag;
  }

  /** A stop: the retry loops of this ledger's batches give up at their next failure (each batch still gets one attempt). */
  stopRetrying(): void {
    this.retries.abort();
  }

  /** Aborted when this ledger's retries must give up (a stop or a revocation). */
  get signal(): AbortSignal {
    return this.retries.signal;
  }

  /**
   * The partition is no longer ours under this assignment (a rebalance, its log replaced, the
   * process stopping or crashed): another member may commit now, so nothing may be sent under
   * this ledger any more. Kafka still holds the truth; the next assignment reads it again.
   */
  revoke(): void {
    this.revokedFlag = true;
    this.retries.abort();
    this.changedAt = this.clock();
  }

  /** True once revoked: batches sealed under this ledger are stale (no insert, no commit). */
  get revoked(): boolean {
    return this.revokedFlag;
  }
}

/**
 * An AbortController whose signal takes any number of listeners: every insert, letter write and
 * commit of the assignment's batches waits on it at once (dozens while a broker is down), each
 * removing its listener when done, so Node's warning at 11 ("possible memory leak") is noise.
 */
function quietController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
