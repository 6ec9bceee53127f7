import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Config } from '../lib/config.js';
import { RetriableError } from '../lib/errors.js';
import { consumerRetry } from '../lib/kafka.js';
import { CommitFenced, fencedPartition, type OffsetCommitter } from './commit-offsets.js';
import { CrashedMemberRemoval, type MemberRemover } from './crashed-member.js';
import type { CommittedOffset, PartitionLedger } from './partition-ledger.js';
import { createPipeline, type Pipeline, type PipelineDeps } from './pipeline.js';
import type { TopicIds } from './topic-ids.js';
import { MessageRejected, tpKey } from './types.js';

/** Messages of one fetched kafkajs batch, decoded from `next` on. */
interface FetchedMessages {
  topic: string;
  partition: number;
  /** The assignment they were fetched under: dropped once it is revoked. */
  ledger: PartitionLedger;
  messages: KafkaMessage[];
  next: number;
  bytes: number;
  pause: () => () => void;
}

/** Fetched message bytes held ahead of the decoder before kafkajs is made to wait. */
const MAX_FETCHED_BYTES = 8 * 1024 * 1024;
/** Messages decoded before the event loop gets a turn. */
const DECODE_SLICE = 4096;
/** First and longest wait of a partition whose new schema ids the registry could not resolve. */
const REGISTRY_RETRY_MS = 250;
const REGISTRY_RETRY_MAX_MS = 5_000;

/** Reads what Kafka holds for the group on one topic: committed offset and metadata per partition. */
export type CommittedOffsetReader = (topic: string) => Promise<ReadonlyMap<number, CommittedOffset>>;

/**
 * One consumer-group member: a kafkajs consumer feeding its own pipeline.
 *
 * kafkajs runs with autoCommit off: `resolveOffset` only moves the fetch position, and
 * offsets are committed by the pipeline (partition-ledger.ts says what and when). When a
 * partition is assigned, its committed offset and metadata are read back (`readCommitted`)
 * so a range named there is re-formed exactly before anything else.
 *
 * Fetching overlaps decoding. kafkajs fetches, hands the response to `eachBatch`, waits for it,
 * and only then fetches again; decoding inside `eachBatch` would leave the JS thread idle for
 * every fetch round trip and gzip inflate. So `eachBatch` only queues the fetched messages
 * (resolving their offsets) and returns; they are decoded in slices while kafkajs fetches the
 * next ones. The queue is one fetch deep (MAX_FETCHED_BYTES), after which `eachBatch` waits.
 * On backpressure the refused message and the rest of its partition stay queued, the partition
 * is paused (kafkajs stops fetching it), and decoding resumes from that message when memory is
 * released. Queued messages are dropped at a rebalance or a stop: not committed, they are
 * fetched again from the committed offset by whichever member owns the partition next.
 */
export class ConsumerMember {
  private consumer: Consumer | undefined;
  private pipeline: Pipeline | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /**
   * Partitions paused because the batch stage refused their next fetched message, with the
   * function that resumes each in kafkajs. Their queued messages wait until memory is released.
   */
  private readonly paused = new Map<string, () => void>();
  private stopping = false;
  private joined = false;
  private unsubscribe: (() => void) | undefined;
  /** Fetched, not yet decoded, oldest first. */
  private readonly fetched: FetchedMessages[] = [];
  private fetchedBytes = 0;
  private decodeScheduled = false;
  private roomWaiter: (() => void) | undefined;
  /** `isRunning` of the kafkajs runner that last called eachBatch (see the committer in start). */
  private runnerRunning: () => boolean = () => false;
  /** Committed offsets read this generation, one read per topic; replaced at every group join. */
  private committedReads = new Map<string, Promise<ReadonlyMap<number, CommittedOffset>>>();
  /** Topic ids read at this generation's group join, before kafkajs fetched anything of it (topicIdOf). */
  private topicIdReads = new Map<string, Promise<string | undefined>>();
  /**
   * The id of the log this member last read each partition from (by tpKey), across generations:
   * a partition assigned again on another log was deleted and created again meanwhile
   * (replacedSinceLastAssignment).
   */
  private readonly logIds = new Map<string, string>();
  assigned: Record<string, number[]> = {};
  /**
   * Partitions waiting for the schema registry (a fetched batch has a schema id the registry
   * could not resolve), with the timer that resumes each, and the failed attempts in a row.
   */
  private readonly registryWaits = new Map<string, NodeJS.Timeout>();
  private readonly registryAttempts = new Map<string, number>();
  /** Removes our old member id from the group when kafkajs restarts us as a new member (crashed-member.ts). */
  private readonly crashedMember: CrashedMemberRemoval | undefined;

