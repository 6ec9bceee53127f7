import { benchArgs } from './args.js';
import { HostLoad, deleteTopicsWithPrefix } from './common.js';
import { costEventPool, encodeCostPool } from './data.js';
import { kafkaClientComparison } from './kafka-clients.js';

/**
 * The Kafka client comparison alone (bench/kafka-clients.ts), on the bench's cost events:
 *   npx tsx bench/kafka-clients-main.ts [--total N] [--partitions P]
 * Prints the figures as JSON on stdout and deletes its topics. Needs the broker
 * (scripts/services.sh start); installs the alternative clients on first use.
 */
const values = benchArgs('kafka-clients', `usage: npx tsx bench/kafka-clients-main.ts [--total N] [--partitions P]
The Kafka client comparison alone on the bench's cost events: N events (default 200000) over P
partitions (default 4); JSON on stdout.`, { total: { type: 'string', default: '200000' }, partitions: { type: 'string', default: '4' } }, ['total', 'partitions']);

const SEED = 20_251_123; // bench/run.ts's
const total = Number(values.total);
const partitions = Number(values.partitions);
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
