"""Gate expressions (`continuity >= 0.99`, `p95_latency <= 15s`) and their verdicts."""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.durations import parse_duration
from harness.scorecard import FIGURES

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_GATE = re.compile(r"^\s*([A-Za-z_0-9]+)\s*(>=|<=|==|!=|>|<|=>|=<|=)?\s*(.*?)\s*$")
_EXAMPLE = "a gate is 'metric op value', such as 'continuity >= 0.99' or 'p95_latency <= 15s'"


@dataclass(frozen=True)
class Gate:
    """One condition over a scorecard figure."""

    expr: str
    metric: str
    op: str
    threshold: float

    def holds(self, value: float | None) -> bool:
        """True when `value` satisfies the condition; a missing figure never does."""
        return value is not None and _OPERATORS[self.op](value, self.threshold)


def parse_gate(expr: str) -> Gate:
    """Parse `metric op value`; the value is a number, or a duration (`15s`, `500ms`)."""
    match = _GATE.match(expr)
    if match is None:
        raise ValueError(f"expected a metric first; {_EXAMPLE}")
    metric, op, raw = match.groups()
    if metric not in FIGURES:
        close = difflib.get_close_matches(metric, FIGURES, n=1)
        raise ValueError(f"unknown metric {metric!r}; " + (f"did you mean {close[0]}?" if close
                         else f"known: {', '.join(FIGURES)}"))
    if op is None:
        raise ValueError(f"no comparison after {metric} (one of {' '.join(_OPERATORS)}); "
                         f"{_EXAMPLE}")
    if op not in _OPERATORS:
        raise ValueError(f"unknown comparison {op!r} (one of {' '.join(_OPERATORS)})")
    if not raw:
        raise ValueError(f"no value after {metric} {op}: give the threshold, a number or a "
                         "duration such as 0.99 or 15s")
    try:
        threshold = float(raw)
    except ValueError:
        try:
            threshold = parse_duration(raw)
        except ValueError:
            raise ValueError(f"the threshold {raw!r} is neither a number nor a duration "
                             "(such as 0.99 or 15s)") from None
    if not math.isfinite(threshold):
        raise ValueError(f"the threshold {raw!r} is not a finite number")
    return Gate(expr=expr.strip(), metric=metric, op=op, threshold=threshold)
