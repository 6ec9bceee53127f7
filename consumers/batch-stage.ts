import type { Config } from '../lib/config.js';
import type { FlushReason, WorkerMetrics } from '../lib/metrics.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';
import type { MemoryBudget } from './memory-budget.js';
import { PartitionLedger, type CommittedOffset } from './partition-ledger.js';
import { InsertBody, type BodyFormat } from './insert-body.js';
import { BatchAbandoned, MessageRejected, tpKey, type Batch } from './types.js';

export type { CommittedOffset } from './partition-ledger.js';

/** The next stage takes a sealed batch and settles once its offsets are committed (or it failed fatally). */
export interface BatchConsumer {
  submit(batch: Batch): Promise<void>;
}

/**
 * Memory a buffered message costs, estimated: its row in the insert body (RowBinary or
 * TabSeparated, at most 1.1 to 1.4x the Avro bytes for the shipped event types) with the slack of buffers sized ahead (a quarter more than the
 * partition's last batch, or doubling), and three bookkeeping slots per row (see insert-body.ts).
 */
export function memoryCost(bytes: number, messages = 1): number {
  return 3 * bytes + 64 * messages;
}

interface OpenBatch {
  firstOffset: number;
  lastOffset: number;
  body: InsertBody;
  bytes: number;
  messages: number;
  /** When it seals by age (see sealTime). */
  sealAt: number;
  poisonWrites: Promise<unknown>[];
  /** Kafka timestamps of the first and last message (part of the batch's identity, see tokenOf). */
  firstTimestamp: number;
  lastTimestamp: number;
  /** Timestamp of the message last offered to `reserve`, taken by the `append` that follows. */
  offeredTimestamp: number;
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly eventType: EventType;
  open: OpenBatch | undefined;
  /** Sealed, waiting for the partition's in-flight insert to finish (at most one). */
  sealed: Batch[];
  inFlight: Promise<void> | undefined;
  /**
   * The partition's protocol for its current assignment (partition-ledger.ts): cut points for a
   * re-formed range, what to commit when, what to skip. Revoked at a rebalance or when the log
   * is replaced; `prepare` builds the next one once the in-flight insert settled.
   */
  ledger: PartitionLedger;
  /** Memory cost of this partition counted in the memory budget (see memoryCost). */
  bytes: number;
  /**
   * The size of this partition's recent bodies, to size the next one's buffer (a body that
   * outgrows its first Buffer is copied into one at `finish`): the largest, decaying by a tenth
   * per batch. The last body alone undersized the next after any smaller batch (an age seal, a
   * replay cut); the decay keeps one large batch from sizing every later small one.
   */
  bodyBytesHint: number;
  /** This partition's age-seal slots recur at this phase (ms) of AGE_STAGGER * maxWaitMs. */
  readonly phase: number;
}

/** Share of the window over which the partitions' age seals are spread (see sealTime). */
export const AGE_STAGGER = 0.25;

/**
 * Batches rows per topic-partition (one partition = one table's rows in offset order) and
 * hands sealed batches to the insert stage, one insert in flight per partition so commits
 * land in offset order. Where a batch must start and end after a crash or a rebalance is the
 * partition's ledger's call (partition-ledger.ts); this stage only asks it.
 *
 * Contract:
 * - `reserve` checks that a message of `bytes` can be taken now, sealing the open batch
 *   first when the message would overflow it (flush before append, as arroyo's Buffer does,
 *   so a refused message can be offered again without duplicating anything), and returns the
 *   open batch's body for the caller to write the message's row into. It throws
 *   MessageRejected when the partition already has a sealed batch waiting or the memory
 *   budget is spent; it never blocks.
 * - `append` accounts for the message after a successful `reserve`: its row (if the caller
 *   wrote one) or, for a poison message, only its offset and dead-letter write.
 * - `poll` seals batches by age, at most `maxWaitMs` after their first message was sent
 *   (see ageStart and sealTime), and starts inserts. Time comes
 *   from the injected clock, so tests need no sleeps.
 * - `join` seals everything and waits until every batch is committed.
 * Offsets: the batch carries the range it may commit; only the commit stage commits.
 */
export class BatchStage {
  private readonly partitions = new Map<string, PartitionState>();
  private failure: unknown;
  /** Wall clock (Kafka record timestamps are wall time) and a monotonic one for the age deadlines. */
  private readonly clocks: { readonly wall: () => number; readonly monotonic: () => number };

