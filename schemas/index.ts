import { costMetrics } from './cost-metrics.js';
import type { EventType } from './event-type.js';

export * from './event-type.js';
export * from './wire-format.js';
export { costMetrics };

/** Every event type the pipeline carries, by name. */
export const eventTypes: readonly EventType[] = [costMetrics];
