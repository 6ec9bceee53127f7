import { HostLoad, deleteTopicsWithPrefix } from './common.js';
import { costEventPool, encodeCostPool } from './data.js';
import { kafkaClientComparison } from './kafka-clients.js';

/**
 * The Kafka client comparison alone (bench/kafka-clients.ts), on the bench's cost events:
 *   npx tsx bench/kafka-clients-main.ts [--total N] [--partitions P]
 * Prints the figures as JSON on stdout and deletes its topics. Needs the broker
 * (scripts/services.sh start); installs the alternative clients on first use.
 */
function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} wants a positive integer, got ${process.argv[i + 1]}`);
  return v;
}

const SEED = 20_251_123; // bench/run.ts's
const total = intArg('--total', 200_000);
const partitions = intArg('--partitions', 4);
const id = `clients${Date.now().toString(36)}`;

const pool = costEventPool(SEED);
const host = new HostLoad();
let exitCode = 0;
try {
  const result = await kafkaClientComparison({ id, encodedPool: encodeCostPool(pool), keys: pool.map((e) => e.customer_id), total, partitions });
  process.stdout.write(`${JSON.stringify({ ...result, host: host.finish() }, null, 2)}\n`);
} catch (err) {
  process.stderr.write(`kafka-clients: ${String((err as Error)?.stack ?? err)}\n`);
  exitCode = 1;
} finally {
  await deleteTopicsWithPrefix(`${id}.`).catch((err) => process.stderr.write(`kafka-clients: topic cleanup failed: ${String(err)}\n`));
}
// Exit explicitly: a client left half-closed by a failure must not keep the process alive.
process.exit(exitCode);