  constructor(
    private readonly next: BatchConsumer,
    private readonly config: Config['batch'],
    private readonly budget: MemoryBudget,
    private readonly metrics: Pick<WorkerMetrics, 'flushes'>,
    /**
     * Tests inject one fake clock for both, or each. By default age deadlines run on a monotonic clock, so
     * a wall clock stepped back (NTP) cannot hold a batch open, nor one stepped forward seal early;
     * only the transit of a message (now - its Kafka timestamp) is wall time.
     */
    clock?: (() => number) | { readonly wall: () => number; readonly monotonic: () => number },
    /** The insert bodies' format: what the inserter takes (clickhouse-inserter.ts's bodyFormatOf). */
    private readonly format: BodyFormat = 'TabSeparated',
  ) {
    this.clocks = typeof clock === 'function' ? { wall: clock, monotonic: clock } : (clock ?? { wall: Date.now, monotonic: () => performance.now() });
  }

  /** A fatal error from a later stage; the worker must stop. */
  get failed(): unknown {
    return this.failure;
  }

  /** True when the partition has a current (not revoked) assignment here. */
  isPrepared(topic: string, partition: number): boolean {
    const ledger = this.partitions.get(tpKey(topic, partition))?.ledger;
    return ledger !== undefined && !ledger.revoked;
  }

  /**
   * Starts an assignment of the partition: waits for the insert still in flight under a revoked
   * one (its retries were aborted, so this is short), then reads what Kafka holds for it and
   * builds the assignment's ledger from it, so a range named in the commit's metadata is
   * re-formed exactly. Reading only after the in-flight insert settled matters: its commit, if
   * it landed, is then part of what is read, and what it covered is skipped.
   */
  async prepare(topic: string, partition: number, eventType: EventType, committed: () => Promise<CommittedOffset>, heartbeat: () => Promise<void>, topicId?: string): Promise<PartitionLedger> {
    const key = tpKey(topic, partition);
    for (let inFlight = this.partitions.get(key)?.inFlight; inFlight; inFlight = this.partitions.get(key)?.inFlight) {
      await Promise.race([inFlight.catch(() => undefined), sleep(1_000)]);
      await heartbeat();
    }
    const ledger = new PartitionLedger(topic, partition, await committed(), this.clocks.wall, topicId);
    // Looked up again: the revoked assignment's state is forgotten once its insert settled.
    this.state(topic, partition, eventType).ledger = ledger;
    return ledger;
  }

  /**
   * The partition's log was replaced under this member within one assignment (see
   * PartitionLedger.fetched): what Kafka held for the old log (the committed offset and its
   * metadata) went with it. The old assignment is revoked (an insert in flight finishes but
   * commits nothing), what it buffered is dropped (that log is gone; its uncommitted tail is
   * lost with it), and a new one starts afresh on the log with id `topicId`: nothing committed,
   * no range to re-form, no offset skipped.
   */
  replaceLog(topic: string, partition: number, topicId: string | undefined): PartitionLedger | undefined {
    const state = this.partitions.get(tpKey(topic, partition));
    if (!state) return undefined;
    state.ledger.revoke();
    this.dropBuffered(state);
    state.ledger = new PartitionLedger(topic, partition, undefined, this.clocks.wall, topicId);
    return state.ledger;
  }

  /**
   * A rebalance: every assignment of this member is revoked. kafkajs re-fetches every partition
   * from its committed offset, so anything buffered but not yet being inserted would arrive
   * again: dropped. An insert in flight has its retries aborted and does not commit; its range
   * is named in Kafka's commit metadata, so whoever owns the partition now re-forms it and
   * ClickHouse drops a repeat.
   */
  revokeAll(): void {
    for (const [key, state] of this.partitions) {
      state.ledger.revoke();
      this.dropBuffered(state);
      if (!state.inFlight) this.partitions.delete(key);
    }
  }

  /** The partition's current ledger (the consumer's skip check, tests, diagnostics). */
  ledgerOf(topic: string, partition: number): PartitionLedger | undefined {
    return this.partitions.get(tpKey(topic, partition))?.ledger;
  }

