"""Turns SDK input into the Avro record of an event type and checks every value, with the rules
and messages of the TS SDK (producers/typescript/src/schemas/validate-event.ts). test/fixtures/sdk-validation-cases.json
holds the cases both SDKs' tests run."""

from __future__ import annotations

import math
import re
import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable, Dict, NoReturn, Optional, Tuple

from .event_types import EventType
from .json_text import to_json_text


class EventValidationError(ValueError):
    """Bad input to an insert_…/log_… call: names the event type, the event's index and the field.
    Nothing of the call is sent."""

    def __init__(self, event_type: str, field: str, reason: str, index: int | None = None) -> None:
        self.event_type = event_type
        self.field = field
        self.reason = reason
        self.index = index
        super().__init__(f"{event_type}{'' if index is None else f'[{index}]'}.{field}: {reason}")


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# JavaScript's safe integers: the TS SDK refuses larger longs, so the Python one does too.
SAFE_MAX = 2**53 - 1


def now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def to_event_record(type_: EventType, given: Any, index: int | None = None, now: int | None = None) -> dict[str, Any]:
    """The Avro record of one event: auto fields filled (timestamp = now, id = random UUID),
    timestamps to epoch ms, JSON fields to JSON text, every value checked.
    Raises EventValidationError naming the event type, index and field."""
    return record_validator(type_)(given, index, now)


# One compiled validator per event type (keyed by the EventType object itself, kept alive here
# so its id is never reused): see record_validator.
_VALIDATORS: dict[int, tuple[EventType, Callable[[Any, int | None, int | None], dict[str, Any]]]] = {}
_MISSING: Any = object()


def record_validator(type_: EventType) -> Callable[[Any, int | None, int | None], dict[str, Any]]:
    """``validate(given, index, now)``: what ``to_event_record(type_, given, index, now)``
    returns or raises, from a plan built once per event type instead of walking the schema for
    every field of every event. Each field gets a check for the exact types that need no
    conversion (a ``str`` for a string, a finite ``float`` for a double, an ``int`` in range
    for an int...); any other value, a missing field, or input that is not a plain ``dict``
    takes the general path (``_reference_record``'s steps), so records and error messages are
    the same either way (tests/test_validation_compiled.py checks both paths agree)."""
    entry = _VALIDATORS.get(id(type_))
    if entry is None or entry[0] is not type_:
        entry = _VALIDATORS[id(type_)] = (type_, _compile(type_))
    return entry[1]


def _compile(type_: EventType) -> Callable[[Any, int | None, int | None], dict[str, Any]]:
    """One function per event type, its fields' checks written out in order (generated source,
    no call per field unless a value needs more than the exact-type test): what a loop over
    per-field closures computes, without a Python call and a tuple per field and event."""
    ns: dict[str, Any] = {"_MISSING": _MISSING, "_reference_record": _reference_record, "type_": type_, "known": frozenset(type_.field_names)}
    lines = [
        "def validate(given, index=None, now=None):",
        # Plain dicts with known fields only; anything else (a dict subclass, an unknown field,
        # not a dict) gets the general path, which raises or converts as it always did.
        "    if type(given) is not dict or not known.issuperset(given):",
        "        return _reference_record(type_, given, index, now)",
        "    get = given.get",
    ]
    names = []
    for n, f in enumerate(type_.fields):
        check, fast = _field_check(type_, f)
        ns[f"check{n}"] = check
        names.append(f["name"])
        lines.append(f"    v{n} = get({f['name']!r}, _MISSING)")
        if fast is None:
            lines.append(f"    v{n} = check{n}(v{n}, now, index)")
        else:
            test, values = fast
            for key, value in values.items():
                ns[f"{key}{n}"] = value
            lines.append(f"    if not ({test.format(v=f'v{n}', n=n)}):")
            lines.append(f"        v{n} = check{n}(v{n}, now, index)")
    lines.append("    return {" + ", ".join(f"{name!r}: v{n}" for n, name in enumerate(names)) + "}")
    exec(compile("\n".join(lines), f"<ingest_sdk record_validator {type_.name}>", "exec"), ns)
    validate = ns["validate"]
    validate.__qualname__ = f"record_validator[{type_.name}]"
    return validate


# A field's fast test: (expression on {v} and {n}, the values it names), or None.
_Fast = Optional[Tuple[str, Dict[str, Any]]]


