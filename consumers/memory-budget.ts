/**
 * One budget for every byte buffered by this process: open batches, sealed batches waiting
 * for their insert, and inserts in flight, across all tables, partitions and group members.
 *
 * Fairness: when the process is over budget, only tables holding at least their fair share
 * (budget / tables with buffered data) are refused, so one slow table cannot starve the
 * others. The total therefore stays below twice the budget in the worst case (plus one message
 * per table, which is always let through when that table holds nothing).
 */
export class MemoryBudget {
  private total = 0;
  private readonly byTable = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  constructor(readonly maxBytes: number, private readonly onChange?: (total: number) => void) {}

  get used(): number {
    return this.total;
  }

  /** True when `bytes` more for `table` may be buffered now. Never blocks. */
  admits(table: string, bytes: number): boolean {
    if (this.total + bytes <= this.maxBytes) return true;
    // A table with nothing buffered always gets one message through, so a message larger than
    // its share (or the whole budget) cannot stall its partitions forever.
    if ((this.byTable.get(table) ?? 0) === 0) return true;
    const tables = [...this.byTable.values()].filter((v) => v > 0).length || 1;
    const fairShare = this.maxBytes / tables;
    return (this.byTable.get(table) ?? 0) + bytes <= fairShare && this.total + bytes <= 2 * this.maxBytes;
  }

  acquire(table: string, bytes: number): void {
    this.total += bytes;
    this.byTable.set(table, (this.byTable.get(table) ?? 0) + bytes);
    this.onChange?.(this.total);
  }

  release(table: string, bytes: number): void {
    if (bytes === 0) return;
    this.total -= bytes;
    this.byTable.set(table, (this.byTable.get(table) ?? 0) - bytes);
    this.onChange?.(this.total);
    for (const listener of this.listeners) listener();
  }

  /** Called after every release: paused partitions try to resume. */
  onRelease(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Bounds concurrent inserts across all partitions and members of the process. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so no newcomer can
    // slip in between and exceed the limit.
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /**
   * Runs `fn` (a wait) from inside `run` without holding the caller's slot, then takes a slot
   * again: an insert waiting for its table to be fixed must not hold back other tables' inserts.
   */
  async yielding<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
    try {
      return await fn();
    } finally {
      if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
      else this.active++;
    }
  }
}
