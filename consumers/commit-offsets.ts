import type { Config } from '../lib/config.js';
import { classifyClickHouseError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { RetryAborted, retryRetriable } from '../lib/retry.js';
import type { BatchConsumer } from './batch-stage.js';
import type { OffsetCommit } from './partition-ledger.js';
import { BatchAbandoned, type Batch } from './types.js';

/**
 * Commits `nextOffset` (the offset of the next message to read) for one partition, with
 * `metadata` stored beside it in Kafka (see partition-ledger.ts). `purpose` says why: 'journal'
 * names the range about to be inserted (the position does not move unless an earlier advance
 * failed), 'advance' moves past a durable range. It must reject when the commit was not
 * acknowledged by the broker, never resolve without committing.
 */
export type OffsetCommitter = (topic: string, partition: number, nextOffset: number, metadata: string, purpose: 'journal' | 'advance') => Promise<void>;

/**
 * Sends one of the ledger's commits, retried with backoff (a coordinator moving, the broker
 * down) until it is acknowledged or the batch's signal aborts (a rebalance or a stop): then
 * BatchAbandoned, and nothing is recorded as committed. Only an acknowledged commit reaches
 * `ledger.didCommit`, so a commit that did not happen makes the ledger forget nothing.
 */
export async function sendCommit(
  batch: Batch,
  commit: OffsetCommit,
  purpose: 'journal' | 'advance',
  committer: OffsetCommitter,
  backoff: Pick<Config['insert'], 'initialBackoffMs' | 'maxBackoffMs'>,
  isStale: (batch: Batch) => boolean,
  log: Logger,
): Promise<void> {
  try {
    await retryRetriable(
      async () => {
        // After a rebalance the partition may belong to another member that has committed
        // further already; Kafka would accept our older offset (kafkajs sends the current
        // generation) and move the group backwards. Whoever owns it now re-forms the range.
        if (isStale(batch)) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: rebalance since the batch was sealed`);
        await committer(batch.topic, batch.partition, commit.offset, commit.metadata, purpose);
      },
      {
        backoff,
        signal: batch.signal,
        isRetriable: (err) => !(err instanceof BatchAbandoned) && classifyClickHouseError(err) === 'retriable',
        onFailure: (err, attempt, delayMs) => {
          if (attempt === 1 || attempt % 20 === 0) log.warn('offset commit failed; retrying', { topic: batch.topic, partition: batch.partition, offset: commit.offset, purpose, attempt, delayMs, err: err as Error });
        },
      },
    );
  } catch (err) {
    if (err instanceof RetryAborted) throw new BatchAbandoned(`${batch.topic}[${batch.partition}]: ${purpose} commit of ${commit.offset} interrupted by a stop or rebalance`);
    throw err;
  }
  batch.ledger.didCommit(commit);
}

/**
 * The last stage, and the only one that moves a partition's position. It runs after the
 * batch's rows are durable in ClickHouse and after every poison message of the range is in
 * the dead-letter queue, so a committed offset never skips an unsaved message. The commit
 * names the next sealed range when one waits (see PartitionLedger.afterInsert).
 *
 * A batch from before a rebalance does not commit (see sendCommit): its range stays named in
 * Kafka and whoever owns the partition now re-forms it; ClickHouse drops the repeated insert.
 */
export class CommitStage implements BatchConsumer {
  constructor(
    private readonly commit: OffsetCommitter,
    private readonly backoff: Pick<Config['insert'], 'initialBackoffMs' | 'maxBackoffMs'>,
    private readonly metrics: Pick<WorkerMetrics, 'offsetsCommitted'>,
    private readonly log: Logger,
    /** True when a rebalance happened since the batch was sealed. */
    private readonly isStale: (batch: Batch) => boolean = () => false,
  ) {}

  async submit(batch: Batch): Promise<void> {
    await Promise.all(batch.poisonWrites);
    if (this.isStale(batch)) {
      this.log.info('rebalance since this batch was sealed: leaving its commit to the current owner', { topic: batch.topic, partition: batch.partition, offset: batch.lastOffset + 1 });
      return;
    }
    await sendCommit(batch, batch.ledger.afterInsert(batch), 'advance', this.commit, this.backoff, this.isStale, this.log);
    this.metrics.offsetsCommitted.inc({ topic: batch.topic });
  }
}
