import { Queue, UnrecoverableError, Worker, type Job, type JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../lib/config.js';
import { classifyClickHouseError, PoisonError, RetriableError, type PoisonReason } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { DurableWrites, inspectRedisPersistence, VolatileRedisError, type RedisDurability } from '../lib/redis.js';
import { RetryAborted } from '../lib/retry.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { JOB_ID_UNSAFE, LetterHealBatcher, letterIdentity, LetterNotSettled, type PoisonReplayer } from './letter-healer.js';
import { fromLetterRows } from './letter-rows.js';
import { PoisonLimit } from './poison-limit.js';
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

/** What a caller of a dead-letter write may pass. */
export interface LetterWriteOptions {
  /**
   * Aborting gives the write up: the promise rejects at once with DeadLetterWriteAborted (a
   * RetryAborted). The write itself may still complete in the background, which is harmless:
   * it is idempotent, and a letter whose message is read again from Kafka is not healed twice
   * (letter-healer.ts).
   */
  signal?: AbortSignal;
}

/**
 * Where the insert and decode stages put what they cannot insert. Both writes are idempotent
 * (the job id names the letter), so a write repeated after a crash keeps one letter.
 */
export interface DeadLetterSink {
  /**
   * Makes one poison letter durable in Redis; the batch holding its offset commits only after
   * this settles. It resolves only once the letter is durable (see RedisDurability: WAITAOF,
   * WAIT, or appendfsync always), so it can take up to a second or two on a healthy Redis and
   * waits for as long as Redis is unreachable: pass `signal` to give up (a stop, a rebalance).
   * Rejects with DeadLetterQueueFull (retriable) when the queue is at its bound, and with
   * RedisWriteNotDurable (retriable) when durability was not confirmed in time: the caller
   * retries with backoff (retryUntilDone) and the partition waits meanwhile.
   */
  poison(letter: PoisonLetter, options?: LetterWriteOptions): Promise<void>;
  failedBatch(letter: FailedBatchLetter, options?: LetterWriteOptions): Promise<void>;
  /** This process's per-topic poison limit, shared by the decode and insert stages. */
  readonly limit: PoisonLimit;
}

/** A dead-letter write given up because its caller's signal aborted (a stop or rebalance). */
export class DeadLetterWriteAborted extends RetryAborted {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'DeadLetterWriteAborted' });
  }
}

/** `write`, or DeadLetterWriteAborted as soon as `signal` aborts (the write goes on, unobserved). */
function unlessAborted<T>(write: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return write;
  write.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DeadLetterWriteAborted(`${what}: given up by its caller (a stop or rebalance)`));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    write.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Options of a DeadLetterQueue beyond its config. */
export interface DeadLetterQueueOptions {
  clock?: () => number;
  /**
   * How writes are made durable: what checkRedisPersistence found at start-up. Without it the
   * queue asks Redis at its first write and refuses (VolatileRedisError) one that cannot promise
   * durability.
   */
  durability?: RedisDurability;
  /** Longest WAIT / WAITAOF per round before a write fails as RedisWriteNotDurable (retried). Default 5,000 ms. */
  durabilityTimeoutMs?: number;
}

/** The dead-letter queue holds deadLetter.maxLetters letters or deadLetter.maxBytes bytes: writes wait for room. */
export class DeadLetterQueueFull extends RetriableError {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'DeadLetterQueueFull' });
  }
}

export interface PoisonJobData extends Omit<PoisonLetter, 'value'> {
  valueBase64: string | null;
  replayed?: boolean;
  /** Size the letter counts for in the queue's bound (see LEDGER_ADD). */
  bytes?: number;
  /** Epoch ms from which a healable letter is retried for deadLetter.retryPeriodMs (reset by a replay). */
  retrySince?: number;
}
interface BatchJobData extends FailedBatchLetter {
  replayed?: boolean;
}
export type DeadLetterJob = Job<PoisonJobData | BatchJobData>;

/**
 * Letters the retry worker of one process works on at once. The healer batches them, and a
 * batch costs the same few round trips (one committed-offset read, one presence query, one
 * insert per partition) whatever its size; with 256, a rolling upgrade's 10,000 letters took
 * some 40 batches one after the other.
 */
