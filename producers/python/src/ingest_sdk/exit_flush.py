"""Flush at interpreter exit: events queued but not yet acknowledged when the program ends are
sent before it exits, so a script that never calls ``close()`` loses nothing.

Every producer (IngestProducer, EvolutionLogger, the client of ``get_clickhouse_client()`` and
``ch_logger``) registers here unless made with ``flush_at_exit=False`` or the environment says
``INGEST_FLUSH_AT_EXIT=0`` (also ``false``/``no``/``off``). At exit each open producer is
flushed, for at most its delivery timeout (``delivery_timeout_ms``, librdkafka's
``message.timeout.ms``: an event not acknowledged by then has failed anyway). A failure is never
silent: the DeliveryError's message (topics, causes, brokers; no secrets) is logged as an error on the
``ingest_sdk`` logger, which prints it on stderr when logging is not configured. (The exit status cannot be changed from an atexit handler
without skipping the handlers of other libraries; call ``close()`` to get the error as an
exception instead.)

Registration holds a weak reference: a producer that is garbage-collected is not kept alive by
this, and a closed producer is skipped.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Any

ENV_FLUSH_AT_EXIT = "INGEST_FLUSH_AT_EXIT"
_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}

_lock = threading.Lock()
_producers: "weakref.WeakSet[Any]" = weakref.WeakSet()
_installed = False
#: Messages of the failures of the last exit flush (for tests in-process).
last_failures: list[str] = []


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v in _FALSE:
        return False
    if v in _TRUE:
        return True
    raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, got {value!r}")


def wanted(flush_at_exit: bool | None) -> bool:
    """The parameter when given, else INGEST_FLUSH_AT_EXIT (default on)."""
    if flush_at_exit is not None:
        if not isinstance(flush_at_exit, bool):
            raise TypeError(f"flush_at_exit must be True, False or None, got {flush_at_exit!r}")
        return flush_at_exit
    return _env_flag(ENV_FLUSH_AT_EXIT, True)


def register(producer: Any) -> None:
    global _installed
    with _lock:
        _producers.add(producer)
        if not _installed:
            atexit.register(flush_all)
            _installed = True


def unregister(producer: Any) -> None:
    with _lock:
        _producers.discard(producer)


def flush_all() -> int:
    """Flushes every registered, still open producer; returns how many failed (each reported on
    stderr). Run by atexit; callable directly."""
    with _lock:
        producers = list(_producers)
        _producers.clear()
    failed = 0
    last_failures.clear()
    for p in producers:
        if getattr(p, "_closed", False):
            continue
        timeout_s = p.settings.delivery_timeout_ms / 1000 + 5
        try:
            p.close(timeout_s)
        except Exception as err:  # DeliveryError, or a broken producer: reported, never swallowed
            failed += 1
            message = f"ingest_sdk: at exit, events queued by {type(p).__name__} were not delivered: {err}"
            last_failures.append(message)
            # Python's last-resort handler prints it on stderr when logging is not configured.
            logging.getLogger("ingest_sdk").error(message)
    return failed
