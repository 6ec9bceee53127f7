"""The Confluent wire format, the Kafka ecosystem's framing of Avro with a schema registry:

    00 | schema id in the registry (4 bytes, big-endian) | Avro binary datum

as producers/typescript/src/schemas/confluent-framing.ts writes it. Each event type's schema is
registered under its topic's subject (``<topic>-value``, TopicNameStrategy, as Confluent's
serializers do) at its first emit, through ``confluent_kafka.schema_registry``; the registry
answers with the id (the existing one for a schema it has), or refuses a schema incompatible with
the subject's compatibility level, with its own message."""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable

from .event_types import EventType
from .settings import ProducerSettings
from .wire_format import datum_writer

CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_BYTES = 5


class SchemaRegistrationError(RuntimeError):
    """The registry refused (or could not take) an event type's schema; nothing of the call was queued."""

    def __init__(self, event_type: str, subject: str, message: str) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.subject = subject


def confluent_header(schema_id: int) -> bytes:
    if not 0 <= schema_id <= 0xFFFFFFFF:
        raise ValueError(f"schema id must be an unsigned 32-bit integer, got {schema_id}")
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")


def read_schema_id(message: bytes) -> int | None:
    """The schema id of a Confluent-framed message, or None when it is not in that framing."""
    if len(message) < CONFLUENT_HEADER_BYTES or message[:1] != CONFLUENT_MAGIC:
        return None
    return int.from_bytes(message[1:CONFLUENT_HEADER_BYTES], "big")


def registry_schema_text(schema: Any) -> str:
    """The schema's JSON for the registry, the string "{}" written as "\\u007b}" (the same JSON
    value): Apicurio Registry 2.x rewrites ``: "{}"`` to ``:{}`` before detecting a schema's type,
    which breaks a string field whose default is "{}" (the TS SDK does the same)."""
    return re.sub(r'"\{\}"', r'"\\u007b}"', json.dumps(schema, ensure_ascii=False))


def registry_client(settings: ProducerSettings) -> Any:
    """A confluent_kafka.schema_registry.SchemaRegistryClient with the settings' URL, auth and CA."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    conf: dict[str, Any] = {"url": settings.schema_registry_url}
    if settings.schema_registry_username is not None:
        conf["basic.auth.user.info"] = f"{settings.schema_registry_username}:{settings.schema_registry_password}"
    if settings.schema_registry_ca_cert is not None:
        conf["ssl.ca.location"] = settings.schema_registry_ca_cert
    if settings.schema_registry_token is not None:
        conf["bearer.auth.credentials.source"] = "STATIC_TOKEN"
        conf["bearer.auth.token"] = settings.schema_registry_token
    try:
        return SchemaRegistryClient(conf)
    except ValueError as err:
        if settings.schema_registry_token is not None and "bearer" in str(err):
            raise ValueError("schema_registry_token (SCHEMA_REGISTRY_TOKEN) needs a confluent-kafka whose registry client has bearer auth (2.x); use basic auth with this one") from None
        raise


class ConfluentEncoder:
    """Encodes records in the Confluent wire format, registering each type's schema once."""

    def __init__(self, settings: ProducerSettings, backend: str | None = None, client: Any = None) -> None:
        self._client = client if client is not None else registry_client(settings)
        self._backend = backend
        self._headers: dict[str, bytes] = {}
        self._writers: dict[str, Callable[[dict[str, Any]], bytes]] = {}
        self._lock = threading.Lock()

    def header(self, type_: EventType, topic: str) -> bytes:
        """The 5-byte header of ``topic``'s messages; registers the schema at the first call."""
        header = self._headers.get(topic)
        if header is not None:
            return header
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        subject = f"{topic}-value"
        with self._lock:
            header = self._headers.get(topic)
            if header is None:
                try:
                    schema_id = self._register(subject, Schema(registry_schema_text(type_.schema), "AVRO"))
                except SchemaRegistryError as err:
                    raise SchemaRegistrationError(type_.name, subject, f"{type_.name}: the schema registry did not register its schema under subject {subject}: HTTP {err.http_status_code}: {err.error_message}") from None
                except Exception as err:  # the registry unreachable (requests' errors)
                    raise SchemaRegistrationError(type_.name, subject, f"{type_.name}: the schema registry did not register its schema under subject {subject}: {type(err).__name__}: {err}") from None
                header = self._headers[topic] = confluent_header(schema_id)
        return header

    def _register(self, subject: str, schema: Any) -> int:
        """Registers, trying again (5 attempts, 100 ms doubling) while the registry answers 5xx or not
        at all; a 4xx (409 incompatible, 401) is its answer. Some registries (Apicurio's embedded
        store) fail concurrent registrations from two producers with a 500."""
        import time

        from confluent_kafka.schema_registry.error import SchemaRegistryError

        for attempt in range(1, 6):
            try:
                return int(self._client.register_schema(subject, schema))
            except SchemaRegistryError as err:
                if attempt == 5 or (err.http_status_code or 0) < 500:
                    raise
            except Exception:
                if attempt == 5:
                    raise
            time.sleep(0.1 * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def encoder(self, type_: EventType, header: bytes) -> Callable[[dict[str, Any]], bytes]:
        """The function that encodes one record of ``type_`` after ``header``."""
        write = self._writers.get(type_.name)
        if write is None:
            write = self._writers[type_.name] = datum_writer(type_.schema, self._backend)
        return lambda record: header + write(record)
