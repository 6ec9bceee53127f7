import type { CostMetricInput } from '@kafka-clickhouse-ingest/producer';
import { benchCostProducer } from './producer-bench.js';
import { benchArgs } from './args.js';
import { createTopic, topicRecordCount } from './common.js';
import { sampleEvents } from '../test/fixtures/events.js';

/**
 * One SDK cost-event run (the bench's settings) for a CPU profile of the producer:
 *   node --cpu-prof --cpu-prof-dir DIR --import tsx bench/profile-producer.ts [--events N]
 * then summariseCpuProfile (bench/profile.ts) on the file in DIR.
 */
const values = benchArgs('profile-producer', `usage: node --cpu-prof --cpu-prof-dir DIR --import tsx bench/profile-producer.ts [--events N]
One SDK cost-event run with the benchmark's settings (N events, default 300000), for a CPU profile.`, { events: { type: 'string', default: '300000' } }, ['events']);
const events = Number(values.events);
const prefix = `prof${Date.now().toString(36)}.`;
await createTopic(`${prefix}cost_metrics`, 4);
const f = await benchCostProducer({ topicPrefix: prefix, total: events, pool: sampleEvents('cost_metrics', 2000, 7) as unknown as CostMetricInput[] });
const inTopic = await topicRecordCount(`${prefix}cost_metrics`);
process.stdout.write(`${JSON.stringify({ eventsPerSec: f.eventsPerSec, cpuSeconds: f.cpuSeconds, seconds: f.seconds, inTopic })}\n`);
process.exit(0);
