import type { Redis } from 'ioredis';

export interface OffsetRange {
  readonly firstOffset: number;
  readonly lastOffset: number;
}

/**
 * Remembers the offset range of every batch between "about to insert" and "offsets committed".
 *
 * Why: ClickHouse drops a repeated insert only when it carries the same
 * insert_deduplication_token (and the table keeps a deduplication window). If a worker dies,
 * or loses the partition in a rebalance, after its insert but before its commit, whoever
 * consumes the partition next re-reads from the committed offset. Without this journal it
 * would cut batches at different offsets (batching depends on timing), so the tokens would
 * differ and the rows would land twice. With it, the next consumer re-forms exactly the
 * journaled ranges first, the tokens match, and ClickHouse ignores the repeat.
 *
 * Storage: one Redis sorted set per group/topic/partition, member "first-last", score last.
 */
export interface BatchJournal {
  /** Records a range before its insert starts. Must be durable before the insert is sent. */
  record(topic: string, partition: number, range: OffsetRange): Promise<void>;
  /** Ranges not yet known to be committed, i.e. with lastOffset >= fromOffset, in order. */
  pending(topic: string, partition: number, fromOffset: number): Promise<OffsetRange[]>;
  /** Forgets ranges wholly below the committed offset. */
  forget(topic: string, partition: number, committedOffset: number): Promise<void>;
}

export class RedisBatchJournal implements BatchJournal {
  constructor(
    private readonly redis: Redis,
    private readonly groupId: string,
    private readonly keyPrefix = 'ingest:journal',
  ) {}

  private key(topic: string, partition: number): string {
    return `${this.keyPrefix}:${this.groupId}:${topic}:${partition}`;
  }

  async record(topic: string, partition: number, range: OffsetRange): Promise<void> {
    await this.redis.zadd(this.key(topic, partition), range.lastOffset, `${range.firstOffset}-${range.lastOffset}`);
  }

  async pending(topic: string, partition: number, fromOffset: number): Promise<OffsetRange[]> {
    const members = await this.redis.zrangebyscore(this.key(topic, partition), fromOffset, '+inf');
    const ranges = members.map((m) => {
      const [first, last] = m.split('-').map(Number) as [number, number];
      return { firstOffset: first, lastOffset: last };
    });
    // A range that starts before fromOffset was committed in part: it cannot be re-formed
    // (and cannot happen, since commits land on batch boundaries); skip it defensively.
    return ranges.filter((r) => r.firstOffset >= fromOffset).sort((a, b) => a.firstOffset - b.firstOffset);
  }

  async forget(topic: string, partition: number, committedOffset: number): Promise<void> {
    await this.redis.zremrangebyscore(this.key(topic, partition), '-inf', `(${committedOffset}`);
  }
}

/** In-memory journal for unit tests and for runs that accept duplicates after a crash. */
export class MemoryBatchJournal implements BatchJournal {
  private readonly ranges = new Map<string, OffsetRange[]>();
  async record(topic: string, partition: number, range: OffsetRange): Promise<void> {
    const k = `${topic}:${partition}`;
    this.ranges.set(k, [...(this.ranges.get(k) ?? []), range]);
  }
  async pending(topic: string, partition: number, fromOffset: number): Promise<OffsetRange[]> {
    return (this.ranges.get(`${topic}:${partition}`) ?? []).filter((r) => r.firstOffset >= fromOffset).sort((a, b) => a.firstOffset - b.firstOffset);
  }
  async forget(topic: string, partition: number, committedOffset: number): Promise<void> {
    const k = `${topic}:${partition}`;
    this.ranges.set(k, (this.ranges.get(k) ?? []).filter((r) => r.lastOffset >= committedOffset));
  }
}
