import { CompressionTypes, Partitioners, type Message } from 'kafkajs';
import type { BenchClickHouse } from './bench-clickhouse.js';
import { benchKafka, createTopic, round, sleep, type QuietWait } from './common.js';

/**
 * Peer: ClickHouse's own Kafka table engine + a materialized view, consuming the same cost
 * events as JSONEachRow into the same table layout (the project's migrations in a fresh
 * database, so the hourly rollup view runs too). The events are produced beforehand with a
 * plain kafkajs producer (gzip, like the SDK) to their own topic with the same partition count.
 * The clock starts when the view is created (that starts the engine's consumers) and stops
 * when the count equals the number produced; steadyRowsPerSec starts at the first row seen.
 * Kafka table and view are dropped at the end, whatever happened.
 */
export interface NativeEngineFigures {
  rows: number;
  partitions: number;
  settings: Record<string, string | number>;
  produceSeconds: number;
  /** The wait for a quiet host between the produce and the engine's start (full runs). */
  quietWait?: QuietWait;
  drainSeconds: number;
  rowsPerSec: number;
  steadyRowsPerSec: number;
  counted: number;
}

const COLUMNS = `timestamp DateTime64(3, 'UTC'), customer_id UUID, cloud_provider String, service_name String, instance_id String,
  instance_type String, region String, cost_per_hour Float64, utilization_percent Float64, is_spot UInt8, is_reserved UInt8`;

export async function nativeKafkaEngine(opts: {
  ch: BenchClickHouse;
  id: string;
  records: readonly Record<string, unknown>[];
  total: number;
  partitions: number;
  minRowsPerSec?: number;
  /** Awaited between the produce and the engine's start (the bench waits for a quiet host there, as before the drain). */
  settle?: () => Promise<QuietWait | undefined>;
}): Promise<NativeEngineFigures> {
  const topic = `${opts.id}.native.cost_metrics_json`;
  await createTopic(topic, opts.partitions);

  const producer = benchKafka('bench-native-producer').producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const json = opts.records.map((r) => JSON.stringify(r));
  const keys = opts.records.map((r) => String(r.customer_id));
  const produceStart = performance.now();
  try {
    const chunk = 10_000;
    for (let first = 0; first < opts.total; first += chunk) {
      const messages: Message[] = [];
      for (let i = first; i < Math.min(opts.total, first + chunk); i++) messages.push({ key: keys[i % keys.length]!, value: json[i % json.length]! });
      await producer.send({ topic, messages, acks: -1, compression: CompressionTypes.GZIP });
    }
  } finally {
    await producer.disconnect();
  }
  const produceSeconds = (performance.now() - produceStart) / 1000;
  const settled = await opts.settle?.();

  const database = `${opts.id}_native`;
  await opts.ch.freshDatabase(database);
  const settings = {
    kafka_broker_list: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
    kafka_topic_list: topic,
    kafka_group_name: `${opts.id}-native-group`,
    kafka_format: 'JSONEachRow',
    kafka_num_consumers: 1,
    kafka_max_block_size: 65_536,
    kafka_flush_interval_ms: 1_000,
  };
  const settingsSql = Object.entries(settings)
    .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${v}'`}`)
    .join(', ');
  const client = opts.ch.client;
  try {
    await client.command({ query: `CREATE TABLE ${database}.cost_metrics_queue (${COLUMNS}) ENGINE = Kafka SETTINGS ${settingsSql}` });
    const started = Date.now();
    await client.command({
      query: `CREATE MATERIALIZED VIEW ${database}.cost_metrics_queue_mv TO ${database}.cost_metrics_ts AS
        SELECT *, _topic AS _kafka_topic, _partition AS _kafka_partition, _offset AS _kafka_offset FROM ${database}.cost_metrics_queue`,
    });
    const deadline = started + 30_000 + (opts.total / (opts.minRowsPerSec ?? 1_000)) * 1000;
    let firstAt = 0;
    let firstCount = 0;
    let counted = 0;
    for (;;) {
      counted = await opts.ch.count(`${database}.cost_metrics_ts`);
      const now = Date.now();
      if (counted > 0 && firstAt === 0) {
        firstAt = now;
        firstCount = counted;
      }
      if (counted >= opts.total) break;
      if (now > deadline) throw new Error(`native Kafka engine: ${counted} of ${opts.total} rows after ${Math.round((now - started) / 1000)} s`);
      await sleep(200);
    }
    const doneAt = Date.now();
    await dropQueue(opts.ch, database);
    await sleep(500);
    counted = await opts.ch.count(`${database}.cost_metrics_ts`);
    if (counted !== opts.total) throw new Error(`native Kafka engine: expected exactly ${opts.total} rows, counted ${counted}`);
    const drainSeconds = (doneAt - started) / 1000;
    return {
      rows: opts.total,
      partitions: opts.partitions,
      settings,
      produceSeconds: round(produceSeconds, 2),
      ...(settled ? { quietWait: settled } : {}),
      drainSeconds: round(drainSeconds, 2),
      rowsPerSec: Math.round(opts.total / drainSeconds),
      steadyRowsPerSec: doneAt > firstAt ? Math.round((opts.total - firstCount) / ((doneAt - firstAt) / 1000)) : Math.round(opts.total / drainSeconds),
      counted,
    };
  } finally {
    await dropQueue(opts.ch, database).catch(() => undefined);
  }
}

/** Drops the view first (stops the consumers), then the Kafka table. */
async function dropQueue(ch: BenchClickHouse, database: string): Promise<void> {
  await ch.client.command({ query: `DROP VIEW IF EXISTS ${database}.cost_metrics_queue_mv SYNC` });
  await ch.client.command({ query: `DROP TABLE IF EXISTS ${database}.cost_metrics_queue SYNC` });
}
