export { EventProducer, type ProducerOptions } from './event-producer.js';
export { IngestProducer, type CostMetricInput, type PerformanceMetricInput, type QualityMetricInput, type ResourceMetricInput } from './ingest-producer.js';
export { EvolutionLogger, type EventSink } from './evolution-logger.js';
export { EventValidationError } from '../schemas/validate-event.js';
