import { ClickHouseError } from '@clickhouse/client';
import { runWorkerProcess } from '../bench/worker-process.js';
import type { RowInserter } from '../consumers/clickhouse-inserter.js';
import { IngestWorker } from '../consumers/worker.js';
import { openClickHouse } from '../lib/clickhouse.js';
import { loadConfig } from '../lib/config.js';
import { eventTypes } from '@kafka-clickhouse-ingest/producer/schemas';
import { COST_V2_MIGRATION, costV2 } from './cost-v2.js';

/**
 * The fault suite's worker child: bench/worker-process.ts with a fault-injecting ClickHouse
 * inserter. This entry point is the only place the hook exists; production (consumers/main.ts)
 * never has it, and no config or environment variable of the product reaches it.
 *
 * Faults, set at spawn (env CHAOS_FAULT, JSON) or over IPC (`{ type: 'fault', fault }`):
 * - `delayMs`: every insert waits this long first (slow ClickHouse, a rebalance mid-insert);
 * - `errorCode`: every insert fails with a ClickHouse error of that code (one the classifier
 *   does not list), without reaching the engine;
 * - `hold`: every insert waits before the engine until the fault changes.
 * IPC `{ type: 'writing' }` answers how many inserts are inside the engine now; `{ type:
 * 'command', sql }` runs a statement on the worker's engine (SYSTEM STOP MERGES).
 * IPC `{ type: 'startSecond' }` starts a second IngestWorker in this process, in the same group
 * and on the same embedded engine (which belongs to one process): a second worker joining.
 * IPC `{ type: 'inflight' }` answers the inserts in flight: `{ token, table, rows, ms }` each
 * (the token names the range, see consumers/partition-ledger.ts tokenOf). At SIGTERM the same
 * list is written to the log as one line `chaos-sigterm {"inflight":[…]}` before the worker's
 * own stop begins, so the suite can prove where the signal landed.
 * Env CHAOS_SCHEMA=v2: the upgraded worker of a rolling upgrade; it knows cost schema v2
 * (chaos/cost-v2.ts) and applies its migration before it starts.
 */
interface Fault {
  delayMs?: number;
  errorCode?: number;
  /** Inserts wait before they reach the engine until the fault changes (a disk filled between writes). */
  hold?: boolean;
}
let fault: Fault = JSON.parse(process.env.CHAOS_FAULT ?? '{}');
let insertsFailed = 0;
const inflight = new Map<number, { token: string; table: string; rows: number; since: number }>();
let nextInsert = 0;
/** Inserts inside the engine now (past the fault's hold and delay). */
let writing = 0;

const faulty = (inner: RowInserter): RowInserter =>
  async (table, rows, token) => {
    const id = nextInsert++;
    inflight.set(id, { token, table, rows: rows.count, since: Date.now() });
    try {
      while (fault.hold) await new Promise((r) => setTimeout(r, 50));
      const { delayMs, errorCode } = fault;
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      if (errorCode) {
        insertsFailed++;
        throw new ClickHouseError({ message: `Code: ${errorCode}. DB::Exception: injected by the fault suite (chaos/fault-worker.ts)`, code: String(errorCode), type: 'CHAOS_INJECTED' });
      }
      writing++;
      try {
        return await inner(table, rows, token);
      } finally {
        writing--;
      }
    } finally {
      inflight.delete(id);
    }
  };

const inflightNow = () => [...inflight.values()].map((i) => ({ token: i.token, table: i.table, rows: i.rows, ms: Date.now() - i.since }));
// Registered before runWorkerProcess's own SIGTERM handler, so it runs first.
process.on('SIGTERM', () => process.stdout.write(`chaos-sigterm ${JSON.stringify({ at: Date.now(), inflight: inflightNow() })}\n`));

const upgraded = process.env.CHAOS_SCHEMA === 'v2';
if (upgraded) {
  // The upgrade's migration, before the upgraded worker inserts a v2 row (the table is the old worker's).
  const ch = await openClickHouse(loadConfig().clickhouse);
  try {
    await ch.command({ query: COST_V2_MIGRATION });
  } finally {
    await ch.close();
  }
}
const known = upgraded ? eventTypes.map((t) => (t.name === 'cost_metrics' ? costV2 : t)) : undefined;

const seconds: IngestWorker[] = [];
await runWorkerProcess(
  { wrapInserter: faulty, ...(known ? { eventTypes: known } : {}) },
  {
    fault: async (req) => {
      fault = (req.fault as Fault) ?? {};
      return { fault, insertsFailed };
    },
    inflight: async () => inflightNow(),
    writing: async () => writing,
    // A statement on the worker's engine, which belongs to this process (SYSTEM STOP MERGES).
    command: async (req, worker) => {
      await worker.clickhouse.command({ query: String(req.sql) });
      return true;
    },
    startSecond: async () => {
      // An instance of its own: under the first one's instance id, its start would remove the first one's members.
      const instance = process.env.INGEST_INSTANCE_ID ? { INGEST_INSTANCE_ID: `${process.env.INGEST_INSTANCE_ID}-second` } : {};
      const second = await IngestWorker.start(loadConfig({ ...process.env, ...instance, METRICS_PORT: '0' }), { wrapInserter: faulty, ...(known ? { eventTypes: known } : {}) });
      seconds.push(second);
      return second.metricsUrl;
    },
  },
);
