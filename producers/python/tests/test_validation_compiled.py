"""to_event_record runs a plan compiled once per event type (validation.record_validator), with
per-field checks for the common exact types; everything else goes through the general path
(validation._reference_record). Both must give the same record, or the same error with the same
message, for every input: the shared fixture's cases, and every field of every event type set
to each of a list of awkward values."""

import copy
import math
import uuid
from datetime import date, datetime, timezone

import pytest

from conftest import load_fixture, revive
from ingest_sdk import EVENT_TYPES, EventValidationError, to_event_record
from ingest_sdk.validation import _reference_record, record_validator

FIXTURE = load_fixture("sdk-validation-cases.json")
NOW = FIXTURE["now"]
# One valid event per type: the records of the wire fixture (written by the TS SDK) are valid input.
GOOD = {c["type"]: c["record"] for c in load_fixture("sdk-wire-cases.json")["cases"]}

ODD = [
    None, True, False, 0, 1, -1, 2, 0.0, -0.0, 1.0, 0.5, 1.5, -1.5, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
    2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 10**400, float(2**53), float("nan"), float("inf"), float("-inf"),
    "", "x", "1", "aws", "00000000-0000-0000-0000-000000000000", "7E1B3B3E-1D8C-4C2F-9E3A-2B7C0E5D4F6A",
    "7e1b3b3e-1d8c-4c2f-9e3a-2b7c0e5d4f6a\n", "not-a-uuid", "2024-01-02T03:04:05Z", "2024-01-02", "1969-12-31T23:59:59Z",
    "{}", "[1, 2]", "{bad json", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), date(2024, 1, 2),
    {}, {"a": 1}, [], [1], b"bytes", object,
]


class Str(str):
    pass


class Int(int):
    pass


class Float(float):
    pass


class Dict(dict):
    pass


ODD += [Str("aws"), Int(1), Float(0.5)]


@pytest.fixture(autouse=True)
def fixed_uuid(monkeypatch):
    """Auto UUIDs (llm_logs.id, agent_actions.id) are random: the same one for both paths."""
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID("12345678-1234-4234-8234-123456789abc"))


def outcome(fn, type_, given, index=3):
    """(record, None) or (None, (field, index, message)); other exceptions by type and text."""
    try:
        return fn(type_, copy.deepcopy(given), index, NOW), None
    except EventValidationError as e:
        return None, (e.event_type, e.field, e.index, str(e))
    except Exception as e:  # noqa: BLE001 - the general path's own exceptions must match too
        return None, (type(e).__name__, str(e))


def same(a, b):
    """Records equal, NaN included, and of the same value types (1 is not 1.0 for the writer)."""
    ra, ea = a
    rb, eb = b
    if ea is not None or eb is not None:
        return ea == eb and ra is None and rb is None
    if list(ra) != list(rb):
        return False
    for k in ra:
        x, y = ra[k], rb[k]
        if type(x) is not type(y):
            return False
        if not (x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))):
            return False
    return True


def test_every_event_type_has_a_good_case():
    assert set(GOOD) == set(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_compiled_equals_general_for_odd_values_in_every_field(name):
    t = EVENT_TYPES[name]
    base = GOOD[name]
    checked = 0
    for field in t.field_names:
        variants = [{k: v for k, v in base.items() if k != field}]  # the field missing
        variants += [{**base, field: v} for v in ODD]
        for given in variants:
            want = outcome(_reference_record, t, given)
            got = outcome(to_event_record, t, given)
            assert same(got, want), (field, given.get(field, "<missing>"), got, want)
            checked += 1
    assert checked == len(t.field_names) * (len(ODD) + 1)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_compiled_equals_general_for_whole_events(name):
    t = EVENT_TYPES[name]
    base = GOOD[name]
    for given in [base, Dict(base), {**base, "nope": 1}, {1: 2, **base}, {}, None, [], "x", [base]]:
        assert same(outcome(to_event_record, t, given), outcome(_reference_record, t, given)), given


def test_fixture_cases_agree():
    for case in FIXTURE["cases"]:
        t = EVENT_TYPES[case["type"]]
        for i, event in enumerate(revive(case["events"])):
            assert same(outcome(to_event_record, t, event, i), outcome(_reference_record, t, event, i)), (case["name"], i)


def test_now_is_filled_when_not_given():
    t = EVENT_TYPES["cost_metrics"]
    given = {k: v for k, v in GOOD["cost_metrics"].items() if k != "timestamp"}
    assert record_validator(t)(given, 0, 1234)["timestamp"] == 1234
    assert abs(record_validator(t)(given, 0, None)["timestamp"] - datetime.now(timezone.utc).timestamp() * 1000) < 60_000


def test_one_plan_per_event_type():
    t = EVENT_TYPES["cost_metrics"]
    assert record_validator(t) is record_validator(t)


def test_compiled_equals_general_for_a_synthetic_type():
    """Shapes no packaged type has yet: a nullable timestamp, a nullable auto field, bounds on a
    double and on a nullable int, a nullable uuid, a boolean, a float, a default."""
    from ingest_sdk.event_types import EventType

    schema = {"type": "record", "name": "S", "fields": [
        {"name": "ts", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": None},
        {"name": "auto_id", "type": ["null", {"type": "string", "logicalType": "uuid"}], "default": None},
        {"name": "u", "type": ["null", {"type": "string", "logicalType": "uuid"}], "default": None},
        {"name": "d", "type": "double"},
        {"name": "n", "type": ["null", "int"], "default": None},
        {"name": "l", "type": ["null", "long"], "default": None},
        {"name": "f", "type": "float", "default": 0},
        {"name": "b", "type": "boolean", "default": False},
        {"name": "s", "type": ["null", "string"]},
    ]}
    t = EventType(name="synthetic", table="s", partition_key="s", timestamp_field="ts", schema=schema,
                  fingerprint=b"\0" * 8, auto_fields={"auto_id": "uuid"}, bounds={"d": (-1.5, 2.5), "n": (0, 10)})
    base = {"ts": 5, "auto_id": None, "u": "12345678-1234-4234-8234-123456789abc", "d": 1.0, "n": 3, "l": 4, "f": 0.5, "b": True, "s": "x"}
    for field in t.field_names:
        for given in [{k: v for k, v in base.items() if k != field}] + [{**base, field: v} for v in ODD]:
            assert same(outcome(to_event_record, t, given), outcome(_reference_record, t, given)), (field, given.get(field, "<missing>"))
