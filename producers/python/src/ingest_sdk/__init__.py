"""Producer SDK of the Kafka -> ClickHouse ingestion pipeline.

    from ingest_sdk import IngestProducer, EvolutionLogger

    with IngestProducer(brokers="kafka:9092") as client:
        client.insert_cost_metrics([{...}])      # returns once queued; close() flushes

Events are validated, Avro single-object encoded with the schemas packaged in ingest_sdk/schemas
(the same bytes as the TS SDK) and sent to ``<topic prefix><event type>`` keyed like the TS SDK.
"""

from .event_producer import DeliveryError, DeliveryFailure, EventProducer
from .event_types import EVENT_TYPES, EventType, event_type
from .evolution_logger import EvolutionLogger
from .ingest_producer import IngestProducer
from .settings import ProducerSettings
from .validation import EventValidationError, to_event_record

__all__ = [
    "DeliveryError",
    "DeliveryFailure",
    "EVENT_TYPES",
    "EventProducer",
    "EventType",
    "EventValidationError",
    "EvolutionLogger",
    "IngestProducer",
    "ProducerSettings",
    "event_type",
    "to_event_record",
]
__version__ = "0.1.0"
