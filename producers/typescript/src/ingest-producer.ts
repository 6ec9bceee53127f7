import { costMetrics } from './schemas/cost-metrics.js';
import type { EventInput } from './schemas/event-type.js';
import { performanceMetrics } from './schemas/performance-metrics.js';
import { qualityMetrics } from './schemas/quality-metrics.js';
import { resourceMetrics } from './schemas/resource-metrics.js';
import { EventProducer, type ProducerOptions } from './event-producer.js';

export type CostMetricInput = EventInput<typeof costMetrics>;
export type PerformanceMetricInput = EventInput<typeof performanceMetrics>;
export type ResourceMetricInput = EventInput<typeof resourceMetrics>;
export type QualityMetricInput = EventInput<typeof qualityMetrics>;

/**
 * The producer SDK for infra metrics: one typed `emit…` call per event type.
 * Each call validates all its events first (a bad one refuses the whole call with an
 * error naming the field), then resolves when Kafka acknowledged every event.
 */
export class IngestProducer {
  private constructor(readonly events: EventProducer) {}

  static async connect(opts: ProducerOptions = {}): Promise<IngestProducer> {
    return new IngestProducer(await EventProducer.connect(opts));
  }

  get metrics() {
    return this.events.metrics;
  }

  emitCostMetrics(events: readonly CostMetricInput[]): Promise<void> {
    return this.events.emit(costMetrics, events);
  }

  emitPerformanceMetrics(events: readonly PerformanceMetricInput[]): Promise<void> {
    return this.events.emit(performanceMetrics, events);
  }

  emitResourceMetrics(events: readonly ResourceMetricInput[]): Promise<void> {
    return this.events.emit(resourceMetrics, events);
  }

  emitQualityMetrics(events: readonly QualityMetricInput[]): Promise<void> {
    return this.events.emit(qualityMetrics, events);
  }

  flush(): Promise<void> {
    return this.events.flush();
  }

  close(): Promise<void> {
    return this.events.close();
  }
}
