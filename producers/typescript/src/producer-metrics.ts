/**
 * The producer's metrics, without a metrics library: the SDK must not pull prom-client (or any
 * registry) into every application that emits events. Each metric has prom-client's shape where
 * a host app meets it: `get()` resolves to prom-client's `{ name, help, type, values }` (so a
 * prom-client Registry can serve it: ProducerOptions.registry), and `prometheusText()` renders
 * the text exposition format for an app that serves /metrics itself. Names follow Prometheus
 * conventions: base units (`_seconds`, `_bytes`), `_total` for counters, one bounded label
 * (the event type).
 */

type Labels = Record<string, string>;

export interface MetricValue {
  labels: Labels;
  value: number;
  /** Histograms: `<name>_bucket`, `<name>_sum` or `<name>_count`. */
  metricName?: string;
}

/** prom-client's MetricObjectWithValues. */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** What a registry needs of a metric: prom-client's Registry.registerMetric takes these as they are. */
export interface RegistrableMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  get(): Promise<MetricSnapshot>;
}

/**
 * A metrics registry the producer registers its metrics in; a prom-client `Registry` is one. The
 * parameter is `never` so that prom-client's own declaration (which names its metric classes)
 * fits without this package depending on prom-client; what is passed is a RegistrableMetric.
 */
export interface MetricRegistry {
  registerMetric(metric: never): void;
}

const labelKey = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

export class Counter implements RegistrableMetric {
  readonly type = 'counter';
  private readonly values = new Map<string, MetricValue>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels, by = 1): void {
    const key = labelKey(labels);
    const v = this.values.get(key);
    if (v) v.value += by;
    else this.values.set(key, { labels: { ...labels }, value: by });
  }

  async get(): Promise<MetricSnapshot> {
    return { name: this.name, help: this.help, type: this.type, values: [...this.values.values()].map((v) => ({ labels: { ...v.labels }, value: v.value })), aggregator: 'sum' };
  }
}

export class Histogram implements RegistrableMetric {
  readonly type = 'histogram';
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelKey(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) {
      // Cumulative buckets, as Prometheus defines them (`counts` already are: a value counts in every bucket it fits).
      this.buckets.forEach((le, i) => values.push({ labels: { ...s.labels, le: String(le) }, value: s.counts[i]!, metricName: `${this.name}_bucket` }));
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Every metric of the producer: name, help and label, in one place (docs/operations.md explains them). */
export function createProducerMetrics(registry?: MetricRegistry) {
  const metrics = {
    eventsSent: new Counter('ingest_producer_events_sent_total', 'Events acknowledged by Kafka.'),
    bytesSent: new Counter('ingest_producer_bytes_sent_total', 'Encoded event bytes acknowledged by Kafka.'),
    sendErrors: new Counter('ingest_producer_send_errors_total', 'Events whose send failed after the client retries.'),
    validationErrors: new Counter('ingest_producer_validation_errors_total', 'Calls refused because of invalid input.'),
    sendLatency: new Histogram('ingest_producer_send_latency_seconds', 'Emit call to broker acknowledgement.', LATENCY_BUCKETS),
  };
  const all: RegistrableMetric[] = Object.values(metrics);
  for (const m of all) registry?.registerMetric(m as never);
  return {
    ...metrics,
    /** The registry given in ProducerOptions.registry, if any. */
    registry,
    /** Every producer metric in the Prometheus text exposition format (version 0.0.4), for a /metrics endpoint. */
    async prometheusText(): Promise<string> {
      const blocks = await Promise.all(all.map(async (m) => renderMetric(await m.get())));
      return `${blocks.join('\n\n')}\n`;
    },
  };
}

export type ProducerMetrics = ReturnType<typeof createProducerMetrics>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function renderMetric(m: MetricSnapshot): string {
  const lines = [`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`];
  for (const v of m.values) {
    const labels = Object.entries(v.labels).map(([k, val]) => `${k}="${escapeLabel(val)}"`);
    lines.push(`${v.metricName ?? m.name}${labels.length ? `{${labels.join(',')}}` : ''} ${Number.isFinite(v.value) ? v.value : v.value > 0 ? '+Inf' : v.value < 0 ? '-Inf' : 'NaN'}`);
  }
  return lines.join('\n');
}
