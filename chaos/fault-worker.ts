import { ClickHouseError } from '@clickhouse/client';
import { runWorkerProcess } from '../bench/worker-process.js';
import type { RowInserter } from '../consumers/clickhouse-inserter.js';
import { IngestWorker } from '../consumers/worker.js';
import { loadConfig } from '../lib/config.js';

/**
 * The fault suite's worker child: bench/worker-process.ts with a fault-injecting ClickHouse
 * inserter. This entry point is the only place the hook exists; production (consumers/main.ts)
 * never has it, and no config or environment variable of the product reaches it.
 *
 * Faults, set at spawn (env CHAOS_FAULT, JSON) or over IPC (`{ type: 'fault', fault }`):
 * - `delayMs`: every insert waits this long first (slow ClickHouse, a rebalance mid-insert);
 * - `errorCode`: every insert fails with a ClickHouse error of that code (one the classifier
 *   does not list), without reaching the engine.
 * IPC `{ type: 'startSecond' }` starts a second IngestWorker in this process, in the same group
 * and on the same embedded engine (which belongs to one process): a second worker joining.
 */
interface Fault {
  delayMs?: number;
  errorCode?: number;
}
let fault: Fault = JSON.parse(process.env.CHAOS_FAULT ?? '{}');
let insertsFailed = 0;

const faulty = (inner: RowInserter): RowInserter =>
  async (table, rows, token) => {
    const { delayMs, errorCode } = fault;
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    if (errorCode) {
      insertsFailed++;
      throw new ClickHouseError({ message: `Code: ${errorCode}. DB::Exception: injected by the fault suite (chaos/fault-worker.ts)`, code: String(errorCode), type: 'CHAOS_INJECTED' });
    }
    return inner(table, rows, token);
  };

const seconds: IngestWorker[] = [];
await runWorkerProcess(
  { wrapInserter: faulty },
  {
    fault: async (req) => {
      fault = (req.fault as Fault) ?? {};
      return { fault, insertsFailed };
    },
    startSecond: async () => {
      const second = await IngestWorker.start(loadConfig({ ...process.env, METRICS_PORT: '0' }), { wrapInserter: faulty });
      seconds.push(second);
      return second.metricsUrl;
    },
  },
);
