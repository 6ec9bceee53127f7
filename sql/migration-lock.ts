import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ClickHouseClient } from '@clickhouse/client';

/**
 * One migration runner at a time, across processes and hosts, with nothing but ClickHouse.
 *
 * The lock is a sequence of epochs in `schema_migrations_lock`. To take it, a runner inserts a
 * `claim` row for epoch N+1 (N the highest epoch seen) with insert_deduplication_token
 * `schema_migrations_lock:N+1`: ClickHouse keeps the first block with a token and silently drops
 * later ones (within the deduplication window), so exactly one claim of each epoch exists, and
 * whoever reads its own owner id in it holds the lock. That is a compare-and-set, on one server
 * and on a replicated table alike (the block ids then live in Keeper). No clock comparison
 * decides who wins.
 *
 * The holder renews its lease (`renew` rows, expires_at = server now + leaseMs) every
 * leaseMs / 3 while it runs and writes `release` when done. A holder that crashed stops
 * renewing; once its lease has expired (server time), the next runner claims the next epoch.
 * Before every statement the holder checks it still holds the newest epoch with time left
 * (`assertHeld`), so a runner that stalled past its lease stops instead of racing its successor.
 * KeeperMap would do the same on a server with Keeper, but the embedded engine has none.
 */
export interface LockState {
  epoch: number;
  holder: string;
  /** Milliseconds left on the holder's lease by the server's clock; <= 0: expired. */
  remainingMs: number;
  released: boolean;
}

export class MigrationLockError extends Error {
  override readonly name = 'MigrationLockError';
}

/** Whether a runner may claim the next epoch: nobody ever held it, it was released, or its lease ran out. */
export function lockIsFree(state: LockState | undefined): boolean {
  return !state || state.released || state.remainingMs <= 0;
}

export const LOCK_TABLE = 'schema_migrations_lock';

export interface MigrationLockOptions {
  /** Lease length; a crashed holder blocks others this long at most. Default 60 s. */
  leaseMs?: number;
  /** Pause between attempts while another runner holds the lock. Default 1 s. */
  pollMs?: number;
  /** Give up waiting after this long. Default 30 min (a long copy can hold the lock that long). */
  waitTimeoutMs?: number;
  /** Owner id written in the lock rows; default host:pid:random. */
  owner?: string;
}

export class MigrationLock {
  readonly owner: string;
  readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly waitTimeoutMs: number;
  private epoch = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewal: Promise<void> = Promise.resolve();
  private renewError: unknown;

