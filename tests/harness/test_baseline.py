"""Comparison with a baseline: a planted regression fails, within its margin or better passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.baseline import (
    DEFAULT_MARGINS,
    Margin,
    compare,
    load_baselines,
    parse_margin,
    with_defaults,
)
from harness.continuity import score
from harness.errors import JournalError
from harness.rehearsal import write_reports
from harness.scorecard import Latency, Scorecard
from tests.harness.journals import journal, owed, sent

BASE = score(journal(owed("AAAAAAAA", 0), sent("AAAAAAAA", 1)))


def card(continuity: float = 1.0, p95: float | None = 10.0, name: str = "hand-made",
         started_at: str | None = None) -> Scorecard:
    return BASE.model_copy(update={
        "continuity": continuity, "scenario": name,
        "latency": Latency(p50=None if p95 is None else p95 / 2, p95=p95,
                           p99=None if p95 is None else p95),
        "started_at": started_at or BASE.started_at})


def test_a_planted_continuity_drop_is_a_regression_with_its_figures() -> None:
    result = compare(card(continuity=0.99), card(continuity=0.95))
    assert not result.passed
    [regression] = result.regressions
    assert (regression.figure, regression.baseline, regression.now) == ("continuity", 0.99, 0.95)
    assert regression.describe() == ("continuity: baseline 0.99, now 0.95, margin 0.01 "
                                     "(higher is better)")


def test_a_drop_within_or_exactly_at_the_margin_passes() -> None:
    assert compare(card(continuity=1.0), card(continuity=0.995)).passed
    assert compare(card(continuity=1.0), card(continuity=0.99)).passed
    assert not compare(card(continuity=1.0), card(continuity=0.989)).passed


def test_improvements_pass() -> None:
    result = compare(card(continuity=0.9, p95=10.0), card(continuity=1.0, p95=1.0))
    assert result.passed and len(result.figures) == len(DEFAULT_MARGINS)


def test_latency_may_rise_by_a_fifth_by_default_or_by_a_given_amount() -> None:
    assert compare(card(p95=10.0), card(p95=12.0)).passed
    slower = compare(card(p95=10.0), card(p95=12.5))
    assert {r.figure for r in slower.regressions} == {"p50_latency", "p95_latency",
                                                      "p99_latency"}
    strict = with_defaults([parse_margin("p95_latency=1s")])
    [regression] = [r for r in compare(card(p95=10.0), card(p95=11.5), strict).regressions]
    assert regression.figure == "p95_latency" and str(regression.margin) == "1"


def test_a_figure_lost_since_the_baseline_regresses_one_the_baseline_lacks_is_not_compared(
        ) -> None:
    assert {r.figure for r in compare(card(p95=10.0), card(p95=None)).regressions} == {
        "p50_latency", "p95_latency", "p99_latency"}
    assert compare(card(p95=None), card(p95=100.0)).passed


def test_lower_is_better_for_other_figures() -> None:
    margins = [Margin("duplicates", 0)]
    assert not compare(BASE, BASE.model_copy(update={"duplicates": 1}), margins).passed
    assert compare(BASE.model_copy(update={"duplicates": 3}), BASE, margins).passed


def test_margins_parse_numbers_durations_and_percentages() -> None:
    assert parse_margin("continuity=0.02") == Margin("continuity", 0.02)
    assert parse_margin("p95_latency=500ms") == Margin("p95_latency", 0.5)
    assert parse_margin("p95_latency = 10%") == Margin("p95_latency", 0.1, relative=True)
    for bad in ("continuity", "continuity=", "speed=1", "continuity=lots"):
        with pytest.raises(ValueError):
            parse_margin(bad)
    margins = with_defaults([Margin("continuity", 0.05), Margin("duplicates", 0)])
    assert margins[0] == Margin("continuity", 0.05) and margins[-1] == Margin("duplicates", 0)
    assert len(margins) == len(DEFAULT_MARGINS) + 1


def test_baselines_load_from_a_scorecard_a_run_folder_a_folder_of_runs_or_a_suite(
        tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    old = write_reports(runs / "a-1", card(0.5, started_at="2026-01-01T00:00:00+00:00"))
    new = write_reports(runs / "a-2", card(0.9, started_at="2026-01-02T00:00:00+00:00"))
    other = write_reports(tmp_path / "runs" / "b-1", card(name="other"))
    assert load_baselines(old.scorecard_json)["hand-made"][1].continuity == 0.5
    assert load_baselines(old.run_dir)["hand-made"][1].continuity == 0.5
    found = load_baselines(tmp_path / "runs")
    assert set(found) == {"hand-made", "other"}
    assert found["hand-made"] == (new.scorecard_json, new.scorecard)  # the latest counts
    suite = tmp_path / "runs" / "suite-1"
    suite.mkdir()
    (suite / "suite.json").write_text(json.dumps({"scorecards": ["../a-1/scorecard.json",
                                                                 "../b-1/scorecard.json"]}))
    listed = load_baselines(suite)
    assert listed["hand-made"][1].continuity == 0.5 and listed["other"][1] == other.scorecard
    (tmp_path / "empty").mkdir()
    with pytest.raises(JournalError, match=r"no scorecard\.json"):
        load_baselines(tmp_path / "empty")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(JournalError, match="not a scorecard"):
        load_baselines(tmp_path / "bad.json")
