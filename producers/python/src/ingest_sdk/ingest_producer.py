"""The infra-metrics SDK: the specification's ``client.insert_…_metrics([...])`` calls
(metrics-tables.md), publishing to Kafka instead of inserting into ClickHouse."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .event_producer import EventProducer


class IngestProducer(EventProducer):
    """``insert_cost_metrics``, ``insert_performance_metrics``, ``insert_resource_metrics`` and
    ``insert_quality_metrics`` take a list of dicts as in the specification (``timestamp`` a
    datetime, epoch ms or ISO string; left out = now). Each call validates all its events first
    (a bad one refuses the whole call, naming the event type, index and field) and returns once
    they are queued; ``flush()`` waits for Kafka's acknowledgements."""

    def insert_cost_metrics(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.emit("cost_metrics", events)

    def insert_performance_metrics(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.emit("performance_metrics", events)

    def insert_resource_metrics(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.emit("resource_metrics", events)

    def insert_quality_metrics(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.emit("quality_metrics", events)
