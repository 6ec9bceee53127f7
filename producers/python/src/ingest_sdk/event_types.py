"""The event types, loaded from the schema files packaged with the SDK (schemas/), which
``producers/python/scripts/sync-schemas.ts`` copies from the TypeScript definitions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Mapping

from .wire_format import datum_writer, fingerprint


@dataclass(frozen=True)
class EventType:
    name: str
    table: str
    partition_key: str
    timestamp_field: str
    schema: Mapping[str, Any]
    fingerprint: bytes
    json_fields: tuple[str, ...] = ()
    auto_fields: Mapping[str, str] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def fields(self) -> list[Mapping[str, Any]]:
        return list(self.schema["fields"])

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema["fields"]]

    def topic(self, prefix: str) -> str:
        """Topic = prefix + event type name, as lib/kafka.ts topicName."""
        return f"{prefix}{self.name}"


def _schema_text(name: str) -> str:
    return resources.files(__package__).joinpath("schemas").joinpath(name).read_text(encoding="utf-8")


def _load() -> dict[str, EventType]:
    types: dict[str, EventType] = {}
    for meta in json.loads(_schema_text("event_types.json")):
        schema = json.loads(_schema_text(f"{meta['name']}.avsc"))
        fp = fingerprint(schema)
        if fp.hex() != meta["fingerprint"]:
            # A packaged .avsc edited by hand, or a canonical-form bug: the workers would
            # dead-letter every event as an unknown schema, so refuse to start instead.
            raise RuntimeError(f"ingest_sdk: fingerprint of {meta['name']}.avsc is {fp.hex()}, the TS definitions give {meta['fingerprint']}")
        types[meta["name"]] = EventType(
            name=meta["name"],
            table=meta["table"],
            partition_key=meta["partition_key"],
            timestamp_field=meta["timestamp_field"],
            schema=schema,
            fingerprint=fp,
            json_fields=tuple(meta["json_fields"]),
            auto_fields=dict(meta["auto_fields"]),
            bounds={k: (v[0], v[1]) for k, v in meta["bounds"].items()},
        )
    return types


EVENT_TYPES: Mapping[str, EventType] = _load()


def event_type(name: str) -> EventType:
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown event type {name!r} (known: {', '.join(EVENT_TYPES)})") from None


class SingleObjectEncoder:
    """Encodes records of any event type: header + datum, one datum writer per type."""

    def __init__(self, backend: str | None = None) -> None:
        self.backend = backend
        self._writers: dict[str, Callable[[dict[str, Any]], bytes]] = {}

    def encoder(self, type_: EventType) -> Callable[[dict[str, Any]], bytes]:
        """The function that encodes one record of ``type_`` (header + datum)."""
        write = self._writers.get(type_.name)
        if write is None:
            write = self._writers[type_.name] = datum_writer(type_.schema, self.backend, prefix=b"\xc3\x01" + type_.fingerprint)
        return write

    def encode(self, type_: EventType, record: dict[str, Any]) -> bytes:
        return self.encoder(type_)(record)
