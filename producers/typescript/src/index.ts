// The producer SDK's public entry: the producers, their options, every error they throw, and the
// event types (for EventProducer.emit and for typing the inputs).
export { EventProducer, BufferFullError, WIRE_FORMATS, type ProducerOptions, type WireFormat } from './event-producer.js';
export { SchemaRegistrationError } from './schema-registration.js';
export type { RegistrySettings } from './schema-registry-settings.js';
export { IngestProducer, type CostMetricInput, type PerformanceMetricInput, type QualityMetricInput, type ResourceMetricInput } from './ingest-producer.js';
export { EvolutionLogger, type EventSink, type LogAgentActionInput, type LogEvolutionRunInput, type LogGenerationInput, type LogIndividualInput, type LogLineageInput, type LogLlmInteractionInput, type LogParetoFrontInput, type ParetoFrontMemberInput, type UpdateEvolutionRunInput } from './evolution-logger.js';
export { DeliveryError } from './delivery-error.js';
export { PartialSendError, PRODUCER_CLIENTS, type ProducerClient, type ProducerTransport, type OutgoingMessage, type OutgoingTopic } from './kafka-transport.js';
export { EventValidationError } from './schemas/validate-event.js';
export { ConfigError, kafkaSettingsFromEnv, KAFKA_ENV, SECURITY_PROTOCOLS, SASL_MECHANISMS, type KafkaSecurity, type SecurityProtocol, type SaslMechanism } from './kafka-settings.js';
export { KafkaConnectError, KafkaAuthorizationError } from './kafka-errors.js';
export type { OAuthBearerProvider } from './kafka-security.js';
export { KAFKA_CODECS, type KafkaCodec } from './kafka-codecs.js';
export type { MetricRegistry, ProducerMetrics } from './producer-metrics.js';
export * from './schemas/index.js';
