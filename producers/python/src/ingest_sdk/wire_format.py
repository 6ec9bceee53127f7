"""Avro single-object encoding, byte for byte as the TS SDK writes it (producers/typescript/src/schemas/wire-format.ts).

    C3 01 | CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form (8 bytes LE) | datum

The datum is written by a maintained Avro library: fastavro when it is installed, else Apache
``avro``. Only the fingerprint is computed here, because Apache avro 1.11 (Debian's) has no
fingerprint function and its ``canonical_form`` keeps ``{"type": "long"}`` for a logical type
where the specification's [PRIMITIVES] rule asks for ``"long"`` (so its fingerprint would not be
the one the workers know).
"""

from __future__ import annotations

import io
import json
from typing import Any, Callable

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
HEADER_BYTES = 10

_EMPTY = 0xC15D213AA4D7A795
_TABLE: list[int] = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp & 0xFFFFFFFFFFFFFFFF)


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint, as the Avro specification defines it."""
    fp = _EMPTY
    for b in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ b) & 0xFF]
    return fp


_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_KEEP = ("name", "type", "fields", "symbols", "items", "values", "size")


def parsing_canonical_form(schema: Any) -> str:
    """The specification's Parsing Canonical Form of a JSON schema (dict, list or str)."""

    def full(name: str, namespace: str | None) -> str:
        return name if "." in name or not namespace else f"{namespace}.{name}"

    def canon(s: Any, namespace: str | None) -> Any:
        if isinstance(s, str):
            return s if s in _PRIMITIVES else full(s, namespace)
        if isinstance(s, list):
            return [canon(b, namespace) for b in s]
        t = s["type"]
        if t in _PRIMITIVES:  # [PRIMITIVES]: a primitive with attributes (logicalType) is its name
            return t
        out: dict[str, Any] = {}
        ns = namespace
        if t in ("record", "enum", "fixed", "error"):
            name = full(s["name"], s.get("namespace", namespace))
            ns = name.rsplit(".", 1)[0] if "." in name else None
            out["name"] = name
        for key in _KEEP:
            if key == "name" or key not in s:
                continue
            v = s[key]
            if key == "type":
                out["type"] = "record" if v == "error" else v
            elif key == "fields":
                out["fields"] = [{"name": f["name"], "type": canon(f["type"], ns)} for f in v]
            elif key in ("items", "values"):
                out[key] = canon(v, ns)
            else:
                out[key] = v
        return out

    return json.dumps(canon(schema, None), separators=(",", ":"), ensure_ascii=False)


def fingerprint(schema: Any) -> bytes:
    """8-byte little-endian CRC-64-AVRO fingerprint of the schema's canonical form. Computed here
    whichever library writes the datums, so the header never depends on the backend; the SDK
    checks it against the fingerprint the TS definitions give (event_types.json) when it loads."""
    return crc64_avro(parsing_canonical_form(schema).encode("utf-8")).to_bytes(8, "little")


def _strip_logical_types(s: Any) -> Any:
    """The schema without logicalType annotations: the bytes are the same (a logical type only
    annotates its base type), and Apache avro would otherwise demand datetime/UUID objects where
    the SDK hands it epoch ms and UUID strings."""
    if isinstance(s, list):
        return [_strip_logical_types(b) for b in s]
    if isinstance(s, dict):
        out = {k: v for k, v in s.items() if k != "logicalType"}
        if "fields" in out:
            out["fields"] = [{**f, "type": _strip_logical_types(f["type"])} for f in out["fields"]]
        for k in ("items", "values"):
            if k in out:
                out[k] = _strip_logical_types(out[k])
        if out.get("type") in _PRIMITIVES and set(out) <= {"type", "doc"}:
            return out["type"]
        return out
    return s


def avro_backend() -> str:
    """'fastavro' or 'avro': the library that writes the datums."""
    try:
        import fastavro  # noqa: F401
    except ImportError:
        return "avro"
    return "fastavro"


def datum_writer(schema: Any, backend: str | None = None, prefix: bytes = b"") -> Callable[[dict[str, Any]], bytes]:
    """A function that writes one record of ``schema`` as Avro binary, after ``prefix`` (a
    header) in the same buffer."""
    backend = backend or avro_backend()
    plain = _strip_logical_types(schema)
    if backend == "fastavro":
        import fastavro

        parsed = fastavro.parse_schema(plain)
        schemaless_writer, new_buffer = fastavro.schemaless_writer, io.BytesIO

        def write_fastavro(record: dict[str, Any]) -> bytes:
            # A buffer per record (not one shared): emits from several threads stay whole.
            buf = new_buffer()
            buf.write(prefix)
            schemaless_writer(buf, parsed, record)
            return buf.getvalue()

        return write_fastavro
    try:
        import avro.io
        import avro.schema
    except ImportError:
        raise ImportError("ingest_sdk needs fastavro (its default dependency: pip install fastavro) or Apache avro (pip install 'ingest-sdk[avro]', or Debian's python3-avro) to write events") from None

    parsed = avro.schema.parse(json.dumps(plain))
    writer = avro.io.DatumWriter(parsed)

    def write_avro(record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(prefix)
        # write_data, not write: write() first validates the whole datum against the schema,
        # half of Apache avro's time per event, and to_event_record has already checked every
        # value (type, range, UUID, finiteness) more strictly than avro would.
        writer.write_data(parsed, record, avro.io.BinaryEncoder(buf))
        return buf.getvalue()

    return write_avro


def read_fingerprint(message: bytes) -> str | None:
    """The fingerprint (hex) of a single-object-encoded message, or None without the header."""
    if len(message) < HEADER_BYTES or message[:2] != SINGLE_OBJECT_MAGIC:
        return None
    return message[2:HEADER_BYTES].hex()
