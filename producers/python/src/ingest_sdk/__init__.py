"""Producer SDK of the Kafka -> ClickHouse ingestion pipeline.

    from ingest_sdk import get_clickhouse_client, ch_logger   # the specification's entry points

    client = get_clickhouse_client()          # KAFKA_BROKERS; CLICKHOUSE_URL or a worker for queries
    client.insert_cost_metrics([{...}])       # returns once queued; flushed at exit or close()
    client.query_cost_hourly(customer_id=..., start_date=..., end_date=...)
    ch_logger.log_generation(run_id=..., generation=5, ...)

    from ingest_sdk import IngestProducer, EvolutionLogger   # or producers of your own

Events are validated, Avro single-object encoded with the schemas packaged in ingest_sdk/schemas
(the same bytes as the TS SDK) and sent to ``<topic prefix><event type>`` keyed like the TS SDK.
"""

from .confluent_framing import SchemaRegistrationError
from .defaults import DefaultEvolutionLogger, LoggerNotConfigured, ch_logger, get_clickhouse_client
from .event_producer import DeliveryError, DeliveryFailure, EventProducer
from .event_types import EVENT_TYPES, EventType, event_type
from .evolution_logger import EvolutionLogger
from .ingest_producer import IngestProducer
from .metrics_client import MetricsClient
from .queries import QueryError, QueryInputError
from .settings import KafkaClientVersionError, ProducerSettings
from .validation import EventValidationError, to_event_record

__all__ = [
    "DefaultEvolutionLogger",
    "DeliveryError",
    "DeliveryFailure",
    "EVENT_TYPES",
    "EventProducer",
    "EventType",
    "EventValidationError",
    "EvolutionLogger",
    "IngestProducer",
    "KafkaClientVersionError",
    "LoggerNotConfigured",
    "MetricsClient",
    "ProducerSettings",
    "QueryError",
    "QueryInputError",
    "SchemaRegistrationError",
    "ch_logger",
    "event_type",
    "get_clickhouse_client",
    "to_event_record",
]
__version__ = "0.1.0"