const HEAL_CONCURRENCY = 2_048;
/** BullMQ workers the retry worker's letters are shared by (see startRetryWorker). */
const HEAL_WORKERS = 4;
export const queueName = (config: Pick<Config['deadLetter'], 'queuePrefix'>) => `${config.queuePrefix}-dead-letters`;

/**
 * Poison a later worker or a table fix can heal, without touching the data: a writer schema
 * this worker does not know yet (an upgraded worker decodes it), a row ClickHouse refused (an
 * ALTER fixes the table). They are retried with backoff for deadLetter.retryPeriodMs. The
 * others (bytes that are not our wire format, values that break the event type's rules) only
 * change when the producer does: they rest as dead at once, for an operator.
 */
export const HEALABLE_REASONS: ReadonlySet<PoisonReason> = new Set(['unknown_fingerprint', 'rejected_by_clickhouse']);

/** Delay before retry number `attemptsMade` (1-based) of a healable letter: doubling, capped, with 20% jitter. */
export function letterBackoffMs(attemptsMade: number, policy: Pick<Config['deadLetter'], 'backoffMs' | 'maxBackoffMs'>, random: () => number = Math.random): number {
  const capped = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.min(40, Math.max(0, attemptsMade - 1)));
  return Math.round(capped * (0.8 + 0.2 * random()));
}

/**
 * The queue's bound, kept exactly in Redis beside the queue: a hash of letter id -> bytes and
 * their total. Adding checks and reserves in one step (a Lua script runs atomically), so two
 * workers cannot both take the last slot; a letter already reserved (a write repeated after a
 * crash) always passes. A letter whose job completed (KEYS[3], BullMQ's completed set: it
 * landed, and the same message was dead-lettered again after Kafka delivered it once more)
 * takes no slot: adding it again would be a no-op on the completed job, and nothing would ever
 * release the slot. Such a letter also loses a slot it still holds (a reservation that raced
 * the job's completion). Returns 1 reserved, 0 already there, 2 landed already (nothing to
 * write), -1 letters full, -2 bytes full.
 */
const LEDGER_ADD = `
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  local held = redis.call('HGET', KEYS[1], ARGV[1])
  if held then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('DECRBY', KEYS[2], held)
  end
  return 2
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
if total > 0 and total + tonumber(ARGV[2]) > tonumber(ARGV[4]) then return -2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[2], ARGV[2])
return 1`;
/** Lua: releases one letter's reservation if it holds one (1), else 0; idempotent. */
const LEDGER_RELEASE_FN = `
local function release(id)
  local b = redis.call('HGET', KEYS[1], id)
  if not b then return 0 end
  redis.call('HDEL', KEYS[1], id)
  redis.call('DECRBY', KEYS[2], b)
  return 1
end`;
/** Releases the reservations of the letters named in ARGV (they landed, or were dropped); returns how many. */
const LEDGER_REMOVE = `${LEDGER_RELEASE_FN}
local n = 0
for _, id in ipairs(ARGV) do n = n + release(id) end
return n`;
/** Releases the reservations of letters whose job completed (see LEDGER_ADD); returns how many. */
const LEDGER_RECONCILE = `${LEDGER_RELEASE_FN}
local n = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  if redis.call('ZSCORE', KEYS[3], id) then n = n + release(id) end
end
return n`;

type DlqMetrics = Pick<
  WorkerMetrics,
  'deadLetterEnqueued' | 'deadLetterRetried' | 'deadLetterDead' | 'deadLetterReplayed' | 'deadLetterDepth' | 'deadLetterBytes' | 'deadLetterUsage' | 'deadLetterRefused' | 'rowsInserted' | 'stoppedByPoisonLimit'
>;

