import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin } from 'kafkajs';
import type { Logger } from '../lib/logger.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import type { EventType } from '@kafka-clickhouse-ingest/producer/schemas/event-type.js';

interface Progress {
  committed: number;
  changedAt: number;
}

/**
 * Reads, every `intervalMs`:
 *  - consumer lag per group/topic/partition = log-end offset − committed offset (a partition
 *    the group never committed counts from the earliest offset still in the log);
 *  - stuck partitions: lag > 0 and no committed progress for `stuckAfterMs`;
 *  - freshness per table = now − event time of the newest queryable row.
 * Lag is read from the broker, not from this process, so it is right whichever member owns
 * a partition and even when every worker is down (then lag grows and alerts fire).
 */
export class LagMonitor {
  private timer: NodeJS.Timeout | undefined;
  private readonly progress = new Map<string, Progress>();
  private running: Promise<void> | undefined;

  constructor(
    private readonly admin: Admin,
    private readonly clickhouse: ClickHouseClient,
    private readonly groupId: string,
    private readonly topics: ReadonlyMap<string, EventType>,
    private readonly metrics: WorkerMetrics,
    private readonly opts: { intervalMs: number; stuckAfterMs: number },
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sample()
        .catch((err) => this.log.warn('lag sample failed', { err }))
        .finally(() => (this.running = undefined));
    }, this.opts.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async sample(): Promise<void> {
    const topics = [...this.topics.keys()];
    const committedByTopic = await this.admin.fetchOffsets({ groupId: this.groupId, topics });
    const now = this.clock();
    for (const { topic, partitions } of committedByTopic) {
      const ends = await this.admin.fetchTopicOffsets(topic);
      for (const end of ends) {
        const committedRaw = Number(partitions.find((p) => p.partition === end.partition)?.offset ?? -1);
        const committed = committedRaw < 0 ? Number(end.low) : committedRaw;
        const lag = Math.max(0, Number(end.high) - committed);
        const labels = { group: this.groupId, topic, partition: String(end.partition) };
        this.metrics.consumerLag.set(labels, lag);
        const key = `${topic}:${end.partition}`;
        const prev = this.progress.get(key);
        if (!prev || prev.committed !== committed) this.progress.set(key, { committed, changedAt: now });
        const since = this.progress.get(key)!.changedAt;
        this.metrics.partitionStuck.set(labels, lag > 0 && now - since >= this.opts.stuckAfterMs ? 1 : 0);
      }
    }
    for (const type of new Set(this.topics.values())) {
      const rs = await this.clickhouse.query({
        // max() and count() of a partition-key column come from part metadata (the implicit
        // minmax_count projection), so this does not scan the table.
        query: `SELECT toUnixTimestamp64Milli(max(${type.timestampField})) AS newest, count() AS n FROM ${type.table}`,
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ newest: string | number; n: string | number }>();
      if (row && Number(row.n) > 0) this.metrics.freshness.set({ table: type.table }, Math.max(0, (now - Number(row.newest)) / 1000));
    }
  }
}