  constructor(
    private readonly client: ClickHouseClient,
    opts: MigrationLockOptions = {},
  ) {
    this.owner = opts.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`.replace(/[^A-Za-z0-9._:-]/g, '_');
    // Interpolated into the lock rows' INSERT: only these characters reach the statement.
    if (!/^[A-Za-z0-9._:-]{1,200}$/.test(this.owner)) throw new MigrationLockError(`lock owner must be 1-200 of A-Z a-z 0-9 . _ : -, got ${JSON.stringify(this.owner)}`);
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.pollMs = opts.pollMs ?? 1_000;
    this.waitTimeoutMs = opts.waitTimeoutMs ?? 30 * 60_000;
  }

  /** Reads the newest epoch. Undefined when the lock was never taken. */
  async state(): Promise<LockState | undefined> {
    const rs = await this.client.query({
      query: `SELECT epoch, holder,
          toInt64(dateDiff('millisecond', now64(3), maxIf(expires_at, kind != 'release' AND owner = holder))) AS remaining_ms,
          countIf(kind = 'release' AND owner = holder) > 0 AS released
        FROM ${LOCK_TABLE} AS l
        INNER JOIN (SELECT epoch, argMin(owner, at) AS holder FROM ${LOCK_TABLE} WHERE kind = 'claim' GROUP BY epoch ORDER BY epoch DESC LIMIT 1) AS c USING epoch
        GROUP BY epoch, holder`,
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ epoch: number | string; holder: string; remaining_ms: number | string; released: boolean | number }>();
    if (!row || !row.holder) return undefined;
    return { epoch: Number(row.epoch), holder: row.holder, remainingMs: Number(row.remaining_ms), released: Boolean(Number(row.released)) };
  }

  /**
   * Waits until this runner holds the lock, then keeps renewing it until `release`.
   * Resolves with whom it took over from (a holder whose lease had expired) if anyone.
   * Throws MigrationLockError after waitTimeoutMs.
   */
  async acquire(): Promise<{ epoch: number; tookOverFrom?: string; waitedMs: number }> {
    const started = Date.now();
    let lastSeen: LockState | undefined;
    for (;;) {
      const state = await this.state();
      if (lockIsFree(state)) {
        const epoch = (state?.epoch ?? 0) + 1;
        await this.write(epoch, 'claim', `${LOCK_TABLE}:${epoch}`);
        const after = await this.state();
        if (after?.epoch === epoch && after.holder === this.owner) {
          this.epoch = epoch;
          this.timer = setInterval(() => {
            this.renewal = this.write(epoch, 'renew').catch((err: unknown) => {
              this.renewError = err;
            });
          }, Math.max(50, Math.floor(this.leaseMs / 3)));
          this.timer.unref();
          const tookOverFrom = state && !state.released ? state.holder : undefined;
          return { epoch, waitedMs: Date.now() - started, ...(tookOverFrom ? { tookOverFrom } : {}) };
        }
        // Another runner's claim of this epoch came first: ours was dropped as a repeat.
      } else {
        lastSeen = state;
      }
      if (Date.now() - started > this.waitTimeoutMs) {
        throw new MigrationLockError(`waited ${Date.now() - started} ms for the migration lock, held by ${lastSeen?.holder ?? 'another runner'} (epoch ${lastSeen?.epoch ?? '?'})`);
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /**
   * Throws unless this runner still holds the newest epoch with at least a third of its lease
   * left (time for the next statement to start before a successor may claim).
   */
  async assertHeld(): Promise<void> {
    if (this.renewError) throw new MigrationLockError(`could not renew the migration lock: ${String((this.renewError as Error).message ?? this.renewError)}`, { cause: this.renewError });
    const state = await this.state();
    if (!state || state.epoch !== this.epoch || state.holder !== this.owner || state.released) {
      throw new MigrationLockError(`lost the migration lock (epoch ${this.epoch}); now epoch ${state?.epoch ?? '?'} held by ${state?.holder ?? 'nobody'}`);
    }
    if (state.remainingMs < this.leaseMs / 3) {
      // The renewal timer is late (a stalled process) or failing: renew now, then re-check.
      await this.write(this.epoch, 'renew');
      const again = await this.state();
      if (!again || again.epoch !== this.epoch || again.holder !== this.owner) throw new MigrationLockError(`lost the migration lock (epoch ${this.epoch})`);
    }
  }

  /** Stops renewing and marks the epoch released, so the next runner need not wait for the lease. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewal;
    if (this.epoch > 0) await this.write(this.epoch, 'release');
    this.epoch = 0;
  }

  /** Stops renewing without releasing: what a crash leaves behind (for tests and fatal exits). */
  abandon(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async write(epoch: number, kind: 'claim' | 'renew' | 'release', token?: string): Promise<void> {
    // Settings inside the statement, not clickhouse_settings: the embedded engine's connection
    // would keep those for the session (see lib/clickhouse.ts). Renew/release rows must never be
    // dropped as repeats (two renewals in one millisecond would hash alike), claims must be.
    const settings = token ? `insert_deduplicate = 1, insert_deduplication_token = '${token}'` : 'insert_deduplicate = 0';
    const expires = kind === 'release' ? 'now64(3)' : `now64(3) + toIntervalMillisecond(${Math.floor(this.leaseMs)})`;
    await this.client.command({
      query: `INSERT INTO ${LOCK_TABLE} (epoch, kind, owner, expires_at) SETTINGS ${settings}
        SELECT ${epoch}, '${kind}', '${this.owner}', ${expires}`,
    });
  }
}
