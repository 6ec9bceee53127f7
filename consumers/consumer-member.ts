import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Config } from '../lib/config.js';
import type { OffsetCommitter } from './commit-offsets.js';
import { createPipeline, type Pipeline, type PipelineDeps } from './pipeline.js';
import { MessageRejected, tpKey } from './types.js';

/**
 * One consumer-group member: a kafkajs consumer feeding its own pipeline.
 *
 * kafkajs runs with autoCommit off: `resolveOffset` only moves the fetch position, and
 * offsets are committed by the pipeline's CommitStage after the insert. On backpressure the
 * partition is paused (kafkajs stops fetching it) and the refused message is not resolved, so
 * kafkajs delivers it again after `resume`.
 */
export class ConsumerMember {
  private consumer: Consumer | undefined;
  private pipeline: Pipeline | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private readonly paused = new Map<string, () => void>();
  private stopping = false;
  private joined = false;
  private unsubscribe: (() => void) | undefined;
  assigned: Record<string, number[]> = {};

  constructor(
    private readonly id: number,
    private readonly kafka: Kafka,
    private readonly config: Pick<Config, 'consumer' | 'batch'>,
    private readonly deps: Omit<PipelineDeps, 'commit'>,
    private readonly onFatal: (err: unknown) => void,
    private readonly wrapCommitter: (inner: OffsetCommitter) => OffsetCommitter = (c) => c,
  ) {}

  get ready(): boolean {
    return this.joined && !this.stopping;
  }

  async start(topics: string[]): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.config.consumer.groupId,
      sessionTimeout: this.config.consumer.sessionTimeoutMs,
      rebalanceTimeout: this.config.consumer.rebalanceTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.config.consumer.sessionTimeoutMs / 10)),
      allowAutoTopicCreation: false,
      maxBytesPerPartition: 4 * 1024 * 1024,
      // The fetch long-poll: it also bounds how long disconnect waits at shutdown.
      maxWaitTimeInMs: 1_000,
    });
    this.consumer = consumer;
    this.pipeline = createPipeline({
      ...this.deps,
      commit: this.wrapCommitter((topic, partition, nextOffset) => consumer.commitOffsets([{ topic, partition, offset: String(nextOffset) }])),
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      // A new generation: kafkajs re-fetches every assigned partition from its committed offset.
      this.generation++;
      this.joined = true;
      this.assigned = e.payload.memberAssignment;
      this.paused.clear();
      this.pipeline!.batch.resetAfterRebalance();
      this.deps.metrics.rebalances.inc();
      this.deps.log.info('joined consumer group', { member: this.id, generation: this.generation, assignment: e.payload.memberAssignment });
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.onFatal(e.payload.error);
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
    const { topic, partition } = batch;
    const generation = this.generation;
    const type = this.deps.typeOfTopic.get(topic)!;
    if (batch.messages.length === 0) return;
    if (!pipeline.batch.isPrepared(topic, partition)) {
      const from = Number(batch.messages[0]!.offset);
      await pipeline.batch.prepare(topic, partition, type, () => this.deps.journal.pending(topic, partition, from), heartbeat);
    }
    const committed = pipeline.batch.committedOffset(topic, partition);
    // Resolved once, after the loop: kafkajs parses the offset into a Long and looks the
    // partition up on every resolveOffset call (8% of the main thread when done per message).
    let lastTaken: string | undefined;
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale() || generation !== this.generation || this.stopping) break;
        const offset = Number(message.offset);
        if (offset >= committed) {
          try {
            pipeline.decode.submit({ topic, partition, offset, value: message.value, timestamp: Number(message.timestamp) });
          } catch (err) {
            if (!(err instanceof MessageRejected)) {
              this.onFatal(err);
              return;
            }
            this.pausePartition(topic, partition, pause);
            break;
          }
        }
        lastTaken = message.offset;
      }
    } finally {
      if (lastTaken !== undefined) resolveOffset(lastTaken);
      pipeline.decode.flushCounts();
    }
    await heartbeat();
  }

  private pausePartition(topic: string, partition: number, pause: () => () => void): void {
    const key = tpKey(topic, partition);
    if (this.paused.has(key)) return;
    this.paused.set(key, pause());
    this.deps.metrics.pausedPartitions.inc();
  }

  private resumePaused(): void {
    if (this.paused.size === 0 || this.stopping) return;
    for (const [key, resume] of this.paused) {
      this.paused.delete(key);
      this.deps.metrics.pausedPartitions.dec();
      resume();
    }
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
      const stale = consumer?.paused().filter(({ topic, partitions }) => partitions.some((p) => !this.paused.has(tpKey(topic, p))));
      if (consumer && stale && stale.length > 0) consumer.resume(stale.map(({ topic, partitions }) => ({ topic, partitions: partitions.filter((p) => !this.paused.has(tpKey(topic, p))) })));
    }
  }

  /** Stops fetching, flushes and commits what is buffered, then leaves the group. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const consumer = this.consumer;
    if (!consumer) return;
    consumer.pause(Object.keys(this.assigned).map((topic) => ({ topic })));
    try {
      await this.pipeline?.batch.join('shutdown', timeoutMs);
    } finally {
      clearInterval(this.pollTimer);
      this.unsubscribe?.();
      await consumer.disconnect();
    }
  }

  /** Leaves without flushing (fatal error): nothing more is committed. */
  async abort(): Promise<void> {
    this.stopping = true;
    clearInterval(this.pollTimer);
    this.unsubscribe?.();
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
