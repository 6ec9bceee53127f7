"""The specification's whole metrics client (metrics-tables.md, "Python Client"):
``ping()``, the four ``insert_…_metrics`` calls and the four ``query_…`` calls.

Inserts are published to Kafka by the SDK's producer (IngestProducer: validated, Avro encoded,
acknowledged at flush/close/exit) and the workers insert them; they never go to ClickHouse from
here. Queries read ClickHouse (CLICKHOUSE_URL) or a running worker's query endpoint
(queries.py)."""

from __future__ import annotations

from typing import Any

from .ingest_producer import IngestProducer
from .queries import ClickHouseHttp, MetricsQueries, WorkerEndpoint, backend_from_env
from .settings import ProducerSettings


class MetricsClient(MetricsQueries, IngestProducer):
    """``IngestProducer`` plus the query calls and ``ping()``.

    Keyword arguments: the producer settings (``brokers``, ``topic_prefix``, …, see
    ProducerSettings; else KAFKA_* variables), ``clickhouse_url`` / ``worker_url`` (else
    CLICKHOUSE_URL, QUERY_WORKER_URL, METRICS_PORT), ``query_timeout_s`` (default 30),
    ``flush_at_exit`` (default on, or INGEST_FLUSH_AT_EXIT)."""

    def __init__(
        self,
        settings: ProducerSettings | None = None,
        *,
        clickhouse_url: str | None = None,
        worker_url: str | None = None,
        query_timeout_s: float = 30.0,
        query_backend: ClickHouseHttp | WorkerEndpoint | None = None,
        **options: Any,
    ) -> None:
        # The query side first: a bad setting there is refused before a producer exists.
        self._queries = query_backend or backend_from_env(clickhouse_url=clickhouse_url, worker_url=worker_url, timeout_s=query_timeout_s)
        IngestProducer.__init__(self, settings, **options)

    @property
    def query_side(self) -> str:
        """Where the queries go, without credentials."""
        return self._queries.where()

    def ping(self, timeout_s: float = 5.0) -> bool:
        """True when both a Kafka broker answers (cluster metadata within ``timeout_s``) and the
        query side answers (ClickHouse's /ping, or the worker's /query). Never raises for an
        unreachable side: False. ``ping_details()`` says which side failed."""
        details = self.ping_details(timeout_s)
        return details["kafka"] is True and details["queries"] is True

    def ping_details(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """``{"kafka": True or the error, "queries": True or False, "query_side": where}``."""
        kafka: Any
        try:
            self._producer.list_topics(timeout=timeout_s)
            kafka = True
        except Exception as err:  # KafkaException: no broker answered
            kafka = f"{self.settings.brokers}: {err}"
        return {"kafka": kafka, "queries": self._queries.ping(), "query_side": self._queries.where()}