def _fast(null_ok: bool, test: str, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("({v} is None or " if null_ok else "(") + test + ")", values


def _field_check(type_: EventType, f: Any) -> tuple[Callable[[Any, int | None, int | None], Any], _Fast]:
    """``check(value, now, index)`` for one field: the value as the Avro writer takes it, or
    EventValidationError. ``value`` is ``_MISSING`` when the event lacks the field. With it, the
    fast test (a Python expression on ``{v}``, and the values it names, suffixed with the field's
    number ``{n}``) of the values that are taken as they are, or None. The compiled validator
    calls ``check`` only for a value the fast test refused."""
    name, schema = f["name"], f["type"]
    auto = type_.auto_fields.get(name)
    is_timestamp = name == type_.timestamp_field
    is_json = name in type_.json_fields
    bounds = type_.bounds.get(name)

    def general(value: Any, now: int | None, index: int | None) -> Any:
        def invalid(reason: str) -> NoReturn:
            raise EventValidationError(type_.name, name, reason, index)

        return _field_value(type_, f, value, value is not _MISSING, now, invalid)

    if is_json:
        return general, None
    # The value check, for the exact types that the general path would pass through unchanged.
    null_ok = False
    base = schema
    if isinstance(schema, list) and "null" in schema:
        branches = [s for s in schema if s != "null"]
        if not branches:
            return general, None
        # None is null unless the field fills it (auto) or is the timestamp (to_epoch_ms refuses None).
        base, null_ok = branches[0], not auto and not is_timestamp
    logical = None
    if isinstance(base, dict) and "logicalType" in base:
        logical, base = base["logicalType"], base["type"]
        if not isinstance(base, str) or logical not in ("uuid", "timestamp-millis"):
            return general, None
    if is_timestamp and not (base == "long" and logical == "timestamp-millis"):
        return general, None
    lo, hi = (bounds[0], bounds[1]) if bounds else (None, None)

    if base == "string" and not is_timestamp and bounds is None:
        if logical == "uuid":
            return general, _fast(null_ok, "type({v}) is str and match{n}({v}) is not None", {"match": UUID_RE.match})
        if logical is None:
            return general, _fast(null_ok, "type({v}) is str", {})
        return general, None
    if base in ("int", "long") and logical in (None, "timestamp-millis"):
        # An int in range is returned as it is (to_epoch_ms of an int is the int itself).
        low, high = (INT_MIN, INT_MAX) if base == "int" else (-SAFE_MAX, SAFE_MAX)
        if logical == "timestamp-millis":
            low = max(low, 0)
        if bounds:
            low, high = max(low, lo), min(high, hi)
        return general, _fast(null_ok, "type({v}) is int and low{n} <= {v} <= high{n}", {"low": low, "high": high})
    if base in ("double", "float") and logical is None and not is_timestamp:
        flo, fhi = (lo, hi) if bounds else (-math.inf, math.inf)

        def int_for_double(value: Any, now: int | None, index: int | None) -> Any:
            # An int in range becomes its float here, without the general path's steps.
            if type(value) is int and -SAFE_MAX <= value <= SAFE_MAX:
                as_float = float(value)
                if flo <= as_float <= fhi:
                    return as_float
            return general(value, now, index)

        # value - value is 0.0 only for a finite float (inf - inf and nan - nan are nan).
        return int_for_double, _fast(null_ok, "type({v}) is float and {v} - {v} == 0.0 and low{n} <= {v} <= high{n}", {"low": flo, "high": fhi})
    return general, None


def _reference_record(type_: EventType, given: Any, index: int | None = None, now: int | None = None) -> dict[str, Any]:
    """The general path of to_event_record: walks the schema for each field (record_validator
    takes it for input its per-type checks do not cover, and the tests compare the two)."""

    def invalid(field: str, reason: str) -> NoReturn:
        raise EventValidationError(type_.name, field, reason, index)

    if not isinstance(given, dict):
        invalid("(event)", f"expected an object, got {describe(given)}")
    known = set(type_.field_names)
    for key in given:
        if key not in known:
            invalid(str(key), f"unknown field (known fields: {', '.join(type_.field_names)})")
    record: dict[str, Any] = {}
    for f in type_.fields:
        name = f["name"]
        record[name] = _field_value(type_, f, given.get(name), name in given, now, lambda r, name=name: invalid(name, r))
    return record


def _field_value(type_: EventType, f: Any, value: Any, present: bool, now: int | None, invalid: Callable[[str], NoReturn]) -> Any:
    """One field's value as the Avro writer takes it: auto fields filled (timestamp = now, id =
    a random UUID), the default or null when absent, a timestamp to epoch ms, a JSON field to
    JSON text, then checked against its schema and bounds; ``invalid(reason)`` raises."""
    name, schema = f["name"], f["type"]
    auto = type_.auto_fields.get(name)
    if not present or (value is None and auto):
        if auto == "now":
            value = now if now is not None else now_ms()
        elif auto == "uuid":
            value = str(uuid.uuid4())
        elif "default" in f:
            value = f["default"]
        elif _nullable(schema):
            value = None
        else:
            invalid("is required")
    if name == type_.timestamp_field:
        ms = to_epoch_ms(value)
        if isinstance(ms, str):
            invalid(ms)
        value = ms
    if name in type_.json_fields and not (value is None and _nullable(schema)):
        value = _json_field(value, invalid)
    value, reason = check_value(schema, value)
    if reason is None:
        reason = _bounds_violation(type_, name, value)
    if reason is not None:
        invalid(reason)
    return value


def _json_field(value: Any, fail: Callable[[str], NoReturn]) -> str:
    if isinstance(value, str):
        try:
            import json

            json.loads(value)
        except ValueError:
            fail(f"expected JSON text or an object, got a string that is not JSON: {describe(value)}")
        return value
    try:
        return to_json_text(value)
    except (TypeError, ValueError) as err:
        fail(f"cannot be serialised to JSON: {err}")


def check_value(schema: Any, value: Any) -> tuple[Any, str | None]:
    """(the value as the Avro writer takes it, why it does not fit ``schema`` or None)."""
    if isinstance(schema, list):
        if value is None and "null" in schema:
            return None, None
        branch = next((s for s in schema if s != "null"), None)
        if branch is None:
            return value, "expected null"
        return check_value(branch, value)
    if isinstance(schema, dict) and "logicalType" in schema:
        value, reason = check_value(schema["type"], value)
        if reason is not None:
            return value, reason
        if schema["logicalType"] == "uuid" and not UUID_RE.match(value):
            return value, f"expected a UUID, got {describe(value)}"
        if schema["logicalType"] == "timestamp-millis" and value < 0:
            return value, f"expected a time at or after 1970-01-01, got {describe(value)}"
        return value, None
    if schema == "string":
        return value, None if isinstance(value, str) else f"expected a string, got {describe(value)}"
    if schema == "boolean":
        return value, None if isinstance(value, bool) else f"expected a boolean, got {describe(value)}"
    if schema in ("double", "float"):
        if not _is_number(value) or not math.isfinite(value):
            return value, f"expected a finite number, got {describe(value)}"
        return float(value), None
    if schema in ("int", "long"):
        # An integral float (5.0) is an integer, as in JavaScript, where the two are one type.
        as_int = int(value) if _is_number(value) and math.isfinite(value) and float(value).is_integer() else None
        if schema == "int" and (as_int is None or not INT_MIN <= as_int <= INT_MAX):
            return value, f"expected a 32-bit integer, got {describe(value)}"
        if schema == "long" and (as_int is None or abs(as_int) > SAFE_MAX):
            return value, f"expected an integer, got {describe(value)}"
        return as_int, None
    if schema == "null":
        return value, None if value is None else f"expected null, got {describe(value)}"
    return value, f"unsupported schema type {schema!r}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds_violation(type_: EventType, field: str, value: Any) -> str | None:
    bounds = type_.bounds.get(field)
    if bounds and _is_number(value) and not bounds[0] <= value <= bounds[1]:
        return f"expected a value from {_num(bounds[0])} to {_num(bounds[1])}, got {_num(value)}"
    return None


def _nullable(schema: Any) -> bool:
    return isinstance(schema, list) and "null" in schema


def to_epoch_ms(value: Any) -> int | str:
    """Epoch ms of an SDK timestamp (datetime, date, epoch ms or ISO 8601 string), or why it is not one.
    A naive datetime is local time, as ``datetime.timestamp()`` and JavaScript's Date take it."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, date):
        return round(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp() * 1000)
    if isinstance(value, str):
        text = value.strip()
        try:
            # Python 3.10's fromisoformat takes no "Z".
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            return f"expected a timestamp, got unparseable string {describe(value)}"
        if len(text) == 10:  # a date alone is UTC midnight, as in JavaScript
            parsed = parsed.replace(tzinfo=timezone.utc)
        return round(parsed.timestamp() * 1000)
    if not _is_number(value) or not math.isfinite(value):
        return f"expected a timestamp (datetime, epoch ms or ISO string), got {describe(value)}"
    return round(value)


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity") if math.isinf(value) else _num(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        import json

        return json.dumps(value[:60] + "…" if len(value) > 60 else value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
