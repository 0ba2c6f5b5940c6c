"""Gate expressions and human durations and rates."""

from __future__ import annotations

import pytest

from harness.durations import parse_duration, parse_rate
from harness.gates import parse_gate


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("2m", 120.0), ("1m30s", 90.0), ("250ms", 0.25), ("1h", 3600.0), (5, 5.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "3 days", "-1s", "s", True, float("inf"),
                                  float("nan"), "9" * 400 + "h", None])
def test_bad_durations(text: str | bool | float | None) -> None:
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


@pytest.mark.parametrize(("text", "message"), [
    ("continuity", "no comparison after continuity (one of >= <= == != > <); a gate is "
                   "'metric op value', such as 'continuity >= 0.99' or 'p95_latency <= 15s'"),
    ("continuity >=", "no value after continuity >=: give the threshold, a number or a duration "
                      "such as 0.99 or 15s"),
    ("continuity => 1", "unknown comparison '=>' (one of >= <= == != > <)"),
    ("continuity >= soon", "the threshold 'soon' is neither a number nor a duration (such as "
                           "0.99 or 15s)"),
    ("continuity >= inf", "the threshold 'inf' is not a finite number"),
    ("continuty >= 1", "unknown metric 'continuty'; did you mean continuity?"),
    (">= 1", "expected a metric first; a gate is 'metric op value'"),
])
def test_bad_gates_say_what_a_gate_expects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_gate(text)
    assert str(caught.value).startswith(message)


def test_an_unknown_metric_far_from_any_lists_them() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'joy'; known: continuity, owed, "):
        parse_gate("joy >= 1")


def test_a_rate_is_finite() -> None:
    with pytest.raises(ValueError, match="a rate must be finite"):
        parse_rate(float("inf"))
