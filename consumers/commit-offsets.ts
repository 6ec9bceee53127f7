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
  ) {}

  async submit(batch: Batch): Promise<void> {
    await Promise.all(batch.poisonWrites);
    const next = batch.lastOffset + 1;
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