  constructor(
    private readonly id: number,
    private readonly kafka: Kafka,
    private readonly config: Pick<Config, 'consumer' | 'batch'> & { kafka: Pick<Config['kafka'], 'retryMaxMs'> },
    private readonly deps: Omit<PipelineDeps, 'commit'>,
    private readonly onFatal: (err: unknown) => void,
    /** Which log of each topic is current: checked before every offset commit (topic-ids.ts). */
    private readonly topicIds: TopicIds,
    private readonly wrapCommitter: (inner: OffsetCommitter) => OffsetCommitter = (c) => c,
    private readonly readCommitted: CommittedOffsetReader = async () => new Map(),
    removeMember?: MemberRemover,
  ) {
    this.crashedMember =
      removeMember &&
      new CrashedMemberRemoval(removeMember, (memberId, err) =>
        err === undefined
          ? this.deps.log.info("removed the crashed consumer's old member from the group", { member: this.id, memberId })
          : this.deps.log.warn("could not remove the crashed consumer's old member from the group", { member: this.id, memberId, err: err as Error }),
      );
  }

  get ready(): boolean {
    return this.joined && !this.stopping;
  }

  async start(topics: string[]): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.config.consumer.groupId,
      sessionTimeout: this.config.consumer.sessionTimeoutMs,
      rebalanceTimeout: this.config.consumer.rebalanceTimeoutMs,
      heartbeatInterval: Math.min(this.config.consumer.heartbeatIntervalMs, Math.floor(this.config.consumer.sessionTimeoutMs / 3)),
      allowAutoTopicCreation: false,
      // Few, short retries: a consumer that loses a broker restarts, and learns the new
      // leaders and coordinator, within seconds (lib/kafka.ts consumerRetry).
      retry: consumerRetry(this.config.kafka.retryMaxMs),
      maxBytesPerPartition: 4 * 1024 * 1024,
      // The fetch long-poll when there is nothing to fetch (and kafkajs's sleep while every
      // partition is paused): it bounds how long kafkajs's leave waits at shutdown, which has
      // to fit in the shutdown bound's reserve (leaveReserveMs). Short, as an idle member's
      // extra fetches cost little.
      maxWaitTimeInMs: LONG_POLL_MS,
    });
    this.consumer = consumer;
    this.pipeline = createPipeline({
      ...this.deps,
      commit: this.wrapCommitter(async (topic, partition, nextOffset, metadata, _purpose, ledger) => {
        // The topic must still be the log this assignment read: deleted and created again while
        // the insert ran, the commit would land on the new log, past records nobody read.
        const topicId = await this.topicIds.current(topic);
        if (topicId !== ledger.topicId) {
          this.restartOnNewLog(ledger, topicId);
          throw new CommitFenced(`${topic}[${partition}]: the topic was deleted (and created again) since the assignment started; offset commit not sent`);
        }
        // kafkajs's commitOffsets returns without sending anything when its runner is not
        // running (stopping, or crashed and restarting), and the caller would take the range as
        // committed. The check is synchronous with kafkajs's own (no await between them), and
        // a runner replaced by a restart answers false until it calls eachBatch again.
        if (!this.runnerRunning()) throw new RetriableError('kafkajs consumer is not running: offset commit not sent');
        // The partition is checked against the ledger at every send, kafkajs's own retries
        // included: a revoked assignment's commit never leaves (commit-offsets.ts fencedPartition).
        await consumer.commitOffsets([{ topic, partition: fencedPartition(partition, ledger), offset: String(nextOffset), metadata: metadata || null }]);
        // kafkajs also returns without an error when a commit that failed is given up because
        // its runner stopped meanwhile (a crash during a broker outage: runner.js "consumer not
        // running, exiting"). Taken as done, a range would be inserted that Kafka does not name,
        // and re-cut after the restart: duplicates (the fault suite's broker kill -9). Unknown
        // whether it was sent, so it is not done: retried until it is, or the batch is stale.
        if (!this.runnerRunning()) throw new RetriableError('kafkajs consumer stopped during the offset commit: not known to be committed');
      }),
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      // A new generation: kafkajs re-fetches every assigned partition from its committed offset.
      // kafkajs emits this synchronously with installing the new generation for its commits, so
      // revoking the old ledgers here (revokeAll below) fences every commit of the old one.
      this.joined = true;
      this.crashedMember?.joined(e.payload.memberId);
      this.assigned = e.payload.memberAssignment;
      // Pauses of the previous generation are forgotten (poll resumes any partition kafkajs still
      // holds paused), and so is their count in the gauge, which all members of a worker share.
      this.deps.metrics.pausedPartitions.dec(this.paused.size);
      this.paused.clear();
      this.committedReads = new Map();
      // Read now, before kafkajs fetches under this generation: the id names the log the
      // fetched records come from (a read after the fetch could name a newer one).
      this.topicIdReads = new Map();
      for (const topic of Object.keys(e.payload.memberAssignment)) void this.topicIdOf(topic, this.topicIdReads).catch(() => undefined);
      this.pipeline!.batch.revokeAll();
      this.scheduleDecode(); // drops what the revoked assignments fetched
      this.wakeRoomWaiter();
      this.deps.metrics.rebalances.inc();
      this.deps.log.info('joined consumer group', { member: this.id, memberId: e.payload.memberId, assignment: e.payload.memberAssignment });
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) return this.onFatal(e.payload.error);
      // kafkajs restarts as a new member; the old one would hold the rebalance up for a session
      // timeout unless it leaves (crashed-member.ts).
      if (!this.stopping) this.crashedMember?.crashed();
    });
    this.unsubscribe = this.deps.budget.onRelease(() => this.resumePaused());
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: this.config.consumer.fromBeginning });
    // The age check runs on this tick, so a batch seals at most one tick after its deadline;
    // a poll only walks the partitions this member holds, so a short tick is cheap.
    const tick = Math.max(5, Math.min(20, Math.floor(this.config.batch.maxWaitMs / 10)));
    this.pollTimer = setInterval(() => this.poll(), tick);
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }: EachBatchPayload): Promise<void> {
    const pipeline = this.pipeline!;
    const { topic, partition, messages } = batch;
    const reads = this.committedReads;
    const idReads = this.topicIdReads;
    this.runnerRunning = isRunning;
    if (messages.length === 0 || isStale()) return;
    let ledger = pipeline.batch.ledgerOf(topic, partition);
    if (!ledger || ledger.revoked) {
      const type = this.deps.typeOfTopic.get(topic)!;
      try {
        const topicId = await this.topicIdOf(topic, idReads);
        ledger = await pipeline.batch.prepare(topic, partition, type, () => this.committedOf(topic, partition, reads), heartbeat, topicId);
        this.replacedSinceLastAssignment(topic, partition, topicId);
      } catch (err) {
        // Offsets not resolved: kafkajs fetches these messages again, and we try again then.
        this.deps.log.warn('could not read the committed offset or the topic id of an assigned partition; retrying', { topic, partition, err: err as Error });
        await new Promise((r) => setTimeout(r, 500));
        await heartbeat();
        return;
      }
    }
    if (ledger.revoked || this.stopping) return;
    // Schema ids of Confluent-framed messages are resolved before the batch is queued: the
    // decode stage is synchronous. A registry failure leaves the batch unresolved in kafkajs
    // and pauses the partition for a backoff: the same messages are fetched again then, and
    // nothing is dead-lettered or committed meanwhile (Kafka is the buffer).
    const registry = this.deps.registry;
    if (registry) {
      const missing = registry.missingIds(messages);
      if (missing) {
        const key = tpKey(topic, partition);
        // The group keeps hearing from us while the registry is slow (a lookup may take up to
        // its timeout, longer than the session timeout).
        const beat = setInterval(() => void heartbeat().catch(() => undefined), 1_000);
        try {
          await registry.resolve(missing);
          this.registryAttempts.delete(key);
        } catch (err) {
          if (!(err instanceof RetriableError)) throw err;
          this.waitForRegistry(topic, partition, pause, err);
          return;
        } finally {
          clearInterval(beat);
        }
        if (ledger.revoked || this.stopping) return;
      }
    }
    const first = Number(messages[0]!.offset);
    const last = Number(messages[messages.length - 1]!.offset);
    if (!ledger.fetched(first, last)) {
      let topicId: string | undefined;
      try {
        topicId = await this.topicIds.current(topic);
      } catch (err) {
        // Not resolved: kafkajs fetches these messages again, and we try again then.
        this.deps.log.warn('could not read the id of a topic whose log was replaced; retrying', { topic, partition, err: err as Error });
        await new Promise((r) => setTimeout(r, 500));
        await heartbeat();
        return;
      }
      if (ledger.revoked || this.stopping || isStale()) return;
      ledger = this.logReplaced(topic, partition, first, topicId);
      ledger.fetched(first, last);
    }
    let bytes = 0;
    for (const m of messages) bytes += m.value?.length ?? 0;
    this.fetched.push({ topic, partition, ledger, messages, next: 0, bytes, pause });
    this.fetchedBytes += bytes;
    // Moves kafkajs's fetch position past these messages now, so it fetches the next ones while
    // they are decoded. Nothing is committed here: offsets are committed after the insert, and
    // messages still held here at a rebalance or a stop are fetched again from the commit.
    resolveOffset(messages[messages.length - 1]!.offset);
    this.scheduleDecode();
    // Decode-ahead is one fetch deep: kafkajs waits for this before it fetches again.
    while (this.readyBytes() > MAX_FETCHED_BYTES && isRunning() && !ledger.revoked && !this.stopping) {
      await new Promise<void>((resolve) => {
        this.roomWaiter = resolve;
        setTimeout(resolve, 1_000);
      });
      await heartbeat();
    }
    await heartbeat();
  }

  /** Pauses a partition whose schema ids the registry could not resolve, and resumes it after a doubling backoff. */
  private waitForRegistry(topic: string, partition: number, pause: () => () => void, err: RetriableError): void {
    const key = tpKey(topic, partition);
    if (this.registryWaits.has(key) || this.stopping) return;
    const attempt = (this.registryAttempts.get(key) ?? 0) + 1;
    this.registryAttempts.set(key, attempt);
    const waitMs = Math.min(REGISTRY_RETRY_MAX_MS, REGISTRY_RETRY_MS * 2 ** (attempt - 1));
    this.deps.log.warn('schema registry unavailable: partition waits, its messages stay in Kafka', { topic, partition, attempt, retryInMs: waitMs, err: { name: err.name, message: err.message } });
    const resume = pause();
    this.registryWaits.set(
      key,
      setTimeout(() => {
        this.registryWaits.delete(key);
        if (!this.stopping) resume();
      }, waitMs),
    );
  }

  private clearRegistryWaits(): void {
    for (const timer of this.registryWaits.values()) clearTimeout(timer);
    this.registryWaits.clear();
  }

  /**
   * The topic's id as read at this generation's group join (retried when that read failed). A
   * failed read is not cached: the next eachBatch of a partition of the topic tries again.
   */
  private topicIdOf(topic: string, reads: Map<string, Promise<string | undefined>>): Promise<string | undefined> {
    let read = reads.get(topic);
    if (!read) {
      read = this.topicIds.current(topic);
      reads.set(topic, read);
      read.catch(() => {
        if (reads.get(topic) === read) reads.delete(topic);
      });
    }
    return read;
  }

  /**
   * What Kafka holds for a partition, read once per topic and generation. A failed read is
   * not cached: the next eachBatch of the partition tries again (kafkajs re-delivers it).
   */
  private async committedOf(topic: string, partition: number, reads: Map<string, Promise<ReadonlyMap<number, CommittedOffset>>>): Promise<CommittedOffset> {
    let read = reads.get(topic);
    if (!read) {
      read = this.readCommitted(topic);
      reads.set(topic, read);
      read.catch(() => {
        if (reads.get(topic) === read) reads.delete(topic);
      });
    }
    const byPartition = await read;
    if (reads !== this.committedReads) throw new RetriableError('rebalance while reading committed offsets');
    return byPartition.get(partition) ?? { offset: -1, metadata: null };
  }

  /**
   * The topic was deleted and created again (or its log truncated) under this member: kafkajs
   * reset its fetch position to the new log's start. Messages of the old log still queued here
   * are dropped with what the batch stage buffered, and the partition starts afresh; the new
   * log's messages carry new record timestamps, so their deduplication tokens never match the
   * old log's (partition-ledger.ts tokenOf).
   */
  private logReplaced(topic: string, partition: number, offset: number, topicId: string | undefined): PartitionLedger {
    const ledger = this.startAfresh(topic, partition, topicId);
    this.deps.log.warn('partition log replaced (topic recreated or truncated): fetching went back; starting the partition afresh', { topic, partition, fetchedFrom: offset });
    return ledger;
  }

  /**
   * A commit found the topic with another id than its assignment started under (or none): the
   * topic was deleted, and maybe created again, while this member fetched nothing of it (its
   * partitions paused or its inserts running), so kafkajs did not notice. The partition starts
   * afresh on the new log, read from its start: kafkajs's fetch position is the old log's, and
   * records of the new log below it would never be fetched. Whatever the old assignment still
   * holds is dropped unsent; a batch of the new log fetched under it cannot have been inserted,
   * since every insert follows a commit naming its range, and that commit was checked.
   */
  private restartOnNewLog(ledger: PartitionLedger, topicId: string | undefined): void {
    const { topic, partition } = ledger;
    if (ledger.revoked || this.stopping || this.pipeline?.batch.ledgerOf(topic, partition) !== ledger) return;
    this.startAfresh(topic, partition, topicId);
    // Records kafkajs fetched from the old position before this are dropped by kafkajs
    // (consumerGroup.js skips a partition with a pending seek) or by eachBatch (isStale).
    this.consumer?.seek({ topic, partition, offset: '0' });
    // The old log's records not yet inserted are gone with it: the same alert as kafkajs's own reset.
    this.deps.metrics.offsetResets.inc({ topic });
    this.deps.log.warn('partition log replaced (topic deleted and created again) while its inserts ran: reading the new log from its start', { topic, partition, topicId: topicId ?? null });
  }

  /**
   * A new assignment of a partition this member read before from another log: the topic was
   * deleted and created again between the two (a rebalance or a restart of the kafkajs consumer
   * came first, so neither kafkajs's reset nor a commit's check saw it). The new log is read from
   * its start, as the group's offsets went with the old one; what this member had not inserted of
   * the old log went with it too, which the offset-reset counter and its alert say, as for the
   * other two ways a replaced log is found.
   */
  private replacedSinceLastAssignment(topic: string, partition: number, topicId: string | undefined): void {
    if (topicId === undefined) return;
    const key = tpKey(topic, partition);
    const before = this.logIds.get(key);
    this.logIds.set(key, topicId);
    if (before === undefined || before === topicId) return;
    this.deps.metrics.offsetResets.inc({ topic });
    this.deps.log.warn('partition log replaced (topic deleted and created again) since this member last read it: reading the new log from its start', { topic, partition, topicId });
  }

  /** Drops what was fetched of the partition, resumes it, and gives it a fresh ledger on the log with id `topicId`. */
  private startAfresh(topic: string, partition: number, topicId: string | undefined): PartitionLedger {
    if (topicId !== undefined) this.logIds.set(tpKey(topic, partition), topicId);
    for (let i = this.fetched.length - 1; i >= 0; i--) {
      const f = this.fetched[i]!;
      if (f.topic === topic && f.partition === partition) this.dropFetched(i);
    }
    this.unpause(tpKey(topic, partition));
    return this.pipeline!.batch.replaceLog(topic, partition, topicId)!;
  }

  /** Bytes of fetched messages that can be decoded now (their partition is not waiting for room). */
  private readyBytes(): number {
    if (this.paused.size === 0) return this.fetchedBytes;
    let n = 0;
    for (const f of this.fetched) if (!this.paused.has(tpKey(f.topic, f.partition))) n += f.bytes;
    return n;
  }

  private scheduleDecode(): void {
    if (this.decodeScheduled) return;
    this.decodeScheduled = true;
    setImmediate(() => this.decodeFetched());
  }

  /**
   * Decodes fetched messages into their batches, oldest fetch first, a slice at a time so the
   * socket and kafkajs's next fetch get the event loop between slices. A message the batch stage
   * refuses (its partition has two batches waiting for their insert, or the memory budget is
   * spent) stays here with the rest of its partition, and the partition is paused in kafkajs
   * until memory is released (resumePaused).
   */
  private decodeFetched(): void {
    this.decodeScheduled = false;
    const pipeline = this.pipeline;
    if (!pipeline) return;
    let slice = DECODE_SLICE;
    try {
      for (let i = 0; i < this.fetched.length && slice > 0; ) {
        const f = this.fetched[i]!;
        const key = tpKey(f.topic, f.partition);
        if (f.ledger.revoked || this.stopping) {
          this.dropFetched(i);
          continue;
        }
        if (this.paused.has(key)) {
          i++;
          continue;
        }
        const ledger = f.ledger;
        const end = Math.min(f.messages.length, f.next + slice);
        const start = f.next;
        for (; f.next < end; f.next++) {
          const message = f.messages[f.next]!;
          const offset = Number(message.offset);
          if (ledger.skips(offset)) continue;
          try {
            pipeline.decode.submit({ topic: f.topic, partition: f.partition, offset, value: message.value, timestamp: Number(message.timestamp) });
          } catch (err) {
            if (!(err instanceof MessageRejected)) throw err;
            this.pausePartition(f.topic, f.partition, f.pause);
            break;
          }
        }
        slice -= f.next - start;
        if (f.next === f.messages.length) this.dropFetched(i);
        else i++;
      }
    } catch (err) {
      this.onFatal(err);
      return;
    } finally {
      pipeline.decode.flushCounts();
    }
    const ready = this.readyBytes();
    if (ready > 0) this.scheduleDecode();
    if (ready <= MAX_FETCHED_BYTES) this.wakeRoomWaiter();
  }

  private dropFetched(i: number): void {
    this.fetchedBytes -= this.fetched[i]!.bytes;
    this.fetched.splice(i, 1);
  }

  private wakeRoomWaiter(): void {
    const wake = this.roomWaiter;
    this.roomWaiter = undefined;
    wake?.();
  }

  private pausePartition(topic: string, partition: number, pause: () => () => void): void {
    const key = tpKey(topic, partition);
    if (this.paused.has(key)) return;
    this.paused.set(key, pause());
    this.deps.metrics.pausedPartitions.inc();
  }

  /** Resumes every paused partition: its queued messages are offered again, then kafkajs fetches it. */
  private resumePaused(): void {
    if (this.paused.size === 0 || this.stopping) return;
    for (const key of this.paused.keys()) this.unpause(key);
    this.scheduleDecode();
  }

  /** Resumes one paused partition, if it is paused: kafkajs fetches it again. */
  private unpause(key: string): void {
    const resume = this.paused.get(key);
    if (!resume) return;
    this.paused.delete(key);
    this.deps.metrics.pausedPartitions.dec();
    resume();
  }

  private poll(): void {
    const pipeline = this.pipeline;
    if (!pipeline) return;
    if (pipeline.batch.failed) {
      this.onFatal(pipeline.batch.failed);
      return;
    }
    pipeline.batch.poll();
    pipeline.decode.flushCounts();
    // A paused partition whose sealed batches drained can take messages again.
    if (this.deps.budget.used < this.deps.budget.maxBytes && !this.stopping) {
      if (this.paused.size > 0) this.resumePaused();
      // Self-healing: a partition kafkajs still reports paused although we resumed it (a resume
      // racing an in-flight fetch) would otherwise never be fetched again.
      const consumer = this.consumer;
      // A partition waiting for the schema registry is paused on purpose (waitForRegistry).
      const ours = (topic: string, p: number) => this.paused.has(tpKey(topic, p)) || this.registryWaits.has(tpKey(topic, p));
      const stale = consumer?.paused().filter(({ topic, partitions }) => partitions.some((p) => !ours(topic, p)));
      if (consumer && stale && stale.length > 0) consumer.resume(stale.map(({ topic, partitions }) => ({ topic, partitions: partitions.filter((p) => !ours(topic, p)) })));
    }
  }

  /**
   * Stops fetching, flushes and commits what is buffered, then leaves the group, within
   * `timeoutMs`: the flush gets the bound less a reserve for leaving (leaveReserveMs).
   *
   * The reserve is what makes a shutdown that runs out of time still leave. kafkajs leaves only
   * once its fetch long-poll (maxWaitTimeInMs) and the batch it runs are over; when the flush
   * took the whole bound, the process exited first and the group held the member's partitions
   * until its session timed out, so the worker replacing it (a rolling upgrade) started a whole
   * session late. (Leaving by an admin LeaveGroup of our own id instead is not safe: kafkajs's
   * next heartbeat answers UNKNOWN_MEMBER_ID by joining again, as a member nobody runs.) What
   * was not committed is read again by the next owner and re-formed under the same tokens.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.crashedMember?.stop();
    this.clearRegistryWaits();
    this.wakeRoomWaiter();
    const consumer = this.consumer;
    if (!consumer) return;
    consumer.pause(Object.keys(this.assigned).map((topic) => ({ topic })));
    try {
      await this.pipeline?.batch.join('shutdown', timeoutMs - leaveReserveMs(timeoutMs));
    } finally {
      clearInterval(this.pollTimer);
      this.unsubscribe?.();
      await consumer.disconnect();
    }
  }

  /** Leaves without flushing (fatal error): nothing more is committed. */
  async abort(): Promise<void> {
    this.stopping = true;
    this.crashedMember?.stop();
    this.clearRegistryWaits();
    this.wakeRoomWaiter();
    clearInterval(this.pollTimer);
    this.unsubscribe?.();
    await this.consumer?.disconnect().catch(() => undefined);
  }
}

/** kafkajs's fetch long-poll (maxWaitTimeInMs), see start(). */
const LONG_POLL_MS = 250;

/**
 * The part of a shutdown bound kept for leaving the group: half of it, at most 2 s. kafkajs's
 * leave waits for its fetch long-poll (LONG_POLL_MS), the batch it runs, then one round trip to
 * the coordinator.
 */
export function leaveReserveMs(timeoutMs: number): number {
  return Math.min(2_000, Math.floor(timeoutMs / 2));
}
