import type { Config } from '../lib/config.js';
import type { FlushReason, WorkerMetrics } from '../lib/metrics.js';
import type { EventType } from '../schemas/event-type.js';
import type { OffsetRange } from './batch-journal.js';
import type { MemoryBudget } from './memory-budget.js';
import { TsvBody } from './tsv-body.js';
import { MessageRejected, tpKey, type Batch } from './types.js';

/** The next stage takes a sealed batch and settles once its offsets are committed (or it failed fatally). */
export interface BatchConsumer {
  submit(batch: Batch): Promise<void>;
}

/**
 * Memory a buffered message costs, estimated: its TabSeparated line (1.1 to 1.4x the Avro bytes
 * for the shipped event types) with the slack of buffers sized ahead (a quarter more than the
 * partition's last batch, or doubling), and three bookkeeping slots per row (see tsv-body.ts).
 */
export function memoryCost(bytes: number, messages = 1): number {
  return 3 * bytes + 64 * messages;
}

interface OpenBatch {
  firstOffset: number;
  lastOffset: number;
  body: TsvBody;
  bytes: number;
  messages: number;
  /** When it seals by age (see sealTime). */
  sealAt: number;
  poisonWrites: Promise<unknown>[];
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly eventType: EventType;
  open: OpenBatch | undefined;
  /** Sealed, waiting for the partition's in-flight insert to finish (at most one). */
  sealed: Batch[];
  inFlight: Promise<void> | undefined;
  /** Journaled ranges to re-form exactly (after a crash or rebalance), in offset order. */
  plan: OffsetRange[];
  /** Memory cost of this partition counted in the memory budget (see memoryCost). */
  bytes: number;
  /** False after a rebalance until `prepare` ran for this partition. */
  prepared: boolean;
  /** Next offset known durable and committed by this process; lower offsets are skipped. */
  committedOffset: number;
  /** Body size of the last batch sealed, to size the next one's buffer. */
  lastBodyBytes: number;
  /** This partition's age-seal slots recur at this phase (ms) of AGE_STAGGER * maxWaitMs. */
  readonly phase: number;
}

/** Share of the window over which the partitions' age seals are spread (see sealTime). */
export const AGE_STAGGER = 0.25;

