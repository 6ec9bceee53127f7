import type { Config } from '../lib/config.js';
import { classifyKafkaError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { RetryAborted, retryRetriable } from '../lib/retry.js';
import type { BatchConsumer } from './batch-stage.js';
import type { OffsetCommit, PartitionLedger } from './partition-ledger.js';
import { BatchAbandoned, type Batch } from './types.js';

/**
 * Commits `nextOffset` (the offset of the next message to read) for one partition, with
 * `metadata` stored beside it in Kafka (see partition-ledger.ts). `purpose` says why: 'journal'
 * names the range about to be inserted (the position does not move unless an earlier advance
 * failed), 'advance' moves past a durable range. `ledger` is the assignment the commit belongs
 * to: nothing may be sent once it is revoked, a retry inside the Kafka client included (see
 * fencedPartition). It must reject when the commit was not acknowledged by the broker, never
 * resolve without committing.
 */
export type OffsetCommitter = (topic: string, partition: number, nextOffset: number, metadata: string, purpose: 'journal' | 'advance', ledger: PartitionLedger) => Promise<void>;

/** Thrown when a commit was about to be sent under a revoked assignment: it was not sent. */
export class CommitFenced extends Error {
  override readonly name = 'CommitFenced';
  /** kafkajs's retrier gives up at once on an error marked not retriable. */
  readonly retriable = false;
}

/**
 * The partition number of an offset commit, as kafkajs is handed it, checked against the
 * assignment every time the request is encoded.
 *
 * Why: kafkajs retries a failed commit inside `consumer.commitOffsets` (runner.js commitOffsets
 * → its retrier), and every retry re-reads the group's CURRENT generation and member id from the
 * OffsetManager that the latest group sync built (consumerGroup.js commitOffsets →
 * offsetManager/index.js commitOffsets). A commit that first failed (a coordinator moving) and
 * is retried after a rebalance would be sent under the new generation, which the broker accepts
 * from any member: it could rewind the offset and the range metadata the partition's new owner
 * relies on. Checking before the call is not enough; the check must run at every send.
 *
 * How: kafkajs copies the partition into each request and encodes it per attempt with
 * Buffer#writeInt32BE (protocol/requests/offsetCommit/*, encoder.js writeInt32), which converts
 * it with `+value`, i.e. calls valueOf. valueOf throws CommitFenced (not retriable: kafkajs
 * gives up) once the ledger is revoked, so a revoked assignment's commit never leaves. It is
 * also enough: kafkajs reads the generation before encoding, and the group sync that replaces
 * the generation emits GROUP_JOIN synchronously, whose handler revokes every ledger of the old
 * generation (consumer-member.ts); so a ledger not revoked at encoding means the generation read
 * is the ledger's own, and the broker itself fences it if the group moved on meanwhile
 * (ILLEGAL_GENERATION). kafkajs 2.2.4 is the last release; test/integration/commit-fence.test.ts
 * runs this against kafkajs and the real broker, so a kafkajs that stopped encoding this way
 * would fail it.
 */
export function fencedPartition(partition: number, ledger: Pick<PartitionLedger, 'revoked' | 'topic'>): number {
  const fenced = {
    valueOf(): number {
      if (ledger.revoked) throw new CommitFenced(`${ledger.topic}[${partition}]: the assignment was revoked; offset commit not sent`);
      return partition;
    },
    // kafkajs keys its record of committed offsets by the partition after a commit succeeded.
    toString: () => String(partition),
    toJSON: () => partition,
  };
  return fenced as unknown as number;
}

/**
 * Sends one of the ledger's commits, retried with backoff (a coordinator moving, the broker
 * down) until it is acknowledged, or the batch's ledger is revoked (a rebalance: another member
 * owns the partition now and re-forms the range from Kafka's metadata) or stops retrying (a
 * stop): then BatchAbandoned, and nothing is recorded as committed. Only an acknowledged commit
 * reaches `ledger.didCommit`, so a commit that did not happen makes the ledger forget nothing.
 */
export async function sendCommit(
  batch: Batch,
  commit: OffsetCommit,
  purpose: 'journal' | 'advance',
  committer: OffsetCommitter,
  backoff: Pick<Config['insert'], 'initialBackoffMs' | 'maxBackoffMs'>,
  log: Logger,
): Promise<void> {
  const ledger = batch.ledger;
  const abandoned = () => new BatchAbandoned(`${batch.topic}[${batch.partition}]: ${purpose} commit of ${commit.offset} not sent: the assignment was revoked or the worker is stopping`);
  try {
    await retryRetriable(
      async () => {
        if (ledger.revoked) throw abandoned();
        await committer(batch.topic, batch.partition, commit.offset, commit.metadata, purpose, ledger);
      },
      {
        backoff,
        signal: ledger.signal,
        isRetriable: (err) => !(err instanceof BatchAbandoned) && !ledger.revoked && classifyKafkaError(err) === 'retriable',
        onFailure: (err, attempt, delayMs) => {
          if (attempt === 1 || attempt % 20 === 0) log.warn('offset commit failed; retrying', { topic: batch.topic, partition: batch.partition, offset: commit.offset, purpose, attempt, delayMs, err: err as Error });
        },
      },
    );
  } catch (err) {
    if (err instanceof RetryAborted || ledger.revoked) throw abandoned();
    throw err;
  }
  ledger.didCommit(commit);
}

/**
 * Waits for the dead-letter writes of a batch's poison messages; a stop or revocation while
 * they wait (Redis down) gives the batch up instead of holding the worker or its partition's
 * next owner: nothing of it commits, and Kafka re-delivers its messages.
 */
async function lettersDurable(batch: Batch): Promise<void> {
  if (batch.poisonWrites.length === 0) return;
  const signal = batch.ledger.signal;
  const all = Promise.all(batch.poisonWrites);
  let done = false;
  await new Promise<void>((resolve) => {
    const onAbort = () => resolve();
    const settle = () => {
      done = true;
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    all.then(settle, settle);
    // Writes already durable settle within this turn: a stop must not abandon their batch.
    if (signal.aborted) setImmediate(resolve);
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  const abandoned = () => new BatchAbandoned(`${batch.topic}[${batch.partition}]: dead-letter writes not durable at a stop or rebalance`);
  if (!done) throw abandoned();
  try {
    await all;
  } catch (err) {
    // A write given up by the same stop or revocation (its retries or the write itself aborted).
    if (err instanceof RetryAborted) throw abandoned();
    throw err;
  }
}

/**
 * The last stage, and the only one that moves a partition's position. It runs after the
 * batch's rows are durable in ClickHouse and after every poison message of the range is in
 * the dead-letter queue, so a committed offset never skips an unsaved message. The commit
 * names the next sealed range when one waits (see PartitionLedger.afterInsert).
 *
 * A batch whose assignment was revoked does not commit: its range stays named in Kafka and
 * whoever owns the partition now re-forms it; ClickHouse drops the repeated insert.
 */
export class CommitStage implements BatchConsumer {
  constructor(
    private readonly commit: OffsetCommitter,
    private readonly backoff: Pick<Config['insert'], 'initialBackoffMs' | 'maxBackoffMs'>,
    private readonly metrics: Pick<WorkerMetrics, 'offsetsCommitted'>,
    private readonly log: Logger,
  ) {}

  async submit(batch: Batch): Promise<void> {
    await lettersDurable(batch);
    if (batch.ledger.revoked) {
      this.log.info('assignment revoked since this batch was sealed: leaving its commit to the current owner', { topic: batch.topic, partition: batch.partition, offset: batch.lastOffset + 1 });
      return;
    }
    await sendCommit(batch, batch.ledger.afterInsert(batch), 'advance', this.commit, this.backoff, this.log);
    this.metrics.offsetsCommitted.inc({ topic: batch.topic });
  }
}
