import { Counter, Histogram, Registry } from 'prom-client';

/**
 * The producer's metrics, on prom-client. Each producer keeps them in a registry of its own
 * unless the host app passes one it serves (ProducerOptions.registry); `prometheusText()` renders
 * the producer's registry for an app that serves /metrics itself. Names follow Prometheus
 * conventions: base units (`_seconds`, `_bytes`), `_total` for counters, one bounded label
 * (the event type).
 */

/** A registry the producer registers its metrics in: a prom-client Registry. */
export type MetricRegistry = Registry;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Every metric of the producer: name, help and label, in one place (docs/operations.md explains them). */
export function createProducerMetrics(registry?: MetricRegistry) {
  const own = registry ?? new Registry();
  const r = [own];
  const metrics = {
    eventsSent: new Counter({ name: 'ingest_producer_events_sent_total', help: 'Events acknowledged by Kafka.', labelNames: ['event_type'], registers: r }),
    bytesSent: new Counter({ name: 'ingest_producer_bytes_sent_total', help: 'Encoded event bytes acknowledged by Kafka.', labelNames: ['event_type'], registers: r }),
    sendErrors: new Counter({ name: 'ingest_producer_send_errors_total', help: 'Events whose send failed after the client retries.', labelNames: ['event_type'], registers: r }),
    validationErrors: new Counter({ name: 'ingest_producer_validation_errors_total', help: 'Calls refused because of invalid input.', labelNames: ['event_type'], registers: r }),
    sendLatency: new Histogram({ name: 'ingest_producer_send_latency_seconds', help: 'Emit call to broker acknowledgement.', labelNames: ['event_type'], buckets: LATENCY_BUCKETS, registers: r }),
  };
  return {
    ...metrics,
    /** The registry given in ProducerOptions.registry, if any. */
    registry,
    /** The producer's metrics in the Prometheus text exposition format, for a /metrics endpoint. */
    async prometheusText(): Promise<string> {
      if (!registry) return own.metrics();
      // A shared registry holds the host app's metrics too: only the producer's.
      const mine = new Set(Object.values(metrics).map((m) => (m as unknown as { name: string }).name));
      return (await Promise.all([...mine].map((name) => own.getSingleMetricAsString(name)))).join('\n') + '\n';
    },
  };
}

export type ProducerMetrics = ReturnType<typeof createProducerMetrics>;
