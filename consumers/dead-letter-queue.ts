import { Queue, UnrecoverableError, Worker, type Job, type JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../lib/config.js';
import { classifyClickHouseError, PoisonError, type PoisonReason } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { fromLetterRows } from './insert-stage.js';
import type { InsertBatch } from './types.js';

/** A message that can never be inserted as it is. `value` holds the original bytes. */
export interface PoisonLetter {
  topic: string;
  partition: number;
  offset: number;
  reason: PoisonReason;
  detail: string;
  value: Buffer | null;
  /** For rows ClickHouse refused: the decoded row, so a replay after a table fix can insert it. */
  row?: Record<string, unknown>;
  table?: string;
}

/** A batch whose insert kept failing with retriable errors; the retry worker owns it now. */
export interface FailedBatchLetter {
  table: string;
  token: string;
  rows: Record<string, unknown>[];
  topic: string;
  partition: number;
  firstOffset: number;
  lastOffset: number;
  error: string;
}

/** Where the insert and decode stages put what they cannot insert. Both calls are idempotent. */
export interface DeadLetterSink {
  poison(letter: PoisonLetter): Promise<void>;
  failedBatch(letter: FailedBatchLetter): Promise<void>;
}

interface PoisonJobData extends Omit<PoisonLetter, 'value'> {
  valueBase64: string | null;
  replayed?: boolean;
}
interface BatchJobData extends FailedBatchLetter {
  replayed?: boolean;
}
export type DeadLetterJob = Job<PoisonJobData | BatchJobData>;

/** What a replayed poison message is decoded and inserted with (supplied by the worker). */
export interface PoisonReplayer {
  /** Decodes and validates the original bytes with the worker's current schemas; throws PoisonError when still bad. */
  decode(topic: string, value: Buffer): { table: string; record: Record<string, unknown> };
  insert(table: string, rows: InsertBatch, token: string): Promise<void>;
}

const JOB_ID_UNSAFE = /[^A-Za-z0-9._-]/g;
export const queueName = (config: Pick<Config['deadLetter'], 'queuePrefix'>) => `${config.queuePrefix}-dead-letters`;

/**
 * The dead-letter queue: one BullMQ queue on Redis holding two kinds of jobs.
 *  - `batch`: a failed batch. The retry worker re-inserts it with its original deduplication
 *    token, with exponential backoff, `attempts` times; then it rests in BullMQ's failed state:
 *    a dead letter, visible to `npm run dlq -- list`.
 *  - `poison`: one message with its original bytes, topic, partition, offset and reason. It is
 *    tried once (it fails again unless the worker learned a fix meanwhile) and rests as dead.
 * `replay` moves dead letters back to waiting; the retry worker of a running worker process
 * inserts them. Job ids derive from the coordinates, so enqueueing twice (after a crash
 * between enqueue and commit) keeps one job.
 */
export class DeadLetterQueue implements DeadLetterSink {
  readonly queue: Queue;
  private retryWorker: Worker | undefined;

  constructor(
    private readonly connection: Redis,
    private readonly config: Config['deadLetter'],
    private readonly metrics:
      | Pick<WorkerMetrics, 'deadLetterEnqueued' | 'deadLetterRetried' | 'deadLetterDead' | 'deadLetterReplayed' | 'deadLetterDepth' | 'rowsInserted'>
      | undefined,
    private readonly log?: Logger,
  ) {
    this.queue = new Queue(queueName(config), { connection });
  }

  async poison(letter: PoisonLetter): Promise<void> {
    const { value, ...rest } = letter;
    const data: PoisonJobData = { ...rest, valueBase64: value ? value.toString('base64') : null };
    const jobId = `poison-${letter.topic}-${letter.partition}-${letter.offset}`.replace(JOB_ID_UNSAFE, '_');
    await this.queue.add('poison', data, { jobId, attempts: 1, removeOnComplete: { count: 10_000 }, removeOnFail: false });
    this.metrics?.deadLetterEnqueued.inc({ kind: 'poison' });
  }

  async failedBatch(letter: FailedBatchLetter): Promise<void> {
    const jobId = `batch-${letter.token}`.replace(JOB_ID_UNSAFE, '_');
    await this.queue.add('batch', letter, {
      jobId,
      attempts: this.config.attempts,
      backoff: { type: 'exponential', delay: this.config.backoffMs },
      removeOnComplete: { count: 10_000 },
      removeOnFail: false,
    });
    this.metrics?.deadLetterEnqueued.inc({ kind: 'batch' });
  }

  /** Runs the retry worker in this process (it needs the ClickHouse client this process owns). */
  startRetryWorker(replayer: PoisonReplayer): Worker {
    const worker = new Worker(
      queueName(this.config),
      async (job: DeadLetterJob) => {
        try {
          if (job.name === 'batch') {
            const data = job.data as BatchJobData;
            await replayer.insert(data.table, fromLetterRows(data.topic, data.partition, data.rows), data.token);
            this.metrics?.rowsInserted.inc({ table: data.table }, data.rows.length);
          } else {
            const data = job.data as PoisonJobData;
            if (data.row && data.table) {
              await replayer.insert(data.table, fromLetterRows(data.topic, data.partition, [data.row]), `poison/${data.topic}/${data.partition}/${data.offset}`);
              this.metrics?.rowsInserted.inc({ table: data.table });
            } else if (data.valueBase64 !== null) {
              const { table, record } = replayer.decode(data.topic, Buffer.from(data.valueBase64, 'base64'));
              const rows = { topic: data.topic, partition: data.partition, rows: [{ offset: data.offset, record, bytes: 0 }] };
              await replayer.insert(table, rows, `poison/${data.topic}/${data.partition}/${data.offset}`);
              this.metrics?.rowsInserted.inc({ table });
            } else {
              throw new PoisonError('undecodable', 'message has no value (tombstone)');
            }
          }
        } catch (err) {
          // Only retriable failures are worth the backoff; a data problem rests as dead at once.
          if (err instanceof PoisonError || classifyClickHouseError(err) !== 'retriable') {
            throw new UnrecoverableError(`${(err as Error).name}: ${(err as Error).message}`);
          }
          throw err;
        }
      },
      { connection: this.connection.duplicate({ maxRetriesPerRequest: null }), concurrency: 2, autorun: true },
    );
    worker.on('completed', (job) => {
      this.metrics?.deadLetterRetried.inc({ outcome: 'ok' });
      if (job.data.replayed) this.metrics?.deadLetterReplayed.inc({ kind: job.name });
    });
    worker.on('failed', (job, err) => {
      this.metrics?.deadLetterRetried.inc({ outcome: 'failed' });
      if (!job) return;
      const exhausted = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (exhausted) {
        this.metrics?.deadLetterDead.inc({ kind: job.name });
        this.log?.warn('dead letter at rest', { id: job.id, kind: job.name, reason: err.message });
      }
    });
    worker.on('error', (err) => this.log?.error('dead-letter retry worker error', { err }));
    this.retryWorker = worker;
    return worker;
  }

  /** Jobs by state: `retrying` (waiting, delayed, active) and `dead` (failed). */
  async depth(): Promise<{ retrying: number; dead: number }> {
    const c = await this.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed');
    const depth = { retrying: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0), dead: c.failed ?? 0 };
    this.metrics?.deadLetterDepth.set({ state: 'retrying' }, depth.retrying);
    this.metrics?.deadLetterDepth.set({ state: 'dead' }, depth.dead);
    return depth;
  }

  async list(states: JobType[] = ['failed', 'waiting', 'delayed', 'active'], limit = 100): Promise<DeadLetterJob[]> {
    return (await this.queue.getJobs(states, 0, limit - 1, true)) as DeadLetterJob[];
  }

  async get(id: string): Promise<DeadLetterJob | undefined> {
    return (await this.queue.getJob(id)) as DeadLetterJob | undefined;
  }

  /** Moves a dead letter back to waiting with fresh attempts; returns false when it is not dead. */
  async replay(id: string): Promise<boolean> {
    const job = await this.get(id);
    if (!job || !(await job.isFailed())) return false;
    await job.updateData({ ...job.data, replayed: true });
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  }

  async drop(id: string): Promise<boolean> {
    const job = await this.get(id);
    if (!job) return false;
    await job.remove();
    return true;
  }

  async close(): Promise<void> {
    await this.retryWorker?.close();
    await this.queue.close();
  }
}