/**
 * The dead-letter queue: one BullMQ queue on Redis holding two kinds of jobs.
 *  - `poison`: one message with its original bytes (or, for a row ClickHouse refused, the
 *    decoded row), topic, partition, offset and reason. Healable reasons (HEALABLE_REASONS) are
 *    retried with backoff for deadLetter.retryPeriodMs by the retry worker of every worker
 *    process, each decoding with its own schemas: the first upgraded worker lands them. The
 *    others, and healable ones past their period, rest in BullMQ's failed state: dead letters.
 *  - `batch`: a failed batch (legacy: retriable insert failures now stay in Kafka). Re-inserted
 *    with its original token, `attempts` times with backoff.
 * `replay` moves dead letters back to waiting; `drop` deletes one. The queue is bounded
 * (deadLetter.maxLetters letters, deadLetter.maxBytes bytes, counted until a letter lands or is
 * dropped): when full, `poison` rejects with DeadLetterQueueFull and the worker waits.
 * A poison letter lands only once settled (letter-healer.ts), and a write resolves only once
 * durable (DurableWrites), since the caller commits past the message when it does.
 */
export class DeadLetterQueue implements DeadLetterSink {
  readonly queue: Queue;
  readonly limit: PoisonLimit;
  private readonly retryWorkers: Worker[] = [];
  private retryStopped: Promise<void> | undefined;
  private durable: Promise<DurableWrites> | undefined;
  /** Slot releases gathered for one script call (release). */
  private pendingReleases: { ids: string[]; done: Promise<void> } | undefined;
  /** The depth gauges' refresh: one read in flight at most, and one more after it if asked meanwhile. */
  private depthRefresh: { running: boolean; again: boolean } = { running: false, again: false };
  /** The bound's hash and total, and BullMQ's completed set (see LEDGER_ADD). */
  private readonly ledgerKeys: [string, string, string];

  constructor(
    private readonly connection: Redis,
    private readonly config: Config['deadLetter'],
    private readonly metrics: DlqMetrics | undefined,
    private readonly log?: Logger,
    private readonly options: DeadLetterQueueOptions = {},
  ) {
    const clock = options.clock ?? Date.now;
    this.queue = new Queue(queueName(config), { connection });
    this.ledgerKeys = [`${queueName(config)}:bound:letters`, `${queueName(config)}:bound:bytes`, this.queue.keys.completed!];
    this.limit = new PoisonLimit(
      { maxRatio: config.maxPoisonRatio, window: config.poisonWindow, initialPauseMs: config.stopInitialPauseMs, maxPauseMs: config.stopMaxPauseMs },
      clock,
      (topic, cause, previous, detail) => {
        if (previous) this.metrics?.stoppedByPoisonLimit.set({ topic, cause: previous }, 0);
        if (cause) this.metrics?.stoppedByPoisonLimit.set({ topic, cause }, 1);
        if (cause) this.log?.error(`topic stopped by the poison limit (${cause}): its messages stay in Kafka`, { topic, cause, detail });
        else this.log?.warn('topic resumed after a poison-limit stop', { topic, previous, detail });
      },
    );
  }

  poison(letter: PoisonLetter, options: LetterWriteOptions = {}): Promise<void> {
    return unlessAborted(this.writePoison(letter), options.signal, `dead-letter write of ${letter.topic}[${letter.partition}] @${letter.offset}`);
  }

  private async writePoison(letter: PoisonLetter): Promise<void> {
    const { value, ...rest } = letter;
    const { jobId } = letterIdentity(letter);
    const valueBase64 = value ? value.toString('base64') : null;
    const bytes = (valueBase64?.length ?? 0) + (letter.row ? JSON.stringify(letter.row).length : 0) + letter.detail.length + 256;
    const reserved = Number(await this.connection.eval(LEDGER_ADD, 3, ...this.ledgerKeys, jobId, bytes, this.config.maxLetters, this.config.maxBytes));
    // Landed already (the job completed): the message is in its table, nothing to keep.
    if (reserved === 2) return;
    if (reserved < 0) {
      this.metrics?.deadLetterRefused.inc({ bound: reserved === -1 ? 'letters' : 'bytes' });
      this.refreshDepth();
      throw new DeadLetterQueueFull(
        `the dead-letter queue ${queueName(this.config)} is full (${reserved === -1 ? `deadLetter.maxLetters ${this.config.maxLetters} letters` : `deadLetter.maxBytes ${this.config.maxBytes} bytes`}): ${letter.topic}[${letter.partition}] waits at offset ${letter.offset} until letters land or are dropped (npm run dlq -- list)`,
      );
    }
    const healable = HEALABLE_REASONS.has(letter.reason);
    const data: PoisonJobData = { ...rest, valueBase64, bytes, retrySince: Date.now() };
    await this.queue.add('poison', data, {
      jobId,
      // Healable letters are retried until their period is over (the processor decides), the others rest at once.
      attempts: healable ? 1_000_000 : 1,
      backoff: healable ? { type: 'letter' } : undefined,
      removeOnComplete: { count: 10_000 },
      removeOnFail: false,
    });
    // The caller commits past the message once this resolves: only once the letter is durable.
    await (await this.durableWrites()).sync();
    if (reserved === 1) this.metrics?.deadLetterEnqueued.inc({ kind: 'poison' });
  }

