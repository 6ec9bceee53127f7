import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import type { BatchJournal } from './batch-journal.js';
import type { BatchConsumer } from './batch-stage.js';
import type { Batch } from './types.js';

/** Commits `nextOffset` (the offset of the next message to read) for one partition. */
export type OffsetCommitter = (topic: string, partition: number, nextOffset: number) => Promise<void>;

/**
 * The last stage, and the only one that commits. It runs after the batch's rows are durable
 * in ClickHouse (or owned by the dead-letter queue) and after every poison message of the
 * range is in the dead-letter queue, so a committed offset never skips an unsaved message.
 *
 * A failed commit is not retried here: it means the group is rebalancing and the partition
 * may belong to another member now. That member re-reads from the last committed offset,
 * re-forms this batch's range from the journal, and ClickHouse drops the repeated insert
 * by its deduplication token; our next commit on this partition covers it otherwise.
 */
export class CommitStage implements BatchConsumer {
  constructor(
    private readonly commit: OffsetCommitter,
    private readonly journal: BatchJournal,
    private readonly metrics: Pick<WorkerMetrics, 'offsetsCommitted'>,
    private readonly log: Logger,
    /** True when a rebalance happened since the batch was sealed. */
    private readonly isStale: (batch: Batch) => boolean = () => false,
  ) {}

  async submit(batch: Batch): Promise<void> {
    await Promise.all(batch.poisonWrites);
    const next = batch.lastOffset + 1;
    // After a rebalance the partition may belong to another member that has committed further
    // already; Kafka would accept our older offset and move the group backwards, past ranges
    // whose journal entries are gone. So a batch from an older generation does not commit: its
    // range stays journaled and whoever owns the partition now re-forms it (deduplicated).
    if (this.isStale(batch)) {
      this.log.info('rebalance since this batch was sealed: leaving its commit to the current owner', { topic: batch.topic, partition: batch.partition, offset: next });
      return;
    }
    try {
      await this.commit(batch.topic, batch.partition, next);
    } catch (err) {
      this.log.warn('offset commit failed; the range stays journaled and will deduplicate', { topic: batch.topic, partition: batch.partition, offset: next, err: err as Error });
      return;
    }
    this.metrics.offsetsCommitted.inc({ topic: batch.topic });
    await this.journal.forget(batch.topic, batch.partition, next).catch((err) => this.log.warn('journal cleanup failed', { err }));
  }
}
