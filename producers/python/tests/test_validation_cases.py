"""The shared fixture of good and bad events (test/fixtures/sdk-validation-cases.json) through
the Python SDK: test/unit/sdk-validation-cases.test.ts runs the same cases through the TS SDK."""

import pytest

from conftest import load_fixture, revive
from ingest_sdk import EVENT_TYPES, EventValidationError, to_event_record
from ingest_sdk.json_text import to_json_text

FIXTURE = load_fixture("sdk-validation-cases.json")
NOW = FIXTURE["now"]
GOOD = [c for c in FIXTURE["cases"] if c["error"] is None]
BAD = [c for c in FIXTURE["cases"] if c["error"] is not None]


def emit_like(type_name, events):
    t = EVENT_TYPES[type_name]
    return [to_event_record(t, e, i, NOW) for i, e in enumerate(events)]


def test_the_fixture_has_cases():
    assert len(GOOD) >= 10 and len(BAD) >= 20


@pytest.mark.parametrize("case", GOOD, ids=[f"{c['type']}: {c['name']}" for c in GOOD])
def test_accepts(case):
    records = emit_like(case["type"], revive(case["events"]))
    assert len(records) == len(case["events"])
    for field, want in case.get("expect", {}).items():
        assert records[0][field] == (NOW if want == "$now" else want), field


@pytest.mark.parametrize("case", BAD, ids=[f"{c['type']}: {c['name']}" for c in BAD])
def test_refuses(case):
    with pytest.raises(EventValidationError) as info:
        emit_like(case["type"], revive(case["events"]))
    e = info.value
    assert (e.event_type, e.field, e.index) == (case["type"], case["error"]["field"], case["error"]["index"])
    assert str(e).startswith(f"{case['type']}[{case['error']['index']}].{case['error']['field']}: ")


@pytest.mark.parametrize("case", FIXTURE["json"], ids=[str(i) for i in range(len(FIXTURE["json"]))])
def test_json_text_is_json_stringify(case):
    assert to_json_text(revive(case["value"])) == case["text"]