  failedBatch(letter: FailedBatchLetter, options: LetterWriteOptions = {}): Promise<void> {
    return unlessAborted(this.writeBatch(letter), options.signal, `dead-letter write of batch ${letter.token}`);
  }

  /** The durability of writes: as found at start-up, else asked of Redis once (again after a failure). */
  private durableWrites(): Promise<DurableWrites> {
    this.durable ??= (async () => {
      let durability = this.options.durability;
      if (!durability) {
        const found = await inspectRedisPersistence(this.connection);
        if (found.kind !== 'durable') {
          throw new VolatileRedisError(`the dead-letter queue's Redis cannot keep what it acknowledges: ${found.kind === 'volatile' ? found.problems.join('; ') : found.reason}`);
        }
        durability = found.durability;
      }
      return new DurableWrites(this.connection, durability, `${queueName(this.config)}:durable-mark`, this.options.durabilityTimeoutMs);
    })();
    this.durable.catch(() => (this.durable = undefined));
    return this.durable;
  }

  private async writeBatch(letter: FailedBatchLetter): Promise<void> {
    const jobId = `batch-${letter.token}`.replace(JOB_ID_UNSAFE, '_');
    await this.queue.add('batch', letter, {
      jobId,
      attempts: this.config.attempts,
      backoff: { type: 'exponential', delay: this.config.backoffMs },
      removeOnComplete: { count: 10_000 },
      removeOnFail: false,
    });
    await (await this.durableWrites()).sync();
    this.metrics?.deadLetterEnqueued.inc({ kind: 'batch' });
  }

  /**
   * Runs the retry worker in this process (it needs the ClickHouse client this process owns).
   * A letter that lands releases its room in the queue's bound before its job completes: a
   * crash in between retries the job, whose insert the token deduplicates.
   */
  startRetryWorker(replayer: PoisonReplayer, clock: () => number = Date.now): void {
    const healer = new LetterHealBatcher(replayer);
    const handle = async (job: DeadLetterJob) => {
      try {
        if (job.name === 'batch') {
          const data = job.data as BatchJobData;
          await replayer.insert(data.table, fromLetterRows(data.topic, data.partition, data.rows), data.token);
          this.metrics?.rowsInserted.inc({ table: data.table }, data.rows.length);
          return;
        }
        const { table, inserted } = await healer.heal(job.data as PoisonJobData);
        if (inserted) this.metrics?.rowsInserted.inc({ table });
        else this.log?.info('dead letter already landed from Kafka: done without inserting it again', { id: job.id, table });
        await this.release(String(job.id));
      } catch (err) {
        throw this.retryVerdict(job, err, clock());
      }
    };
    // Several BullMQ workers, each with its own connection: a BullMQ worker takes jobs one round
    // trip after the other until it holds `concurrency` of them, and on a Redis that syncs every
    // write (appendfsync always) filling 2,048 slots that way took seconds before the first
    // letter healed. Workers fill side by side, and Redis syncs their writes together.
    for (let i = 0; i < HEAL_WORKERS; i++) this.retryWorkers.push(this.retryWorker(handle));
    // A process that died between a letter's completion and that second release left its slot taken.
    void this.reconcileBound().catch((err: unknown) => this.log?.warn('dead-letter bound reconciliation failed', { err: err as Error }));
    // Letters resting between retries are tried now rather than when their backoff ends: a
    // worker that starts may be the upgrade that can decode them (a rolling upgrade to a newer
    // schema), and the letters the old workers retried in vain wait up to
    // deadLetter.maxBackoffMs. A letter still not healable goes back to its backoff.
    void this.queue.promoteJobs().catch((err: unknown) => this.log?.warn('could not retry the resting dead letters at start', { err: err as Error }));
  }

