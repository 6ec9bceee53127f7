import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBatchJournal } from '../../consumers/batch-journal.js';
import { IngestWorker } from '../../consumers/worker.js';
import { openClickHouse } from '../../lib/clickhouse.js';
import { topicName } from '../../lib/kafka.js';
import { IngestProducer } from '../../producers/ingest-producer.js';
import { costEvents } from '../helpers/cost-events.js';
import { auditCostRows, createTopics, queryRows, testConfig, uniqueId, waitFor } from '../helpers/stack.js';

const root = join(import.meta.dirname, '../..');

interface Child {
  proc: ChildProcess;
  metricsUrl: Promise<string>;
  exit: Promise<number | null>;
}

/** Runs `npm run worker` as its own process, as an operator would. */
function startWorkerProcess(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'consumers/main.ts')], {
    cwd: root,
    env: { ...process.env, ...env, LOG_LEVEL: process.env.CHILD_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const metricsUrl = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /metrics at (\S+)\/metrics/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`worker exited (${code}) before starting: ${out}`)));
  });
  proc.stderr!.on("data", (d: Buffer) => process.stderr.write(d));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, metricsUrl, exit };
}

async function rowsInserted(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^ingest_rows_inserted_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

async function audit(config: ReturnType<typeof testConfig>) {
  const ch = await openClickHouse(config.clickhouse);
  try {
    return await auditCostRows(ch);
  } finally {
    await ch.close();
  }
}

describe('kill -9 a worker process mid-stream and restart it', () => {
  const id = uniqueId('k');
  const dataPath = mkdtempSync(join(tmpdir(), 'ingest-kill-'));
  const config = testConfig({ clickhouse: { dataPath } }, id);
  const env = {
    KAFKA_BROKERS: config.kafka.brokers.join(','),
    KAFKA_TOPIC_PREFIX: config.kafka.topicPrefix,
    INGEST_GROUP_ID: config.consumer.groupId,
    INGEST_EVENT_TYPES: 'cost_metrics',
    CHDB_PATH: dataPath,
    CLICKHOUSE_DATABASE: config.clickhouse.database,
    DLQ_QUEUE_PREFIX: config.deadLetter.queuePrefix,
    METRICS_PORT: '0',
    METRICS_HOST: '127.0.0.1',
    BATCH_MAX_ROWS: '300',
    BATCH_MAX_WAIT_MS: '100',
    LAG_INTERVAL_MS: '500',
    INGEST_SESSION_TIMEOUT_MS: '8000',
    INGEST_REBALANCE_TIMEOUT_MS: '10000',
  };
  let child: Child | undefined;
  afterAll(() => {
    child?.proc.kill('SIGKILL');
  });

  it('loses nothing and duplicates nothing; SIGTERM then exits 0 after flushing', async () => {
    const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    const total = 20_000;
    let sent = 0;
    child = startWorkerProcess(env);
    const url = await child.metricsUrl;
    const streaming = (async () => {
      while (sent < total) {
        await producer.emitCostMetrics(costEvents(500, sent));
        sent += 500;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await waitFor('rows flowing', async () => (await rowsInserted(url)) > 2_000);
    child.proc.kill('SIGKILL');
    expect(await child.exit).toBe(null); // killed by the signal, no chance to flush or commit
    child = startWorkerProcess(env);
    await child.metricsUrl;
    await streaming;
    await producer.close();

    const admin = new Kafka({ brokers: [...config.kafka.brokers], logLevel: 0 }).admin();
    await admin.connect();
    const topic = topicName(config.kafka, 'cost_metrics');
    await waitFor('group committed to the end of the topic', async () => {
      const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: config.consumer.groupId, topics: [topic] })]);
      // A partition that never received a message has no committed offset (-1): nothing to wait for.
      return ends.every((e) => {
        const c = Number(committed!.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
        return (c < 0 ? Number(e.low) : c) === Number(e.high);
      });
    }, 90_000);
    await admin.disconnect();

    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    child = undefined;
    expect(await audit(config)).toEqual({ n: total, offsets: total, ids: total });
  }, 300_000);
});

describe('a crash between insert and commit', () => {
  // Commits fail as if the process died right after each insert; the next worker re-reads
  // everything, with different batch limits, so only the journal can make its batches match.
  const neverCommit = () => async () => {
    throw new Error('process died before commit (simulated)');
  };

  it('re-forms the journaled batches so ClickHouse deduplicates them: exactly N rows', async () => {
    const config = testConfig({ consumer: { eventTypes: ['cost_metrics'] }, batch: { maxRows: 700, maxWaitMs: 100 } });
    const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    await createTopics(config, ['cost_metrics']);
    await producer.emitCostMetrics(costEvents(5_000));
    await producer.close();
    const first = await IngestWorker.start(config, { wrapCommitter: neverCommit });
    await waitFor('5000 rows inserted, none committed', async () => Number((await queryRows<{ n: number }>(first.clickhouse, 'SELECT count() AS n FROM cost_metrics_ts'))[0]!.n) === 5_000);
    await first.stop();
    const second = await IngestWorker.start(testConfig({ ...config, batch: { maxRows: 1_000, maxWaitMs: 300 } }, config.kafka.topicPrefix.slice(0, -1)));
    try {
      await waitFor('re-read committed', async () => (await second.metrics.offsetsCommitted.get()).values.reduce((a, v) => a + v.value, 0) > 0);
      await new Promise((r) => setTimeout(r, 1_500));
      const [s] = await queryRows<Record<string, number>>(second.clickhouse, 'SELECT count() AS n, uniqExact(instance_id) AS ids FROM cost_metrics_ts');
      expect({ n: Number(s!.n), ids: Number(s!.ids) }).toEqual({ n: 5_000, ids: 5_000 });
    } finally {
      await second.stop();
    }
  });

  it('control: without the journal the same crash duplicates rows (so the test above can fail)', async () => {
    const config = testConfig({ consumer: { eventTypes: ['cost_metrics'] }, batch: { maxRows: 700, maxWaitMs: 100 } });
    const producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    await createTopics(config, ['cost_metrics']);
    await producer.emitCostMetrics(costEvents(5_000));
    await producer.close();
    const first = await IngestWorker.start(config, { wrapCommitter: neverCommit, journal: new MemoryBatchJournal() });
    await waitFor('5000 rows', async () => Number((await queryRows<{ n: number }>(first.clickhouse, 'SELECT count() AS n FROM cost_metrics_ts'))[0]!.n) === 5_000);
    await first.stop();
    const second = await IngestWorker.start(testConfig({ ...config, batch: { maxRows: 1_000, maxWaitMs: 300 } }, config.kafka.topicPrefix.slice(0, -1)), { journal: new MemoryBatchJournal() });
    try {
      await waitFor('re-read committed', async () => (await second.metrics.offsetsCommitted.get()).values.reduce((a, v) => a + v.value, 0) > 0);
      await new Promise((r) => setTimeout(r, 1_500));
      const [s] = await queryRows<Record<string, number>>(second.clickhouse, 'SELECT count() AS n FROM cost_metrics_ts');
      expect(Number(s!.n)).toBeGreaterThan(5_000);
    } finally {
      await second.stop();
    }
  });
});
