"""A scenario's load shape and compressed month: how they are written and refused, the clock the
target and Locust are told, and the owed reminders per calendar day on the scorecard and the
report's chart."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from harness.chart import run_chart
from harness.clock import (
    CURVE_ENV,
    ENV,
    EPOCH_ENV,
    Clock,
    clocked,
    describe_pacing,
    pacing_env,
    run_calendar,
    with_clock,
)
from harness.comparison import NotComparable, compare
from harness.continuity import score
from harness.errors import ScenarioError
from harness.html import html_report
from harness.load_shapes import Curve
from harness.scenario import Month, load_scenario
from harness.scorecard import Scorecard
from tests.conftest import ROOT
from tests.harness.journals import journal, owed, run_folder, scenario, sent

MONTH = "reminders.month={start: '2026-12-01', days: 30}"
"""A month of 30 days over the hand-made scenario's 60 s: a calendar day every 2 s."""


def test_the_month_end_scenario_peaks_over_its_last_days() -> None:
    month_end = load_scenario(ROOT / "scenarios" / "month-end-peak.yaml")
    curve = month_end.curve()

    assert month_end.paced
    assert curve.peak == 18.0 and curve.rate(0.0) == month_end.reminders.rate
    last_days = month_end.duration * 25 / 31
    assert curve.count(month_end.duration) - curve.count(last_days) > curve.ticks / 2
    # Its whole run joins the scenario library, which keeps each one under 75 s.
    assert month_end.duration + month_end.drain_seconds <= 75


def test_a_steady_scenario_is_not_paced_and_gives_locust_nothing_more() -> None:
    steady = scenario()

    assert not steady.paced
    assert pacing_env(steady, None) == {}
    assert describe_pacing(steady) == ""


def test_the_run_says_how_a_paced_load_goes() -> None:
    month_end = load_scenario(ROOT / "scenarios" / "month-end-peak.yaml")
    spiky = scenario("reminders.shape={kind: spike, at: 10s, for: 5s, factor: 3}")

    assert describe_pacing(month_end) == ("295 reminders, month_end, Dec 1 to Dec 31 2026 "
                                          "(a day every 1.61s)")
    assert describe_pacing(spiky) == "70 reminders, spike"


def test_a_shape_gives_locust_its_curve_and_a_month_its_epoch() -> None:
    spiky = scenario("reminders.shape={kind: spike, at: 10s, for: 5s, factor: 3}")
    monthly = scenario(MONTH)

    assert pacing_env(spiky, None) == {CURVE_ENV: spiky.curve().to_json()}
    env = pacing_env(monthly, 1_700_000_000.25)
    assert env[EPOCH_ENV] == "1700000000.250000"
    assert Curve.from_json(env[CURVE_ENV]).ticks == 60  # steady 1/s, paced from the epoch


def test_a_daily_batch_falls_on_each_day_of_the_month() -> None:
    batched = scenario(MONTH, "reminders.shape={kind: morning_batch, daily: '09:00', count: 20, "
                              "within: 500ms}")
    curve = batched.curve()

    assert curve.ticks == 60 + 30 * 20
    assert curve.rate(0.75) == 41.0 and curve.rate(1.25) == 1.0  # 09:00 of Dec 1 is at 0.75 s