  /** One BullMQ worker of the retry worker (see startRetryWorker). */
  private retryWorker(handle: (job: DeadLetterJob) => Promise<void>): Worker {
    const worker = new Worker(queueName(this.config), handle, {
      connection: this.connection.duplicate({ maxRetriesPerRequest: null }),
      // Many letters at once, so the healer's batches fill (LetterHealBatcher): a rolling
      // upgrade can dead-letter thousands, and healing them one by one took minutes.
      concurrency: HEAL_CONCURRENCY / HEAL_WORKERS,
      autorun: true,
      settings: { backoffStrategy: (attemptsMade: number) => letterBackoffMs(attemptsMade, this.config) },
    });
    worker.on('completed', (job) => {
      // Released before completing too (see above); again now, because a write of the same
      // letter may have reserved its slot in between (LEDGER_ADD sees completed jobs only).
      void this.release(String(job.id)).catch(() => undefined);
      this.metrics?.deadLetterRetried.inc({ outcome: 'ok' });
      if (job.data.replayed) this.metrics?.deadLetterReplayed.inc({ kind: job.name });
      this.refreshDepth();
    });
    worker.on('failed', (job, err) => {
      this.metrics?.deadLetterRetried.inc({ outcome: err instanceof LetterNotSettled || err.name === 'LetterNotSettled' ? 'unsettled' : 'failed' });
      if (!job) return;
      const exhausted = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (exhausted) {
        this.metrics?.deadLetterDead.inc({ kind: job.name });
        this.log?.warn('dead letter at rest', { id: job.id, kind: job.name, reason: err.message });
        this.refreshDepth();
      }
    });
    worker.on('error', (err) => this.log?.error('dead-letter retry worker error', { err }));
    return worker;
  }

  /**
   * What a failed retry becomes: retried later (the error itself) or at rest (UnrecoverableError).
   * Retriable failures (ClickHouse or Redis unavailable) are always retried with the backoff.
   * A healable letter that fails again (the schema is still unknown here, the table still
   * refuses it) is retried until deadLetter.retryPeriodMs has passed since it was enqueued or
   * replayed; anything else rests at once.
   */
  private retryVerdict(job: DeadLetterJob, err: unknown, now: number): Error {
    const e = err instanceof Error ? err : new Error(String(err));
    if (!(err instanceof PoisonError) && classifyClickHouseError(err) === 'retriable') return e;
    if (job.name === 'poison') {
      const data = job.data as PoisonJobData;
      const since = data.retrySince ?? job.timestamp;
      if (HEALABLE_REASONS.has(data.reason) && now - since < this.config.retryPeriodMs) return e;
      if (HEALABLE_REASONS.has(data.reason)) return new UnrecoverableError(`${e.name}: ${e.message} (retried for deadLetter.retryPeriodMs ${this.config.retryPeriodMs} ms)`);
    }
    return new UnrecoverableError(`${e.name}: ${e.message}`);
  }

  /** Releases the slots still held by letters whose job completed; returns how many. */
  async reconcileBound(): Promise<number> {
    return Number(await this.connection.eval(LEDGER_RECONCILE, 3, ...this.ledgerKeys));
  }

