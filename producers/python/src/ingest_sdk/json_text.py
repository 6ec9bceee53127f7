"""JSON text of a dict field (config, metrics, messages, …), exactly as the TS SDK's
``JSON.stringify`` writes it, so an event from either SDK stores the same string: no spaces,
non-ASCII kept, integral floats without ".0", JavaScript's number format, NaN and ±Infinity as
null, a datetime as ``Date.prototype.toJSON`` does (ISO 8601, UTC, milliseconds)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from typing import Any


def to_json_text(value: Any) -> str:
    out: list[str] = []
    _write(value, out, set())
    return "".join(out)


def js_number(x: float) -> str:
    """ECMAScript Number::toString of a finite float (shortest round-trip digits)."""
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 2**53:  # exact; above, JavaScript prints the shortest digits and zeros
        return str(int(x))
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    digits_int, _, digits_frac = mantissa.partition(".")
    digits = (digits_int + digits_frac).lstrip("0")
    # n: position of the decimal point relative to the digits, as in the ECMAScript algorithm.
    n = len(digits_int.lstrip("0")) + int(exp or 0) if digits_int.strip("0") else int(exp or 0) - (len(digits_frac) - len(digits_frac.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp_text = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + (digits if k == 1 else digits[0] + "." + digits[1:]) + exp_text


def _write(v: Any, out: list[str], seen: set[int]) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(json.dumps(v, ensure_ascii=False))
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(js_number(v) if math.isfinite(v) else "null")
    elif isinstance(v, datetime):
        t = v.astimezone(timezone.utc) if v.tzinfo else datetime.fromtimestamp(v.timestamp(), timezone.utc)
        out.append(f'"{t.strftime("%Y-%m-%dT%H:%M:%S")}.{t.microsecond // 1000:03d}Z"')
    elif isinstance(v, date):
        out.append(f'"{v.isoformat()}T00:00:00.000Z"')
    elif isinstance(v, dict):
        if id(v) in seen:
            raise ValueError("circular structure")
        seen.add(id(v))
        out.append("{")
        first = True
        for key, item in v.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(key if isinstance(key, str) else to_json_text(key), ensure_ascii=False))
            out.append(":")
            _write(item, out, seen)
        out.append("}")
        seen.discard(id(v))
    elif isinstance(v, (list, tuple)):
        if id(v) in seen:
            raise ValueError("circular structure")
        seen.add(id(v))
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _write(item, out, seen)
        out.append("]")
        seen.discard(id(v))
    else:
        raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")
