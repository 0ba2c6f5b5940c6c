"""Gate expressions (`continuity >= 0.99`, `p95_latency <= 15s`) and their verdicts."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.durations import parse_duration

METRICS: dict[str, str] = {
    "continuity": "on-time reminders / owed reminders (0..1)",
    "owed": "reminders owed during the run",
    "on_time": "reminders delivered within their window",
    "late": "reminders delivered after their window",
    "missed": "reminders never delivered",
    "filtered": "reminders that reached only the spam folder",
    "wrong_content": "reminders delivered only with wrong amount or due date",
    "wrong_recipient": "reminders delivered only to a wrong number",
    "duplicates": "extra copies of reminders already delivered",
    "unmatched": "messages that correlate with no reminder",
    "opted_out": "borrowers who replied STOP during the run",
    "sent_to_opted_out": "messages sent to a borrower after they replied STOP",
    "p50_latency": "median seconds from due-to-send to inbox",
    "p95_latency": "95th percentile seconds from due-to-send to inbox",
    "p99_latency": "99th percentile seconds from due-to-send to inbox",
    "longest_blackout": "longest seconds with reminders owed and none delivered",
    "alerts": "alerts the notifier sent to the alert sink",
    "sla_breaches": "vendors that missed the SLA the scenario gives them",
}

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
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    try:
        threshold = float(raw)
    except ValueError:
        threshold = parse_duration(raw)
    return Gate(expr=expr.strip(), metric=metric, op=op, threshold=threshold)
