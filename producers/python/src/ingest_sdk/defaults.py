"""The specification's module-level entry points, ready-made:

- ``get_clickhouse_client()`` (metrics-tables.md: ``from shared.clickhouse import
  get_clickhouse_client``): the process's MetricsClient, made at the first call from the
  environment (KAFKA_* for the inserts, CLICKHOUSE_URL or the worker's query endpoint for the
  queries). Unset KAFKA_BROKERS means the local broker 127.0.0.1:9092, as every producer of
  this SDK; ``ping()`` says whether it answers.
- ``ch_logger`` (evolution-tables.md: ``from genesis.utils.clickhouse_logger import
  ch_logger``): the evolution logger. Its producer is made at the first call. **Unconfigured
  (KAFKA_BROKERS unset and no ``ch_logger.configure(...)``), the first call raises
  LoggerNotConfigured naming KAFKA_BROKERS**: the specification's logger silently disabled
  itself without CLICKHOUSE_URL, which loses every event of a run that forgot the setting.

Both flush at interpreter exit (exit_flush.py) unless INGEST_FLUSH_AT_EXIT=0.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable

from .evolution_logger import EvolutionCalls, EvolutionLogger
from .metrics_client import MetricsClient

_lock = threading.Lock()
_client: MetricsClient | None = None


def get_clickhouse_client(**options: Any) -> MetricsClient:
    """The shared MetricsClient (made at the first call, from the environment). With keyword
    arguments (MetricsClient's: ``brokers``, ``topic_prefix``, ``clickhouse_url``,
    ``worker_url``, …) a new client of its own is made and returned instead."""
    global _client
    if options:
        return MetricsClient(**options)
    with _lock:
        if _client is None or _client._closed:
            _client = MetricsClient()
        return _client


class LoggerNotConfigured(RuntimeError):
    """ch_logger was used with no broker configured."""


class DefaultEvolutionLogger(EvolutionCalls):
    """``ingest_sdk.ch_logger``: the EvolutionLogger calls (log_evolution_run, log_generation,
    log_individual, log_pareto_front, log_lineage, log_llm_interaction, log_agent_action /
    log_action, update_evolution_run) on a producer made at the first call.

    Settings: ``configure(**settings)`` (EvolutionLogger's keyword arguments: brokers,
    topic_prefix, security settings, flush_at_exit, …), else the KAFKA_* environment variables;
    KAFKA_BROKERS must be set unless ``configure`` gave ``brokers``."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._logger: EvolutionLogger | None = None
        self._options: dict[str, Any] | None = None

    def configure(self, **settings: Any) -> "DefaultEvolutionLogger":
        """Sets the producer's settings (checked now); replaces a producer made earlier (which is
        closed first, flushing its events). Returns ch_logger, for chaining."""
        with self._lock:
            old, self._logger = self._logger, None
            self._options = dict(settings)
            self._logger = EvolutionLogger(**self._options)
        if old is not None:
            old.close()
        return self

    @property
    def enabled(self) -> bool:
        """Whether a call would be sent: a producer exists, or ``configure``/KAFKA_BROKERS says where."""
        return self._logger is not None or self._options is not None or bool(os.environ.get("KAFKA_BROKERS"))

    @property
    def producer(self) -> EvolutionLogger:
        """The EvolutionLogger behind ch_logger, made now if it was not yet."""
        with self._lock:
            if self._logger is None or self._logger._closed:
                if self._options is None and not os.environ.get("KAFKA_BROKERS"):
                    raise LoggerNotConfigured(
                        "ingest_sdk.ch_logger is not configured: set KAFKA_BROKERS (e.g. 127.0.0.1:9092, the brokers the "
                        "workers read) or call ch_logger.configure(brokers=...) before the first log call; nothing was sent"
                    )
                self._logger = EvolutionLogger(**(self._options or {}))
            return self._logger

    def emit(self, type_: Any, events: Iterable[Any]) -> None:
        self.producer.emit(type_, events)

    def flush(self, timeout_s: float | None = None) -> None:
        """Waits for Kafka's acknowledgements of everything logged (EventProducer.flush)."""
        if self._logger is not None:
            self._logger.flush(timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Flushes and closes the producer; a later call makes a new one."""
        with self._lock:
            logger, self._logger = self._logger, None
        if logger is not None:
            logger.close(timeout_s)

    @property
    def events_acknowledged(self) -> int:
        return 0 if self._logger is None else self._logger.events_acknowledged


ch_logger = DefaultEvolutionLogger()

__all__ = ["DefaultEvolutionLogger", "LoggerNotConfigured", "ch_logger", "get_clickhouse_client"]