/**
 * Batches rows per topic-partition (one partition = one table's rows in offset order) and
 * hands sealed batches to the insert stage, one insert in flight per partition so commits
 * land in offset order.
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
  /** Incremented at every rebalance; batches sealed before one must not commit after it. */
  epoch = 0;

  constructor(
    private readonly next: BatchConsumer,
    private readonly config: Config['batch'],
    private readonly budget: MemoryBudget,
    private readonly metrics: Pick<WorkerMetrics, 'flushes'>,
    private readonly clock: () => number = Date.now,
  ) {}

  /** A fatal error from a later stage; the worker must stop. */
  get failed(): unknown {
    return this.failure;
  }

  isPrepared(topic: string, partition: number): boolean {
    return this.partitions.get(tpKey(topic, partition))?.prepared ?? false;
  }

  /**
   * Readies a partition after an assignment: waits for its in-flight insert, then takes the
   * journaled ranges to re-form. `fromOffset` is where the fetch resumed (the committed offset).
   */
  async prepare(topic: string, partition: number, eventType: EventType, plan: () => Promise<OffsetRange[]>, heartbeat: () => Promise<void>): Promise<void> {
    const state = this.state(topic, partition, eventType);
    while (state.inFlight) {
      await Promise.race([state.inFlight.catch(() => undefined), sleep(1_000)]);
      await heartbeat();
    }
    state.plan = await plan();
    state.prepared = true;
  }

  /** Offsets below this are already durable here: redelivered messages are skipped. */
  committedOffset(topic: string, partition: number): number {
    return this.partitions.get(tpKey(topic, partition))?.committedOffset ?? -1;
  }

  reserve(topic: string, partition: number, eventType: EventType, offset: number, bytes: number, sentAt = Number.NaN): TsvBody {
    if (this.failure) throw this.failure;
    const state = this.state(topic, partition, eventType);
    const open = state.open;
    if (open) {
      const cut = state.plan[0];
      if (cut && offset > cut.lastOffset) this.seal(state, 'replay');
      else if (cut && offset === cut.firstOffset) this.seal(state, 'replay');
      else if (!cut && open.body.count + 1 > this.config.maxRows) this.seal(state, 'rows');
      else if (!cut && open.bytes + bytes > this.config.maxBytes) this.seal(state, 'bytes');
    }
    this.pump(state);
    // One batch in flight, up to two sealed behind it, one open: bounded memory per partition.
    if (state.sealed.length >= 2) {
      throw new MessageRejected(`${topic}[${partition}] has a batch waiting for its insert`);
    }
    if (!this.budget.admits(eventType.table, memoryCost(bytes))) throw new MessageRejected('memory budget spent');
    state.open ??= { firstOffset: offset, lastOffset: offset, body: new TsvBody(topic, partition, Math.ceil(state.lastBodyBytes * 1.25)), bytes: 0, messages: 0, sealAt: this.sealTime(state, this.ageStart(sentAt)), poisonWrites: [] };
    return state.open.body;
  }

  append(topic: string, partition: number, offset: number, bytes: number, poisonWrite?: Promise<unknown>): void {
    const state = this.partitions.get(tpKey(topic, partition))!;
    while (state.plan[0] && state.plan[0].lastOffset < offset) state.plan.shift();
    const open = state.open!;
    open.lastOffset = offset;
    if (poisonWrite) open.poisonWrites.push(poisonWrite);
    open.bytes += bytes;
    open.messages++;
    const cost = memoryCost(bytes);
    state.bytes += cost;
    this.budget.acquire(state.eventType.table, cost);
    if (state.plan[0] && offset >= state.plan[0].lastOffset) {
      state.plan.shift();
      this.seal(state, 'replay');
    }
    this.pump(state);
  }

  /**
   * When a new batch's age starts, given its first message's send time (Kafka record timestamp).
   * A worker that keeps up counts from the send, so `maxWaitMs` bounds send → sealed and the
   * time the message spent reaching the worker does not add to it; at most half the window is
   * credited, so an age-sealed batch still fills for `maxWaitMs / 2`. A message that took the
   * whole window or longer to arrive (a backlog; a producer clock far behind) starts the age at
   * arrival, so catching up fills batches by rows. A producer clock ahead counts as no transit.
   */
  private ageStart(sentAt: number): number {
    const now = this.clock();
    const transit = now - sentAt;
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
    const now = this.clock();
    for (const state of this.partitions.values()) {
      if (state.open && now >= state.open.sealAt && state.plan.length === 0) this.seal(state, 'age');
      this.pump(state);
    }
  }

  /**
   * After a rebalance kafkajs re-fetches every partition from its committed offset, so
   * anything buffered but not yet being inserted would arrive again: drop it. Inserts in
   * flight finish; their ranges are journaled, so a re-formed batch deduplicates.
   */
  resetAfterRebalance(): void {
    this.epoch++;
    for (const state of this.partitions.values()) {
      if (state.open) this.releaseBytes(state, memoryCost(state.open.bytes, state.open.messages));
      for (const b of state.sealed) this.releaseBytes(state, memoryCost(b.bytes, b.messages));
      state.open = undefined;
      state.sealed = [];
      state.plan = [];
      state.prepared = false;
    }
    for (const [key, state] of this.partitions) if (!state.inFlight) this.partitions.delete(key);
  }

  /** Seals every open batch (reason `reason`) and waits until all batches are committed. */
  async join(reason: FlushReason = 'shutdown', timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const state of this.partitions.values()) {
      state.plan = [];
      if (state.open && state.open.messages > 0) this.seal(state, reason);
      this.pump(state);
    }
    for (;;) {
      if (this.failure) throw this.failure;
      const busy = [...this.partitions.values()].filter((s) => s.inFlight || s.sealed.length > 0);
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
      state = { topic, partition, eventType, open: undefined, sealed: [], inFlight: undefined, plan: [], bytes: 0, prepared: false, committedOffset: -1, lastBodyBytes: 0, phase: phase * AGE_STAGGER * this.config.maxWaitMs };
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
    state.lastBodyBytes = open.body.length;
    state.sealed.push({
      topic: state.topic,
      partition: state.partition,
      eventType: state.eventType,
      firstOffset: open.firstOffset,
      lastOffset: open.lastOffset,
      rows: open.body.finish(),
      bytes: open.bytes,
      messages: open.messages,
      reason,
      poisonWrites: open.poisonWrites,
      epoch: this.epoch,
    });
    this.metrics.flushes.inc({ table: state.eventType.table, reason });
  }

  private pump(state: PartitionState): void {
    if (state.inFlight || state.sealed.length === 0 || this.failure) return;
    const batch = state.sealed.shift()!;
    state.inFlight = this.next
      .submit(batch)
      .then(
        () => {
          // A batch from before a rebalance did not commit (commit-offsets.ts): its messages
          // are delivered again and re-formed from the journal, so they must not be skipped.
          if (batch.epoch === this.epoch) state.committedOffset = Math.max(state.committedOffset, batch.lastOffset + 1);
        },
        (err) => {
          this.failure ??= err;
        },
      )
      .finally(() => {
        state.inFlight = undefined;
        this.releaseBytes(state, memoryCost(batch.bytes, batch.messages));
        this.pump(state);
      });
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
