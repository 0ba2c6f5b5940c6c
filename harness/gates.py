"""Gate expressions (`continuity >= 0.99`, `p95_latency <= 15s`) and their verdicts."""

from __future__ import annotations

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
_GATE = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


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
    """Parse `metric op number`; the number may carry a duration unit (`15s`, `500ms`)."""
    match = _GATE.match(expr)
    if match is None:
        raise ValueError(f"expected 'metric op value' such as 'continuity >= 0.99', got {expr!r}")
    metric, op, raw = match.groups()
    if metric not in FIGURES:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(FIGURES)}")
    try:
        threshold = float(raw)
    except ValueError:
        threshold = parse_duration(raw)
    return Gate(expr=expr.strip(), metric=metric, op=op, threshold=threshold)
