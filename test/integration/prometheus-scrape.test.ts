import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowInserter } from '../../consumers/clickhouse-inserter.js';
import { IngestWorker } from '../../consumers/worker.js';
import type { Config } from '../../lib/config.js';
import { topicName } from '../../lib/kafka.js';
import { IngestProducer } from '@kafka-clickhouse-ingest/producer';
import { costEvents } from '../helpers/cost-events.js';
import { PrometheusServer, WORKER_JOB, freePort, prometheusBinary, readYaml } from '../helpers/prometheus.js';
import { countRows, createTopics, testConfig, waitFor } from '../helpers/stack.js';

/**
 * Users watch throughput and ingest lag in Prometheus: a real Prometheus server (Debian's
 * package), configured from deploy/prometheus/prometheus.yml and alerts.yml, scrapes a worker
 * that drains a backlog and then a live stream of events, and every number is read back
 * through Prometheus's HTTP query API, not from the worker's registry.
 */

const BACKLOG = 10_000; // produced before the worker starts: lag > 0 at first
const LIVE_CHUNKS = 10; // then produced while the worker consumes: rate() > 0 over several scrapes
const CHUNK = 1_000;
const TOTAL = BACKLOG + LIVE_CHUNKS * CHUNK;
const TABLE = 'cost_metrics_ts';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Prometheus scraping a worker under load', () => {
  let config: Readonly<Config>;
  let topic: string;
  let target: string;
  let worker: IngestWorker | undefined;
  let producer: IngestProducer | undefined;
  let prom: PrometheusServer | undefined;
  const startedAt = Date.now();
  // Event times end about now, so ingest_freshness_seconds describes this run.
  const eventTime = Date.now() - TOTAL * 1_000;

  // Inserts wait until the test has seen the backlog's lag in Prometheus: without this hold a
  // fast machine could drain the backlog between two scrapes and the lag would never be visible.
  let releaseInserts!: () => void;
  const insertsReleased = new Promise<void>((r) => (releaseInserts = r));
  const heldUntilReleased = (inner: RowInserter): RowInserter => async (table, rows, token) => {
    await insertsReleased;
    return inner(table, rows, token);
  };

  beforeAll(async () => {
    prometheusBinary(); // fails first, with the install hint, when the package is missing
    const port = await freePort();
    config = testConfig({ metrics: { port, lagIntervalMs: 500 }, consumer: { eventTypes: ['cost_metrics'] } });
    topic = topicName(config.kafka, 'cost_metrics');
    target = `127.0.0.1:${port}`;

    await createTopics(config, ['cost_metrics']);
    producer = await IngestProducer.connect({ brokers: [...config.kafka.brokers], topicPrefix: config.kafka.topicPrefix });
    for (let i = 0; i < BACKLOG; i += CHUNK) await producer.emitCostMetrics(costEvents(CHUNK, i, eventTime));

    // Prometheus first, so it scrapes the worker from the moment its /metrics answers.
    prom = await PrometheusServer.start({ workerTarget: target, interval: '1s' });
    worker = await IngestWorker.start(config, { wrapInserter: heldUntilReleased });
    expect(worker.metricsUrl).toBe(`http://${target}`);
  });

  afterAll(async () => {
    releaseInserts();
    const errors: unknown[] = [];
    for (const step of [() => producer?.close(), () => worker?.stop(), () => prom?.stop()]) {
      await Promise.resolve()
        .then(step)
        .catch((err) => errors.push(err));
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  });

  it('loads the project alert rules into a real server, every rule healthy', async () => {
    const declared = (readYaml(new URL('../../deploy/prometheus/alerts.yml', import.meta.url).pathname) as { groups: Array<{ rules: Array<{ alert?: string; record?: string }> }> }).groups
      .flatMap((g) => g.rules.map((r) => r.alert ?? r.record))
      .sort();
    expect(declared.length).toBeGreaterThan(0);
    // Health is "unknown" until the first evaluation (evaluation_interval 1s).
    const groups = await waitFor(
      'every rule evaluated with health ok',
      async () => {
        const g = await prom!.ruleGroups();
        const rules = g.flatMap((x) => x.rules);
        return rules.length === declared.length && rules.every((r) => r.health === 'ok') ? g : undefined;
      },
      30_000,
      250,
    ).catch(async (err) => {
      throw new Error(`${(err as Error).message}; rules now: ${JSON.stringify(await prom!.ruleGroups())}`);
    });
    expect(groups.every((g) => g.file.endsWith('deploy/prometheus/alerts.yml'))).toBe(true);
    expect(groups.flatMap((g) => g.rules.map((r) => r.name)).sort()).toEqual(declared);
  });

  it('scrapes the worker as job ingest-workers on the deployed metrics_path: up == 1', async () => {
    const t = await waitFor('the worker target up', async () => (await prom!.targets()).find((x) => x.scrapePool === WORKER_JOB && x.health === 'up'), 30_000, 250).catch(
      async (err) => {
        throw new Error(`${(err as Error).message}; targets: ${JSON.stringify(await prom!.targets())}`);
      },
    );
    const job = prom!.config.scrape_configs!.find((j) => j.job_name === WORKER_JOB)!;
    expect(t.scrapeUrl).toBe(`${worker!.metricsUrl}${job.metrics_path ?? '/metrics'}`);
    expect(t.labels.instance).toBe(target);
    await waitFor('up{job="ingest-workers"} == 1', async () => (await prom!.value(`up{job="${WORKER_JOB}"}`)) === 1, 10_000, 250);
  });

  it('shows the backlog as lag, throughput while it drains, lag 0 and the ClickHouse row count at the end', async () => {
    const lagExpr = `sum(ingest_consumer_lag_messages{topic="${topic}"})`;
    // 1. Backlog, nothing inserted yet: lag counts every message, on every partition of the topic.
    //    (Inserts are released even when this fails, so the next test still sees a drained run.)
    try {
      await waitFor(`${lagExpr} == ${BACKLOG}`, async () => (await prom!.value(lagExpr)) === BACKLOG, 30_000, 250).catch(async (err) => {
        throw new Error(`${(err as Error).message}; last value ${await prom!.value(lagExpr)}; series: ${JSON.stringify(await prom!.query('ingest_consumer_lag_messages'))}`);
      });
      const lagSeries = await prom!.query(`ingest_consumer_lag_messages{topic="${topic}"}`);
      expect(lagSeries.map((s) => s.metric.partition).sort()).toEqual(['0', '1', '2', '3']);
      expect(lagSeries.every((s) => s.metric.group === config.consumer.groupId && s.metric.job === WORKER_JOB)).toBe(true);
    } finally {
      releaseInserts();
    }

    // 2. Drain the backlog while more events arrive.
    for (let i = 0; i < LIVE_CHUNKS; i++) {
      await producer!.emitCostMetrics(costEvents(CHUNK, BACKLOG + i * CHUNK, eventTime));
      await sleep(300);
    }
    await waitFor(`${TOTAL} rows in ClickHouse`, async () => (await countRows(worker!.clickhouse, TABLE)) >= TOTAL, 90_000, 250);
    const rows = await countRows(worker!.clickhouse, TABLE);
    expect(rows).toBe(TOTAL);

    // 3. Prometheus catches up: rows counted by the worker == rows in ClickHouse, lag back to 0.
    const insertedExpr = `sum(ingest_rows_inserted_total{job="${WORKER_JOB}"})`;
    await waitFor(`${insertedExpr} == ${rows}`, async () => (await prom!.value(insertedExpr)) === rows, 30_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}; Prometheus has ${await prom!.value(insertedExpr)}`);
    });
    expect(await prom!.value(`sum(ingest_rows_inserted_total{table="${TABLE}"})`)).toBe(rows);
    await waitFor(`${lagExpr} == 0`, async () => (await prom!.value(lagExpr)) === 0, 30_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}; last value ${await prom!.value(lagExpr)}`);
    });

    // 4. The stored history, as a dashboard would graph it: lag went from the backlog to 0, and
    //    throughput was positive while rows flowed.
    //    The grid ends exactly now (just after lag was seen at 0), one point every 0.5 s.
    const end = Date.now();
    const start = end - Math.ceil((end - startedAt) / 500) * 500;
    const [lagRange] = await prom!.queryRange(lagExpr, start, end, 0.5);
    const lagValues = lagRange?.values.map(([, v]) => v) ?? [];
    expect(Math.max(...lagValues)).toBeGreaterThanOrEqual(BACKLOG);
    expect(lagValues.at(-1)).toBe(0);
    const [rateRange] = await prom!.queryRange('sum(rate(ingest_rows_inserted_total[5s]))', start, end, 0.5);
    const peak = Math.max(0, ...(rateRange?.values.map(([, v]) => v) ?? []));
    expect(peak, 'sum(rate(ingest_rows_inserted_total[5s])) never above 0').toBeGreaterThan(0);
    console.info(`prometheus-scrape: ${rows} rows; peak lag ${Math.max(...lagValues)}; peak throughput ${peak.toFixed(0)} rows/s`);
  });

  it('exports stuck, freshness, dead-letter depth, the flush histogram and process metrics', async () => {
    const stuck = await prom!.query(`ingest_partition_stuck{topic="${topic}"}`);
    expect(stuck.map((s) => s.metric.partition).sort()).toEqual(['0', '1', '2', '3']);
    expect(stuck.every((s) => s.value === 0)).toBe(true);

    // The newest event was stamped when the test began; the gauge follows within a lag interval
    // or two (it is sampled after the lag, so one scrape may still show the previous value).
    const freshnessExpr = `ingest_freshness_seconds{table="${TABLE}"}`;
    const freshness = await waitFor(`${freshnessExpr} < 120`, async () => {
      const v = await prom!.value(freshnessExpr);
      return v !== undefined && v >= 0 && v < 120 ? v : undefined;
    }, 10_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}; Prometheus has ${await prom!.value(freshnessExpr)}`);
    });
    expect(freshness).toBeGreaterThanOrEqual(0);

    const depth = await prom!.query(`ingest_dead_letter_depth{job="${WORKER_JOB}"}`);
    expect(Object.fromEntries(depth.map((s) => [s.metric.state, s.value]))).toEqual({ retrying: 0, dead: 0 });

    const buckets = await prom!.query(`ingest_flush_duration_seconds_bucket{table="${TABLE}"}`);
    expect(buckets.length).toBeGreaterThan(1);
    expect(buckets.some((b) => b.metric.le === '+Inf')).toBe(true);
    const count = await prom!.value(`sum(ingest_flush_duration_seconds_count{table="${TABLE}"})`);
    expect(count).toBeGreaterThan(0);
    expect(await prom!.value(`sum(ingest_flush_duration_seconds_bucket{table="${TABLE}", le="+Inf"})`)).toBe(count);
    const p99 = await prom!.value(`histogram_quantile(0.99, sum by (le) (ingest_flush_duration_seconds_bucket{table="${TABLE}"}))`);
    expect(Number.isFinite(p99)).toBe(true);

    expect(await prom!.value(`process_resident_memory_bytes{job="${WORKER_JOB}"}`)).toBeGreaterThan(0);

    // Nothing is wrong with this run, so no alert fires.
    expect((await prom!.alerts()).filter((a) => a.state === 'firing')).toEqual([]);
  });
});
