"""Human durations (`500ms`, `30s`, `2m`, `1h30m`) and rates (`20/s`, `120/m`) as typed values."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")

DURATION_PATTERN = r"^ *(\d+(\.\d+)? *(ms|s|m|h) *)+$"
"""What `parse_duration` reads, for the scenario files' JSON Schema (spaces are ignored)."""
RATE_PATTERN = _RATE.pattern
"""What `parse_rate` reads, for the scenario files' JSON Schema."""


def parse_duration(text: object) -> float:
    """Return seconds for `30s`, `2m`, `1m30s`, `250ms` or a bare number of seconds."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 30s, 2m or 500ms")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return _finite(float(text), "duration")
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as 30s, 2m or 500ms, got {text!r}")
    compact = text.replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"expected a duration such as 30s, 2m or 500ms, got {text[:40]!r}")
    return _finite(sum(float(n) * _UNIT_SECONDS[u] for n, u in parts), "duration")


def _finite(value: float, what: str) -> float:
    # `.inf` is a YAML number, and a run or a rate of infinity never ends.
    if not math.isfinite(value):
        raise ValueError(f"a {what} must be finite, got {value}")
    return value


def parse_rate(text: object) -> float:
    """Return events per second for `20/s`, `300/m`, `10/h` or a bare number per second."""
    if isinstance(text, bool):
        raise ValueError(f"expected a rate such as 20/s or 300/m, got {str(text)[:40]!r}")
    if isinstance(text, int | float):
        return _finite(float(text), "rate")
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a rate such as 20/s or 300/m, got {str(text)[:40]!r}")
    return _finite(float(match.group(1)) / _UNIT_SECONDS[match.group(2)], "rate")


# The schema says what a file may hold (a string with its unit, or seconds as a number), not the
# float the model keeps.
DURATION_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, {"type": "number", "minimum": 0}],
    "description": "a duration such as 30s, 2m, 1m30s or 500ms (a number is seconds)"}
"""A duration in the scenario files' JSON Schema."""

Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA)]
"""Seconds, written in a scenario as `30s`, `2m`, `500ms`."""

Rate = Annotated[float, BeforeValidator(parse_rate), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": RATE_PATTERN}, {"type": "number"}],
    "description": "a rate such as 20/s, 300/m or 10/h (a number is per second)"})]
"""Events per second, written in a scenario as `20/s` or `300/m`."""
