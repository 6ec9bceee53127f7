/**
 * A host app for test/integration/producer-exit.test.ts: connects a producer (flushOnExit from
 * argv), emits N events held by a long linger, prints "emitted", then waits for the signal the
 * test sends. Args: BROKERS TOPIC_PREFIX N FLUSH_ON_EXIT(true|false)
 */
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costEvents } from './cost-events.js';

const [brokers, topicPrefix, n, flushOnExit] = process.argv.slice(2);
const producer = await IngestProducer.connect({ brokers: brokers!.split(','), topicPrefix: topicPrefix!, lingerMs: 600_000, flushOnExit: flushOnExit === 'true' });
void producer.emitCostMetrics(costEvents(Number(n), 0)).catch(() => undefined);
process.stdout.write('emitted\n');
setInterval(() => undefined, 1_000); // the host app's own work keeps the process alive
