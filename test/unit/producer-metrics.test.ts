import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createProducerMetrics } from '@kafka-clickhouse-ingest/producer/producer-metrics.js';

/**
 * The SDK's metrics are prom-client's: a host app's Registry serves them
 * (ProducerOptions.registry), and prometheusText() renders them for an app without one.
 */
describe('producer metrics', () => {
  it('counts and observes per event type; prometheusText renders the exposition format', async () => {
    const m = createProducerMetrics();
    m.eventsSent.inc({ event_type: 'cost_metrics' }, 3);
    m.eventsSent.inc({ event_type: 'cost_metrics' }, 2);
    m.eventsSent.inc({ event_type: 'llm_logs' });
    m.sendLatency.observe({ event_type: 'cost_metrics' }, 0.02);
    m.sendLatency.observe({ event_type: 'cost_metrics' }, 3);
    expect((await m.eventsSent.get()).values).toEqual([
      { labels: { event_type: 'cost_metrics' }, value: 5 },
      { labels: { event_type: 'llm_logs' }, value: 1 },
    ]);
    const text = await m.prometheusText();
    expect(text).toContain('# TYPE ingest_producer_events_sent_total counter\ningest_producer_events_sent_total{event_type="cost_metrics"} 5\n');
    expect(text).toContain('ingest_producer_send_latency_seconds_bucket{le="0.01",event_type="cost_metrics"} 0\n');
    expect(text).toContain('ingest_producer_send_latency_seconds_bucket{le="0.025",event_type="cost_metrics"} 1\n');
    expect(text).toContain('ingest_producer_send_latency_seconds_bucket{le="5",event_type="cost_metrics"} 2\n');
    expect(text).toContain('ingest_producer_send_latency_seconds_bucket{le="+Inf",event_type="cost_metrics"} 2\n');
    expect(text).toContain('ingest_producer_send_latency_seconds_sum{event_type="cost_metrics"} 3.02\n');
    expect(text).toContain('ingest_producer_send_latency_seconds_count{event_type="cost_metrics"} 2\n');
  });

  it('registers in a prom-client Registry, which serves them as its own', async () => {
    const registry = new Registry();
    const m = createProducerMetrics(registry);
    m.bytesSent.inc({ event_type: 'cost_metrics' }, 1234);
    m.sendLatency.observe({ event_type: 'cost_metrics' }, 0.2);
    const served = await registry.metrics();
    expect(served).toContain('ingest_producer_bytes_sent_total{event_type="cost_metrics"} 1234');
    expect(served).toContain('ingest_producer_send_latency_seconds_count{event_type="cost_metrics"} 1');
    // A second producer on the same registry is refused, as prom-client refuses duplicate names.
    expect(() => createProducerMetrics(registry)).toThrow(/already been registered/);
  });
});
