import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KAFKA_CODECS } from '@kafka-clickhouse-ingest/producer/kafka-codecs.js';
import { zlibHasZstd } from '@kafka-clickhouse-ingest/producer/kafka-transport.js';
import { IngestWorker } from '../../consumers/worker.js';
import { IngestProducer, PRODUCER_CLIENTS } from '@kafka-clickhouse-ingest/producer';
import { costMetrics } from '@kafka-clickhouse-ingest/producer/schemas/cost-metrics.js';
import { toEventRecord } from '@kafka-clickhouse-ingest/producer/schemas/validate-event.js';
import { SingleObjectEncoder } from '@kafka-clickhouse-ingest/producer/schemas/wire-format.js';
import { costEvents } from '../helpers/cost-events.js';
import { auditCostRows, countRows, createTopics, testConfig, waitFor } from '../helpers/stack.js';

const root = resolve(import.meta.dirname, '../..');
/** The broker's jars (scripts/kafka.sh fetches them with Maven): kafka-clients and its codec libraries, the version of deploy/kafka/pom.xml. */
const kafkaLibs = join(process.env.KAFKA_CACHE_DIR ?? join(root, '.cache/kafka'), 'libs');
const PER_CODEC = 2_000;

/**
 * Record batches of every codec, as Kafka's Java client writes them (xerial-framed snappy,
 * KafkaLZ4 frames, zstd-jni streams without a content size) and as the SDK writes them with each
 * client: every row lands, exactly once. Before the worker registered every codec, the first
 * snappy batch threw KafkaJSNotImplemented and none of 10,000 such events landed.
 */
describe('every Kafka codec reaches ClickHouse', () => {
  const config = testConfig();
  const topic = `${config.kafka.topicPrefix}cost_metrics`;
  let worker: IngestWorker | undefined;
  let classes: string;

  beforeAll(async () => {
    classes = mkdtempSync(join(tmpdir(), 'ingest-resend-'));
    execFileSync('javac', ['-cp', `${kafkaLibs}/*`, '-d', classes, join(root, 'test/java/ReSend.java')], { stdio: 'pipe' });
    await createTopics(config, ['cost_metrics']);
    worker = await IngestWorker.start(config);
  }, 120_000);
  afterAll(async () => {
    await worker?.stop();
  });

  it('Java producer with compression.type none, gzip, snappy, lz4 and zstd: 2,000 events each, all 10,000 rows', async () => {
    const encoder = new SingleObjectEncoder();
    for (const [n, codec] of KAFKA_CODECS.entries()) {
      // The SDK's encoding, in the framing ReSend reads: key length, key, value length, value.
      const parts: Buffer[] = [];
      for (const event of costEvents(PER_CODEC, n * PER_CODEC)) {
        const record = toEventRecord(costMetrics, event);
        const key = Buffer.from(String(record.customer_id));
        const value = Buffer.from(encoder.encode(costMetrics.avroType, costMetrics.fingerprint, record));
        const lengths = Buffer.alloc(8);
        lengths.writeUInt32BE(key.length, 0);
        lengths.writeUInt32BE(value.length, 4);
        parts.push(lengths.subarray(0, 4), key, lengths.subarray(4), value);
      }
      const file = join(classes, `${codec}.bin`);
      writeFileSync(file, Buffer.concat(parts));
      const out = execFileSync('java', ['-cp', `${classes}:${kafkaLibs}/*`, '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn', `-Dlog4j2.configurationFile=${join(root, 'deploy/kafka/log4j2.yaml')}`, 'ReSend', config.kafka.brokers.join(','), topic, codec, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out.trim().split('\n').at(-1), `java ReSend ${codec}`).toBe(String(PER_CODEC));
    }
    const total = KAFKA_CODECS.length * PER_CODEC;
    await waitFor(`${total} rows`, async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) >= total, 180_000);
    await new Promise((r) => setTimeout(r, 1_000)); // a late duplicate would land meanwhile
    expect(await auditCostRows(worker!.clickhouse)).toEqual({ n: total, offsets: total, ids: total });
  }, 300_000);

  it('the SDK with each codec and each client: every row lands once', async () => {
    let start = 100_000;
    let expected = (await auditCostRows(worker!.clickhouse)).n;
    for (const client of PRODUCER_CLIENTS) {
      for (const compression of KAFKA_CODECS) {
        if (client === 'platformatic' && compression === 'zstd' && !zlibHasZstd()) {
          // Refused at connect, with the reason, on a Node without zlib zstd (Node 20 here).
          await expect(IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, client, compression })).rejects.toThrow(/zstd.*platformatic.*Node >= 22\.15/);
          continue;
        }
        const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix, client, compression });
        try {
          await producer.emitCostMetrics(costEvents(1_000, start));
        } finally {
          await producer.close();
        }
        start += 1_000;
        expected += 1_000;
      }
    }
    await waitFor(`${expected} rows`, async () => (await countRows(worker!.clickhouse, 'cost_metrics_ts')) >= expected, 180_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await auditCostRows(worker!.clickhouse)).toEqual({ n: expected, offsets: expected, ids: expected });
  }, 300_000);
});
