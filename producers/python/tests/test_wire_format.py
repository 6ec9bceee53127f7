"""The Python SDK writes the TS SDK's bytes: same fingerprints, same single-object encoding of
every event type (test/fixtures/sdk-wire-cases.json is written by the TS SDK)."""

import json

import pytest

from conftest import REPO, load_fixture
from ingest_sdk import EVENT_TYPES
from ingest_sdk.event_types import SingleObjectEncoder
from ingest_sdk.wire_format import avro_backend, crc64_avro, fingerprint, parsing_canonical_form

CASES = load_fixture("sdk-wire-cases.json")["cases"]
META = {m["name"]: m for m in json.loads((REPO / "producers/python/src/ingest_sdk/schemas/event_types.json").read_text())}


def backends():
    out = ["avro"]
    try:
        import fastavro  # noqa: F401

        out.append("fastavro")
    except ImportError:
        pass
    return out


def test_crc64_avro_known_values():
    # The Avro specification's empty fingerprint, and the Java reference for the schema "int".
    assert crc64_avro(b"") == 0xC15D213AA4D7A795
    assert fingerprint("int").hex() == "8f5c393f1ad57572"


def test_canonical_form_follows_the_spec():
    schema = {
        "type": "record", "name": "R", "namespace": "a.b", "doc": "x",
        "fields": [
            {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}, "doc": "d", "default": 0},
            {"name": "u", "type": ["null", {"type": "string", "logicalType": "uuid"}], "default": None},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
            {"name": "l", "type": {"type": "array", "items": "E"}},
        ],
    }
    assert parsing_canonical_form(schema) == (
        '{"name":"a.b.R","type":"record","fields":[{"name":"t","type":"long"},{"name":"u","type":["null","string"]},'
        '{"name":"e","type":{"name":"a.b.E","type":"enum","symbols":["A","B"]}},{"name":"l","type":{"type":"array","items":"a.b.E"}}]}'
    )


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_fingerprint_is_the_ts_one(name):
    assert EVENT_TYPES[name].fingerprint.hex() == META[name]["fingerprint"]


def test_every_event_type_has_cases():
    assert {c["type"] for c in CASES} == set(EVENT_TYPES)


@pytest.mark.parametrize("backend", backends())
def test_same_bytes_as_the_ts_sdk_for_every_case(backend):
    enc = SingleObjectEncoder(backend)
    mismatched = [(c["type"], i) for i, c in enumerate(CASES) if enc.encode(EVENT_TYPES[c["type"]], c["record"]).hex() != c["hex"]]
    assert mismatched == [], f"{backend}: bytes differ from the TS SDK's for {mismatched}"


def test_partition_keys_are_the_ts_ones():
    for c in CASES:
        t = EVENT_TYPES[c["type"]]
        assert str(c["record"][t.partition_key]) == c["key"]
        assert t.partition_key == META[c["type"]]["partition_key"]


def test_packaged_avsc_files_equal_the_repository_schemas():
    packaged = REPO / "producers/python/src/ingest_sdk/schemas"
    for name in EVENT_TYPES:
        assert (packaged / f"{name}.avsc").read_text() == (REPO / "schemas/avro" / f"{name}.avsc").read_text(), name
    assert sorted(p.stem for p in (REPO / "schemas/avro").glob("*.avsc")) == sorted(EVENT_TYPES)


def test_default_backend_is_reported():
    assert avro_backend() in ("avro", "fastavro")


@pytest.mark.parametrize("backend", backends())
def test_emit_queues_the_ts_sdk_bytes_and_keys(backend):
    """The bytes and keys emit() hands to librdkafka (its per-call validator and encoder), for
    every case: the TS SDK's. Offline producer: nothing is sent."""
    from ingest_sdk import EventProducer

    p = EventProducer(brokers="127.0.0.1:1", topic_prefix="t.", avro_backend=backend, flush_at_exit=False)
    queued = []
    p._produce = lambda type_name, topic, messages: queued.extend((type_name, topic, k, v) for k, v in messages)
    try:
        for c in CASES:
            p.emit(c["type"], [c["record"]])
    finally:
        p._closed = True
        p._producer.purge()
    assert [(t, f"t.{t}") for t, *_ in queued] == [(c["type"], f"t.{c['type']}") for c in CASES]
    mismatched = [i for i, (c, (_, _, key, value)) in enumerate(zip(CASES, queued)) if (key, value.hex()) != (c["key"], c["hex"])]
    assert mismatched == [], f"{backend}: emit() queued other bytes or keys than the TS SDK's for cases {mismatched}"
