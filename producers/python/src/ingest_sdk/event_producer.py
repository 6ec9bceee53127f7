"""Publishes validated, Avro single-object-encoded events to Kafka through confluent-kafka."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from . import exit_flush
from .confluent_framing import ConfluentEncoder
from .event_types import EventType, SingleObjectEncoder, event_type
from .settings import ProducerSettings, check_librdkafka
from .validation import EventValidationError, now_ms, record_validator


@dataclass(frozen=True)
class DeliveryFailure:
    """One event Kafka did not acknowledge."""

    event_type: str
    topic: str
    key: str
    error: str
    retriable: bool


class DeliveryError(RuntimeError):
    """Raised by flush() (and close()) when events were not acknowledged: names the brokers,
    the cause of each failure and the last error the client heard from a broker."""

    def __init__(self, message: str, failures: Sequence[DeliveryFailure], pending: int = 0) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.pending = pending


class EventProducer:
    """Validates, encodes and queues events; librdkafka batches, compresses and sends them.

    - ``emit`` validates every event of the call before any is queued: a bad one raises
      EventValidationError naming the event type, index and field, and nothing is sent.
    - ``emit`` returns once the events are queued (it blocks only while the queue is full,
      ``max_buffered_kbytes``); ``flush()`` waits for the acknowledgements and raises
      DeliveryError for every failure since the last flush. A failure is also handed to
      ``on_delivery_error`` as it happens, when given; it is raised at flush() either way, so
      none is silently lost.
    - Not thread-safe for concurrent emits of one call's events with another's; one producer
      per thread, or a lock, keeps calls whole.
    """

    def __init__(
        self,
        settings: ProducerSettings | None = None,
        *,
        on_delivery_error: Callable[[DeliveryFailure], None] | None = None,
        avro_backend: str | None = None,
        flush_at_exit: bool | None = None,
        **options: Any,
    ) -> None:
        from confluent_kafka import Producer, libversion

        self.settings = settings if settings is not None else ProducerSettings.from_env(**options)
        check_librdkafka(self.settings, libversion())
        self._on_delivery_error = on_delivery_error
        self._encoder = SingleObjectEncoder(avro_backend)
        # wire_format "confluent": the registry client, built before any connection (docs/schema-registry.md).
        self._confluent = ConfluentEncoder(self.settings, avro_backend) if self.settings.wire_format == "confluent" else None
        self._lock = threading.Lock()
        self._failures: list[DeliveryFailure] = []
        self._last_broker_error: str | None = None
        # Set when the brokers refuse the client itself (authentication, TLS, a fatal error):
        # flush() then raises at once rather than waiting out its timeout.
        self._refusal: str | None = None
        self._refused_at = 0  # events_acknowledged when the refusal was heard
        # Messages handed to librdkafka, and those it reported failed: every other one is
        # acknowledged or still queued (len(producer)), so the acknowledged count needs no
        # report per message (below).
        self._produced = 0
        self._failed = 0
        self._closed = False
        # One delivery callback for every message (a bound method made once, not a closure per
        # message): the failed message's topic and key come from the message itself, and the
        # event type's name from the topic (each emit notes its topic here).
        self._type_by_topic: dict[str, str] = {}
        self._delivery = self._on_delivery
        config = self.settings.librdkafka_config()
        config["error_cb"] = self._on_client_error
        # Delivery reports for failures only: a report per acknowledged message is a Python call
        # on the emitting thread for each event, which only counted it. librdkafka releases an
        # acknowledged message at once, so len(producer) stops counting it then.
        config["delivery.report.only.error"] = True
        # librdkafka's own log lines go to Python logging (served by poll/flush), not to stderr.
        config.setdefault("logger", logging.getLogger("ingest_sdk.kafka"))
        self._config = config
        self._producer = Producer(config)
        # Queued events are flushed at interpreter exit unless opted out (exit_flush.py).
        if exit_flush.wanted(flush_at_exit):
            exit_flush.register(self)

    @property
    def events_acknowledged(self) -> int:
        """Events Kafka acknowledged so far: exact once flush() returned with nothing pending.
        Before that it can be lower (never higher): librdkafka's queue length also counts its
        error and log events until a poll serves them."""
        return max(0, self._produced - self._failed - len(self._producer))

    def emit(self, type_: EventType | str, events: Iterable[Any]) -> None:
        """Validates and queues ``events`` of ``type_``; returns once all are queued."""
        if self._closed:
            raise RuntimeError("EventProducer is closed")
        t = event_type(type_) if isinstance(type_, str) else type_
        if isinstance(events, (dict, str, bytes)) or not hasattr(events, "__iter__"):
            raise EventValidationError(t.name, "(events)", f"expected a list of events, got {type(events).__name__}")
        now = now_ms()
        topic = t.topic(self.settings.topic_prefix)
        messages = []
        max_bytes = int(self._config.get("message.max.bytes", 1_000_000))
        # Confluent framing: the schema id, registered at the type's first emit; the registry's
        # refusal raises SchemaRegistrationError and nothing of the call is queued.
        header = self._confluent.header(t, topic) if self._confluent is not None else None
        # The type's validation plan and encoder, looked up once per call.
        validate = record_validator(t)
        encode = self._encoder.encoder(t) if header is None else self._confluent.encoder(t, header)
        key_field = t.partition_key
        append = messages.append
        for i, event in enumerate(events):
            record = validate(event, i, now)
            value = encode(record)
            # librdkafka would refuse it at produce(), after the call's earlier events were queued.
            if len(value) > max_bytes:
                raise EventValidationError(t.name, "(event)", f"encoded event is {len(value)} bytes, more than message.max.bytes ({max_bytes})", i)
            append((str(record[key_field]), value))
        self._produce(t.name, topic, messages)
        # Serves delivery callbacks of earlier calls without waiting.
        self._producer.poll(0)

    def _produce(self, type_name: str, topic: str, messages: list[tuple[str, bytes]]) -> None:
        """Queues one call's (key, value) messages, in order."""
        self._type_by_topic[topic] = type_name
        produce, on_delivery = self._producer.produce, self._delivery
        queued = 0
        try:
            for key, value in messages:
                while True:
                    try:
                        # No timestamp: librdkafka stamps the send time (CreateTime), as the TS SDK,
                        # so the broker's time-based retention never deletes a backfilled event early.
                        # A str key is sent as its UTF-8 bytes. Positional arguments (partition -1:
                        # librdkafka's partitioner picks it from the key) parse faster than keywords.
                        produce(topic, value, key, -1, on_delivery)
                        break
                    except BufferError:
                        # Queue full (max_buffered_kbytes): wait for acknowledgements to free room.
                        self._producer.poll(0.05)
                queued += 1
        finally:
            self._produced += queued

    def _on_delivery(self, err: Any, msg: Any) -> None:
        # Called for failed messages only (delivery.report.only.error).
        if err is None:
            return
        self._failed += 1
        topic = msg.topic()
        key = msg.key()
        failure = DeliveryFailure(
            self._type_by_topic.get(topic, topic),
            topic,
            key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key),
            f"{err.str()} ({err.name()})",
            bool(err.retriable()),
        )
        with self._lock:
            self._failures.append(failure)
        if self._on_delivery_error is not None:
            self._on_delivery_error(failure)

    def flush(self, timeout_s: float | None = None) -> None:
        """Waits until every queued event is acknowledged or failed; raises DeliveryError naming
        the failures (and the events still queued when ``timeout_s`` ran out). When the brokers
        refuse the client (a wrong password, an untrusted certificate, a fatal error) it raises
        at once, the events still queued, with "cannot connect to Kafka at <brokers>: <cause>"."""
        from confluent_kafka import KafkaException

        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                pending = self._producer.flush(1.0 if remaining is None else min(1.0, remaining))
            except KafkaException as e:
                # A fatal error (e.g. no idempotent producer id: the principal may write nowhere).
                self._on_client_error(e.args[0])
                pending = len(self._producer)
            # Events acknowledged since the refusal: the brokers take the client again.
            if self._refusal is not None and self.events_acknowledged > self._refused_at:
                self._refusal = None
            if pending == 0 or self._refusal is not None or (deadline is not None and time.monotonic() >= deadline):
                break
        with self._lock:
            failures, self._failures = self._failures, []
        if failures or pending:
            raise DeliveryError(self._describe(failures, pending), failures, pending)

    def _describe(self, failures: list[DeliveryFailure], pending: int) -> str:
        parts = []
        if self._refusal is not None and pending:
            parts.append(self._refusal)
        if failures:
            causes: dict[str, int] = {}
            for f in failures:
                causes[f"{f.topic}: {f.error}"] = causes.get(f"{f.topic}: {f.error}", 0) + 1
            parts.append(f"{len(failures)} event(s) not delivered: " + "; ".join(f"{n} x {c}" for c, n in causes.items()))
        if pending:
            parts.append(f"{pending} event(s) still unacknowledged" + ("" if self._refusal is not None else " at the flush timeout"))
        parts.append(f"brokers {self.settings.brokers}")
        if self._last_broker_error and self._refusal is None:
            parts.append(f"last client error: {self._last_broker_error}")
        return "; ".join(parts)

    def _on_client_error(self, err: Any) -> None:
        # librdkafka reports connection and authentication errors here (with the broker's
        # address), not per message; kept for the DeliveryError message. "All brokers are down"
        # follows each of them: it does not replace the cause.
        from confluent_kafka import KafkaError

        if err.code() != KafkaError._ALL_BROKERS_DOWN or self._last_broker_error is None:
            self._last_broker_error = err.str()
        at = f"cannot connect to Kafka at {self.settings.brokers}: {err.str()}"
        self._refused_at = self.events_acknowledged
        if err.code() == KafkaError._AUTHENTICATION:
            self._refusal = f"{at}: check the SASL user, password and mechanism (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SASL_MECHANISM)"
        elif err.code() == KafkaError._SSL and "certificate verify failed" in err.str():
            self._refusal = f"{at}: the broker's certificate does not chain to ssl_ca_location (KAFKA_SSL_CA_LOCATION)"
        elif err.code() == KafkaError._SSL:
            self._refusal = at
        elif err.fatal():
            self._refusal = f"the producer stopped, refused by Kafka at {self.settings.brokers}: {err.str()}"

    def close(self, timeout_s: float | None = None) -> None:
        """Flushes (raising DeliveryError as flush does), then stops accepting events."""
        if self._closed:
            return
        self._closed = True
        exit_flush.unregister(self)
        self.flush(timeout_s)

    def __enter__(self) -> "EventProducer":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            # Already failing: deliver what can be, but do not hide the original error.
            try:
                self.close()
            except DeliveryError:
                pass
