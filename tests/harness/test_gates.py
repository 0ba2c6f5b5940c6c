"""Gate expressions and human durations and rates."""

from __future__ import annotations

import pytest

from harness.durations import parse_duration, parse_rate
from harness.gates import parse_gate


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("2m", 120.0), ("1m30s", 90.0), ("250ms", 0.25), ("1h", 3600.0), (5, 5.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "3 days", "-1s", "s", True])
def test_bad_durations(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "per_second"), [("20/s", 20.0), ("120/m", 2.0), (3, 3.0)])
def test_rates(text: str | int, per_second: float) -> None:
    assert parse_rate(text) == per_second


def test_a_gate_with_a_duration_threshold() -> None:
    gate = parse_gate("p95_latency <= 1.5s")
    assert (gate.metric, gate.op, gate.threshold) == ("p95_latency", "<=", 1.5)
    assert gate.holds(1.5) and not gate.holds(1.6)


def test_a_missing_figure_never_holds() -> None:
    assert parse_gate("p95_latency <= 15s").holds(None) is False


@pytest.mark.parametrize("text", ["continuity", "continuity => 1", "joy >= 1"])
def test_bad_gates(text: str) -> None:
    with pytest.raises(ValueError):
        parse_gate(text)
