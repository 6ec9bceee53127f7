import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CostMetricInput } from '@kafka-clickhouse-ingest/producer';
import { BROKERS, ROOT, createTopic, pathForResults, topicRecordCount } from './common.js';
import { benchPython } from './python-env.js';

/** What bench/python-producer.py prints: the Python SDK (producers/python) sending cost events. */
export interface PythonProducerFigures {
  eventType: string;
  events: number;
  calls: number;
  eventsPerCall: number;
  /** From the first call to flush() returning (every event acknowledged, acks=all). */
  seconds: number;
  eventsPerSec: number;
  /** Until the last call returned (queued in librdkafka). */
  queueSeconds: number;
  /** CPU seconds of the Python process (all threads, librdkafka's too). */
  cpuSeconds: number;
  /** Validation + Avro encoding alone, one Python thread, no Kafka: the SDK's ceiling. */
  validateEncodeOnlyEventsPerSec: number;
  acknowledged: number;
  avroBackend: string;
  python: string;
  /** The interpreter run, and how it was chosen (bench/python-env.ts). */
  interpreter: string;
  interpreterNote: string;
  /**
   * confluent-kafka alone sending the same keys and Avro bytes (encoded beforehand by the SDK's
   * encoder) with the SDK's librdkafka settings, into a topic of its own: the transport's speed.
   */
  confluentSameBytes: { events: number; seconds: number; eventsPerSec: number; cpuSeconds: number; acknowledged: number; avroBytes: number } | null;
}

/**
 * Runs bench/python-producer.py as a user who pip-installs the SDK would (fastavro; see
 * bench/python-env.ts, INGEST_PYTHON overrides); checks every event reached the topic once.
 * `sdkSrc`: another copy of the SDK's src directory to run (before/after comparisons).
 */
export async function benchPythonProducer(opts: { topicPrefix: string; total: number; pool: readonly CostMetricInput[]; timeoutMs: number; partitions: number; sdkSrc?: string }): Promise<PythonProducerFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-py-'));
  try {
    const poolFile = join(dir, 'pool.json');
    writeFileSync(poolFile, JSON.stringify(opts.pool));
    const rawTopic = `${opts.topicPrefix}raw.cost_metrics`;
    await createTopic(rawTopic, opts.partitions);
    const { python, note } = benchPython();
    const py = spawnSync(python, [join(ROOT, 'bench/python-producer.py'), poolFile, opts.topicPrefix, String(opts.total), '100', rawTopic], {
      env: { ...process.env, KAFKA_BROKERS: BROKERS.join(','), ...(opts.sdkSrc ? { INGEST_SDK_SRC: opts.sdkSrc } : {}) },
      encoding: 'utf8',
      timeout: opts.timeoutMs,
    });
    if (py.status !== 0) throw new Error(`bench/python-producer.py exited ${py.status ?? py.signal}: ${py.stderr.slice(-2000)}`);
    const figures = { ...(JSON.parse(py.stdout.trim().split('\n').at(-1)!) as PythonProducerFigures), interpreter: pathForResults(python), interpreterNote: note.split(`${ROOT}/`).join('') };
    if (figures.acknowledged !== opts.total) throw new Error(`Python SDK: ${figures.acknowledged} of ${opts.total} events acknowledged`);
    const inTopic = await topicRecordCount(`${opts.topicPrefix}cost_metrics`);
    if (inTopic !== opts.total) throw new Error(`Python SDK: the topic holds ${inTopic} records, expected ${opts.total}`);
    const raw = figures.confluentSameBytes;
    if (!raw || raw.acknowledged !== opts.total) throw new Error(`confluent-kafka on the SDK's bytes: ${raw?.acknowledged} of ${opts.total} events acknowledged`);
    const inRaw = await topicRecordCount(rawTopic);
    if (inRaw !== opts.total) throw new Error(`confluent-kafka on the SDK's bytes: the topic holds ${inRaw} records, expected ${opts.total}`);
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
