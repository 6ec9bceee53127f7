import io
import json
import os
import uuid
from pathlib import Path

import pytest

# Producers a test leaves open (a refused client, a failure case) are not flushed when pytest
# exits: their events were meant to fail, and flushing them would only delay the exit and print
# after the summary. Tests of the flush at exit run their own interpreters (test_defaults.py).
os.environ["INGEST_FLUSH_AT_EXIT"] = "0"

from ingest_sdk import EVENT_TYPES
from ingest_sdk.wire_format import HEADER_BYTES, _strip_logical_types

#: The repository root (producers/python/tests -> ../../..): the shared fixtures live in test/fixtures.
REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "test" / "fixtures"


def load_fixture(name):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def revive(value):
    """{"$number": "NaN"} and the like stand for the numbers JSON cannot write."""
    if isinstance(value, list):
        return [revive(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$number"}:
            return float(value["$number"].replace("Infinity", "inf"))
        return {k: revive(v) for k, v in value.items()}
    return value


def decode(type_name, message):
    """The record in a single-object-encoded message, read by Apache avro (not by the SDK's writer)."""
    import avro.io
    import avro.schema

    t = EVENT_TYPES[type_name]
    assert message[:2] == b"\xc3\x01" and message[2:HEADER_BYTES] == t.fingerprint
    reader = avro.io.DatumReader(avro.schema.parse(json.dumps(_strip_logical_types(t.schema))))
    return reader.read(avro.io.BinaryDecoder(io.BytesIO(message[HEADER_BYTES:])))


@pytest.fixture
def brokers():
    value = os.environ.get("KAFKA_BROKERS")
    if not value:
        pytest.fail("integration tests need the real broker: set KAFKA_BROKERS (scripts/services.sh start; . scripts/env.sh)")
    return value


@pytest.fixture
def unique_prefix():
    return f"py{uuid.uuid4().hex[:10]}."