  /**
   * Releases a letter's slot of the bound. Releases asked for in the same turn of the event loop
   * go in one script call: the letters of a healed batch settle together, and on a Redis that
   * syncs every write to disk (appendfsync always) one call per letter made the slots' release
   * a large part of healing's time.
   */
  private release(id: string): Promise<void> {
    let pending = this.pendingReleases;
    if (!pending) {
      const ids: string[] = [];
      const done = new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          this.pendingReleases = undefined;
          this.connection.eval(LEDGER_REMOVE, 2, this.ledgerKeys[0], this.ledgerKeys[1], ...ids).then(() => resolve(), reject);
        }),
      );
      pending = this.pendingReleases = { ids, done };
    }
    pending.ids.push(id);
    return pending.done;
  }

  /**
   * Letters by state: `retrying` (waiting, delayed, active) and `dead` (failed), and the room
   * they take in the queue's bound (letters and bytes not yet landed or dropped).
   */
  async depth(): Promise<{ retrying: number; dead: number }> {
    const [c, letters, bytes] = await Promise.all([
      this.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed'),
      this.connection.hlen(this.ledgerKeys[0]),
      this.connection.get(this.ledgerKeys[1]),
    ]);
    const depth = { retrying: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0), dead: c.failed ?? 0 };
    this.metrics?.deadLetterDepth.set({ state: 'retrying' }, depth.retrying);
    this.metrics?.deadLetterDepth.set({ state: 'dead' }, depth.dead);
    this.metrics?.deadLetterBytes.set(Number(bytes ?? 0));
    this.metrics?.deadLetterUsage.set(Math.max(letters / this.config.maxLetters, Number(bytes ?? 0) / this.config.maxBytes));
    return depth;
  }

  /**
   * Refreshes the depth gauges after letters changed state. A read costs seven Redis commands;
   * one per completed letter made them most of the retry worker's Redis traffic while thousands
   * of letters healed. Reads are coalesced: at most one in flight, and one more after it when
   * letters changed meanwhile, so the gauges still end on the final state.
   */
  private refreshDepth(): void {
    if (this.depthRefresh.running) {
      this.depthRefresh.again = true;
      return;
    }
    this.depthRefresh.running = true;
    void this.depth()
      .catch(() => undefined)
      .finally(() => {
        this.depthRefresh.running = false;
        if (this.depthRefresh.again) {
          this.depthRefresh.again = false;
          this.refreshDepth();
        }
      });
  }

  /** Letters and bytes counted against the bound (deadLetter.maxLetters, deadLetter.maxBytes). */
  async usage(): Promise<{ letters: number; bytes: number }> {
    const [letters, bytes] = await Promise.all([this.connection.hlen(this.ledgerKeys[0]), this.connection.get(this.ledgerKeys[1])]);
    return { letters, bytes: Number(bytes ?? 0) };
  }

  async list(states: JobType[] = ['failed', 'waiting', 'delayed', 'active'], limit = 100): Promise<DeadLetterJob[]> {
    return (await this.queue.getJobs(states, 0, limit - 1, true)) as DeadLetterJob[];
  }

  async get(id: string): Promise<DeadLetterJob | undefined> {
    return (await this.queue.getJob(id)) as DeadLetterJob | undefined;
  }

  /**
   * Moves a dead letter back to waiting with fresh attempts (and, for a healable one, a fresh
   * retry period); returns false when it is not dead. The letter keeps its deduplication token,
   * so replaying one that landed meanwhile inserts nothing twice.
   */
  async replay(id: string): Promise<boolean> {
    const job = await this.get(id);
    if (!job || !(await job.isFailed())) return false;
    await job.updateData({ ...job.data, replayed: true, ...(job.name === 'poison' ? { retrySince: Date.now() } : {}) });
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  }

  /** Deletes a letter for good and frees its room in the bound. */
  async drop(id: string): Promise<boolean> {
    const job = await this.get(id);
    if (!job) return false;
    await job.remove();
    await this.release(id);
    return true;
  }

  /**
   * Stops the retry worker: it takes no more letters and finishes those it holds. A stopping
   * worker calls this first, beside its flush: it takes a while (every letter it holds is
   * written back to Redis) and nothing of the shutdown needs it.
   */
  stopRetrying(): Promise<void> {
    this.retryStopped ??= Promise.all(this.retryWorkers.map((w) => w.close())).then(() => undefined);
    return this.retryStopped;
  }

  async close(): Promise<void> {
    await this.stopRetrying();
    await this.queue.close();
    await this.durable?.then((d) => d.close()).catch(() => undefined);
  }
}