@pytest.mark.parametrize(("overrides", "message"), [
    (["reminders.shape={kind: month_end, peak: 5/s}"],
     "reminders.shape.kind: month_end counts calendar days: give reminders.month"),
    ([MONTH, "reminders.shape={kind: month_end, peak: 1/s}"],
     "reminders.shape.peak: 1/s is no peak over reminders.rate (1/s)"),
    ([MONTH, "reminders.shape={kind: month_end, peak: 5/s, last_days: 30}"],
     "reminders.shape.last_days: 30 days is not the end of a 30-day month"),
    (["reminders.shape={kind: spike, at: 50s, for: 20s, factor: 2}"],
     "reminders.shape.for: the spike ends at 70s, after the run's 60s"),
    (["reminders.shape={kind: spike, at: 5s, for: 2s, factor: 1}"],
     "reminders.shape.factor: Input should be greater than 1"),
    (["reminders.shape={kind: morning_batch, count: 10}"],
     "reminders.shape: give at (once, from the start of load) or daily (a time of day)"),
    (["reminders.shape={kind: morning_batch, count: 10, daily: '09:00'}"],
     "reminders.shape.daily: a time of day needs the calendar: give reminders.month"),
    ([MONTH, "reminders.shape={kind: morning_batch, count: 10, daily: 10:30}"],
     'reminders.shape.daily: expected a quoted time of day such as "09:00", got 630'),
    ([MONTH, "reminders.shape={kind: morning_batch, count: 10, daily: '09:00', within: 3s}"],
     "reminders.shape.within: 3s is longer than a compressed day (2s)"),
    (["reminders.shape={kind: morning_batch, count: 10, at: 58s}"],
     "reminders.shape.at: the batch ends at 63s, after the run's 60s"),
    (["reminders.shape={kind: surge}"],
     "reminders.shape.kind: unknown kind 'surge'; known: steady, morning_batch, month_end, "
     "spike"),
    (["reminders.shape={at: 5s}"], "reminders.shape.kind: required key is missing"),
    (["reminders.shape={kind: spike, at: 5s, for: 2s, factr: 2}"],
     "reminders.shape.factr: unknown key"),
    ([MONTH, "load.workers=2", "load.remote_workers=1"],
     "load.remote_workers: a month is paced by local workers only; leave load.remote_workers "
     "at 0"),
    ([MONTH, "load.workers=3", "load.users=2"],
     "load.users: a month gives each worker a part of its ticks, and each needs a user: give "
     "at least load.workers (3)"),
    (["reminders.month={start: '2026-02-30'}"], "reminders.month.start: Input should be a "
     "valid date"),
    (["target.env.NOW='{clock.epoch}'"], "target.env.NOW: unknown placeholder {clock.epoch}"),
])
def test_a_bad_shape_or_month_is_one_line_naming_the_key(overrides: list[str],
                                                           message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario(*overrides)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_target_is_told_the_clock_in_its_environment_and_placeholders() -> None:
    month = Month(start=date(2026, 12, 1), days=30)
    clock = Clock.of(month, 60.0, 1_700_000_000.0)

    assert clock.speed == 43_200.0
    values = clock.values(now=lambda: 1_700_000_003.0)
    assert {name: values[name] for name in ("clock.epoch", "clock.speed", "clock.start")} == {
        "clock.epoch": "1700000000.000", "clock.speed": "43200",
        "clock.start": "2026-12-01T00:00:00Z"}
    # libfaketime's, for a process starting 3 s after the epoch: 1.5 days into the month.
    noon = datetime(2026, 12, 2, 12, tzinfo=UTC).timestamp()
    assert values["clock.faketime"] == f"@{noon:.0f} x43200"
    assert clock.calendar(3.0) == datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert with_clock({"PORT": "1"}, month) == {**ENV, "PORT": "1"}
    assert with_clock({EPOCH_ENV: "mine"}, month)[EPOCH_ENV] == "mine"
    assert {"clock.epoch", "clock.speed", "clock.start"} <= scenario(MONTH).placeholders()


def test_a_month_s_target_and_its_version_b_get_the_clock_s_variables() -> None:
    rehearsal = ROOT / "scenarios" / "core-upgrade-rehearsal.yaml"
    plain = load_scenario(rehearsal)
    monthly = clocked(load_scenario(rehearsal, overrides=[MONTH]))

    assert clocked(plain) is plain
    assert monthly.target.env == {**ENV, **plain.target.env}
    assert monthly.upgrade is not None and plain.upgrade is not None
    assert monthly.upgrade.target.env == {**ENV, **plain.upgrade.target.env}


def test_the_scorecard_counts_owed_reminders_per_calendar_day() -> None:
    monthly = scenario(MONTH)
    card = score(journal(owed("AAAAAAAA", 0.5), owed("BBBBBBBB", 2.5), owed("CCCCCCCC", 3.0),
                         owed("DDDDDDDD", 59.5), end=80.0, run=monthly))

    assert card.calendar == run_calendar(monthly)
    assert card.calendar is not None and card.calendar.speed == 43_200.0
    days = {bucket.label: bucket.owed for bucket in card.owed_over_time}
    # Every day of the run (80 s: 40 days), the drain's too.
    assert list(days)[:3] == ["Dec 1", "Dec 2", "Dec 3"] and list(days)[-1] == "Jan 9"
    assert (days["Dec 1"], days["Dec 2"], days["Dec 30"], days["Dec 31"]) == (1, 2, 1, 0)
    assert sum(days.values()) == card.owed == 4


def test_without_a_month_owed_reminders_are_counted_per_few_seconds() -> None:
    card = score(journal(owed("AAAAAAAA", 0.5), owed("BBBBBBBB", 1.0), owed("CCCCCCCC", 89.0),
                         end=100.0))

    assert card.calendar is None
    buckets = card.owed_over_time
    assert len(buckets) == 50 and buckets[0].end - buckets[0].start == 2.0
    assert (buckets[0].owed, buckets[44].owed, sum(b.owed for b in buckets)) == (2, 1, 3)


def test_the_chart_labels_its_time_axis_with_the_month_and_draws_the_owed_bars() -> None:
    card = score(journal(*(owed(f"R{i:07d}", i * 0.5) for i in range(1, 100)), end=64.0,
                         run=scenario(MONTH)))
    chart = run_chart(card.series, card.faults, card.owed_over_time, card.calendar)

    assert chart is not None and chart.owed is not None
    assert chart.x_label == "calendar days of the compressed month (a day is 2 s)"
    assert [tick.label for tick in chart.x_ticks][:3] == ["Dec 1", "Dec 6", "Dec 11"]
    assert len(chart.owed.bars) == len(card.owed_over_time)
    assert chart.owed.title == "owed per calendar day (most: 4)"
    assert chart.owed.top > chart.bottom and chart.height > chart.owed.bottom
    report = html_report(card)
    assert "calendar days of the compressed month" in report and ">Dec 11<" in report
    assert "Dec 2: 4 owed" in report


def test_a_scorecard_from_before_the_month_still_loads(tmp_path: Path) -> None:
    card = score(journal(owed("AAAAAAAA", 1.0)))
    older = json.loads(card.model_dump_json())
    del older["owed_over_time"], older["calendar"]

    loaded = Scorecard.model_validate(older)

    assert loaded.owed_over_time == [] and loaded.calendar is None
    assert "seconds from the start of load" in html_report(loaded)


@pytest.mark.parametrize(("override", "says"), [
    ("reminders.shape={kind: spike, at: 10s, for: 5s, factor: 3}",
     "reminders.shape {'kind': 'steady'} in the baseline, {'kind': 'spike'"),
    (MONTH, "reminders.month None in the baseline, {'start': "),
])
def test_runs_with_other_shapes_or_months_cannot_be_compared(tmp_path: Path, override: str,
                                                             says: str) -> None:
    events = [owed("AAAAAAAA", 1.0), sent("AAAAAAAA", 1.0, arrive=1.0)]
    baseline = run_folder(tmp_path / "baseline", journal(*events))
    rehearsal = run_folder(tmp_path / "rehearsal", journal(*events, run=scenario(override)))

    with pytest.raises(NotComparable) as caught:
        compare(baseline, rehearsal)

    assert says in str(caught.value)