  reserve(topic: string, partition: number, eventType: EventType, offset: number, bytes: number, sentAt = Number.NaN): InsertBody {
    if (this.failure) throw this.failure;
    const state = this.state(topic, partition, eventType);
    const open = state.open;
    const ledger = state.ledger;
    // One field load in the common case: the ledger has a replay range only after a crash or rebalance.
    const cut = ledger.replay === undefined ? 'none' : ledger.cutBefore(offset, open?.firstOffset);
    if (open) {
      if (cut === 'seal') this.seal(state, 'replay');
      else if (ledger.replay !== undefined && ledger.isReplaying(open.firstOffset)) {
        // Re-forming a range exactly: it ends where the ledger says, whatever the limits say now.
      } else if (open.body.count + 1 > this.config.maxRows) this.seal(state, 'rows');
      else if (open.bytes + bytes > this.config.maxBytes) this.seal(state, 'bytes');
    }
    this.pump(state);
    // One batch in flight, up to two sealed behind it, one open: bounded memory per partition.
    if (state.sealed.length >= 2) {
      throw new MessageRejected(`${topic}[${partition}] has a batch waiting for its insert`);
    }
    // A message of a range being re-formed is always admitted (PartitionLedger.inReplay).
    if (!this.budget.admits(eventType.table, memoryCost(bytes)) && !ledger.inReplay(offset)) throw new MessageRejected('memory budget spent');
    state.open ??= { firstOffset: offset, lastOffset: offset, body: new InsertBody(topic, partition, Math.ceil(state.bodyBytesHint * 1.25), this.format), bytes: 0, messages: 0, sealAt: this.sealTime(state, this.ageStart(sentAt)), poisonWrites: [], firstTimestamp: sentAt, lastTimestamp: sentAt, offeredTimestamp: sentAt };
    state.open.offeredTimestamp = sentAt;
    return state.open.body;
  }

  append(topic: string, partition: number, offset: number, bytes: number, poisonWrite?: Promise<unknown>): void {
    const state = this.partitions.get(tpKey(topic, partition))!;
    const open = state.open!;
    if (open.messages === 0) open.firstTimestamp = open.offeredTimestamp;
    open.lastTimestamp = open.offeredTimestamp;
    open.lastOffset = offset;
    if (poisonWrite) open.poisonWrites.push(poisonWrite);
    open.bytes += bytes;
    open.messages++;
    const cost = memoryCost(bytes);
    state.bytes += cost;
    this.budget.acquire(state.eventType.table, cost);
    if (state.ledger.replay !== undefined && state.ledger.endsReplay(offset, open.firstOffset)) this.seal(state, 'replay');
    this.pump(state);
  }

  /**
   * When (monotonic clock) a new batch's age starts, given its first message's send time (Kafka
   * record timestamp, wall clock). A worker that keeps up counts from the send, so `maxWaitMs`
   * bounds send → sealed and the time the message spent reaching the worker does not add to it;
   * at most half the window is credited, so an age-sealed batch still fills for `maxWaitMs / 2`.
   * A message that took the whole window or longer to arrive (a backlog; a producer clock far
   * behind) starts the age at arrival, so catching up fills batches by rows. A producer clock
   * ahead counts as no transit.
   */
  private ageStart(sentAt: number): number {
    const now = this.clocks.monotonic();
    const transit = this.clocks.wall() - sentAt;
    if (!(transit > 0 && transit < this.config.maxWaitMs)) return now;
    return now - Math.min(transit, this.config.maxWaitMs / 2);
  }

  /**
   * When a batch whose age started at `start` seals by age: the last of its partition's slots
   * at or before start + maxWaitMs. The slots recur every AGE_STAGGER * maxWaitMs at a phase of the
   * partition's own. Partitions fed by one steady stream would otherwise open and seal their
   * batches in step, and all their inserts would reach ClickHouse at the same moment, each
   * slowing the others (4 concurrent inserts of 10k rows took 3x as long each as one alone, on
   * the embedded engine). A batch's age at its seal is thus between (1 - AGE_STAGGER) * maxWaitMs
   * and maxWaitMs, never more.
   */
  private sealTime(state: PartitionState, start: number): number {
    const latest = start + this.config.maxWaitMs;
    const period = AGE_STAGGER * this.config.maxWaitMs;
    if (!(period > 0)) return latest;
    return latest - ((((latest - state.phase) % period) + period) % period);
  }

  /** Seals aged batches and starts inserts. Call often (every few ms to maxWaitMs/10). */
  poll(): void {
    const now = this.clocks.monotonic();
    for (const state of this.partitions.values()) {
      if (state.open && now >= state.open.sealAt && !state.ledger.isReplaying(state.open.firstOffset)) this.seal(state, 'age');
      this.pump(state);
    }
  }

