export { EventProducer, type ProducerOptions } from './event-producer.js';
export { IngestProducer } from './ingest-producer.js';
export { EventValidationError } from '../schemas/validate-event.js';