  /**
   * Seals every open batch (reason `reason`) and waits until all batches are committed. Each
   * batch gets one attempt: retries are aborted, since a stop must not wait out an outage
   * (what fails stays in Kafka, named by the commit metadata). A partially re-formed replay
   * range is dropped, not sealed: sealed short, it would insert part of a range that may have
   * landed whole under the range's token, under a new token, i.e. as duplicates.
   */
  async join(reason: FlushReason = 'shutdown', timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const state of this.partitions.values()) {
      state.ledger.stopRetrying();
      const open = state.open;
      if (open && open.messages > 0 && state.ledger.isReplaying(open.firstOffset)) {
        this.releaseBytes(state, memoryCost(open.bytes, open.messages));
        state.open = undefined;
      }
      if (state.open && state.open.messages > 0) this.seal(state, reason);
      this.pump(state);
    }
    for (;;) {
      if (this.failure) throw this.failure;
      const busy = [...this.partitions.values()].filter((s) => s.inFlight || (s.sealed.length > 0 && !s.ledger.abandoned && !s.ledger.revoked));
      if (busy.length === 0) return;
      if (Date.now() > deadline) throw new Error(`join timed out with ${busy.length} partitions still inserting`);
      await Promise.race([...busy.map((s) => s.inFlight ?? Promise.resolve()), sleep(50)]).catch(() => undefined);
      for (const s of busy) this.pump(s);
    }
  }

  private state(topic: string, partition: number, eventType: EventType): PartitionState {
    const key = tpKey(topic, partition);
    let state = this.partitions.get(key);
    if (!state) {
      // Golden-ratio steps spread any number of partitions (and topics) evenly over the period.
      const phase = ((((fnv1a(topic) + partition) * 0.6180339887498949) % 1) + 1) % 1;
      state = { topic, partition, eventType, open: undefined, sealed: [], inFlight: undefined, ledger: new PartitionLedger(topic, partition, undefined, this.clocks.wall), bytes: 0, bodyBytesHint: 0, phase: phase * AGE_STAGGER * this.config.maxWaitMs };
      this.partitions.set(key, state);
    }
    return state;
  }

  private seal(state: PartitionState, reason: FlushReason): void {
    const open = state.open;
    if (!open) return;
    state.open = undefined;
    // Opened by a reserve whose message never arrived (the worker is stopping on a fatal error).
    if (open.messages === 0) return;
    state.bodyBytesHint = Math.max(open.body.length, Math.floor(state.bodyBytesHint * 0.9));
    const batch: Batch = {
      topic: state.topic,
      partition: state.partition,
      eventType: state.eventType,
      firstOffset: open.firstOffset,
      lastOffset: open.lastOffset,
      firstTimestamp: open.firstTimestamp,
      lastTimestamp: open.lastTimestamp,
      ledger: state.ledger,
      rows: open.body.finish(),
      bytes: open.bytes,
      messages: open.messages,
      reason,
      poisonWrites: open.poisonWrites,
    };
    state.sealed.push(batch);
    state.ledger.sealed(batch);
    this.metrics.flushes.inc({ table: state.eventType.table, reason });
  }

  private pump(state: PartitionState): void {
    if (state.inFlight || state.sealed.length === 0 || this.failure || state.ledger.abandoned || state.ledger.revoked) return;
    const batch = state.sealed.shift()!;
    state.inFlight = this.next
      .submit(batch)
      .then(
        () => undefined,
        (err) => {
          if (!(err instanceof BatchAbandoned)) {
            this.failure ??= err;
            return;
          }
          // A revoked assignment already dropped what it buffered; its successor starts from Kafka.
          if (batch.ledger.revoked) return;
          // Given up by a stop, not committed: nothing later of this assignment may insert or
          // commit (that would skip its rows). Kafka re-delivers them all.
          batch.ledger.abandon();
          this.dropBuffered(state);
        },
      )
      .finally(() => {
        state.inFlight = undefined;
        this.releaseBytes(state, memoryCost(batch.bytes, batch.messages));
        // A revoked assignment's state outlived it only for this insert: forget it.
        if (state.ledger.revoked && this.partitions.get(tpKey(state.topic, state.partition)) === state && state.sealed.length === 0 && !state.open) this.partitions.delete(tpKey(state.topic, state.partition));
        else this.pump(state);
      });
  }

  /** Drops what the partition buffered but did not hand to the insert stage. */
  private dropBuffered(state: PartitionState): void {
    if (state.open) this.releaseBytes(state, memoryCost(state.open.bytes, state.open.messages));
    for (const b of state.sealed) this.releaseBytes(state, memoryCost(b.bytes, b.messages));
    state.open = undefined;
    state.sealed = [];
  }

  private releaseBytes(state: PartitionState, bytes: number): void {
    state.bytes -= bytes;
    this.budget.release(state.eventType.table, bytes);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 32-bit FNV-1a of a string's UTF-16 code units: a stable per-topic number. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
