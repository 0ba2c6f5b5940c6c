"""A compressed month on real processes: the target is told the clock (its epoch is the start of
load), Locust schedules exactly the month's reminders from that epoch and none ahead of its
time, and the report counts them by calendar day.

The month-end-peak scenario, cut to 12 s of load (31 days: a day is 0.39 s) with no fault; the
reference notifier is started by a shell that first writes its environment to the run folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.journal import LoadStarted, ReminderScheduled, SendRecorded
from harness.scenario import load_scenario
from tests.e2e.conftest import ROOT, finish, start

pytestmark = pytest.mark.e2e

SCENARIO = ROOT / "scenarios" / "month-end-peak.yaml"
OVERRIDES = (
    "duration=12s", "drain=5s", "timeline=[]",
    'target.command=[sh, -c, "env > \\"$0\\" && exec python -m examples.reminder_service", '
    '"{run.dir}/target.env"]',
)


def test_the_target_gets_the_month_s_clock_and_the_load_keeps_it(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO, overrides=OVERRIDES)
    curve = scenario.curve()
    out = tmp_path / "reports"

    done = finish(start("run", SCENARIO, "--out", out,
                        *(arg for override in OVERRIDES for arg in ("--set", override))),
                  out, timeout=240)

    assert done.code == 0, f"{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    assert done.run_dir is not None
    told = dict(line.split("=", 1) for line in
                (done.run_dir / "target.env").read_text().splitlines()
                if line.startswith("NOTIFYCHAOS_CLOCK_"))
    assert told["NOTIFYCHAOS_CLOCK_SPEED"] == "223200"  # 31 days in 12 s
    assert told["NOTIFYCHAOS_CLOCK_START"] == "2026-12-01T00:00:00Z"
    epoch = float(told["NOTIFYCHAOS_CLOCK_EPOCH"])
    journal = done.journal()
    [load_started] = journal.of(LoadStarted)
    # The load waits for the epoch; Locust times each tick from it, late but never ahead.
    assert load_started.t >= epoch
    ticks = sorted(event.t for event in journal.of(ReminderScheduled))
    assert len(ticks) == curve.ticks
    due = [epoch + at for k in range(curve.ticks) if (at := curve.tick_at(k)) is not None]
    assert all(arrived >= planned for arrived, planned in zip(ticks, due, strict=True))
    card = done.scorecard()
    assert card["owed"] == curve.ticks
    days = {bucket["label"]: bucket["owed"] for bucket in card["owed_over_time"]}
    assert list(days)[:2] == ["Dec 1", "Dec 2"]
    # The last six days carry the peak; each reminder falls due its lead (1 s: 2.6 days here)
    # after it is scheduled, so most are owed from Dec 26 into the first days of January.
    peak = [f"Dec {day}" for day in range(26, 32)] + ["Jan 1", "Jan 2", "Jan 3"]
    assert sum(days.get(day, 0) for day in peak) > curve.ticks / 2
    report = (done.run_dir / "report.html").read_text(encoding="utf-8")
    assert "calendar days of the compressed month" in report
    assert json.loads((done.run_dir / "scorecard.json").read_text())["calendar"]["speed"] == 223200


CALENDAR = ROOT / "scenarios" / "repayment-calendar.yaml"
CALENDAR_OVERRIDES = ("duration=31s", "timeline=[]")
"""31 days in 31 s (a day is a second), T-3, T-1 and on the day at 09:00, no fault."""


def test_the_notifier_works_out_each_stage_s_time_on_the_compressed_clock(
        tmp_path: Path) -> None:
    out = tmp_path / "reports"

    done = finish(start("run", CALENDAR, "--out", out,
                        *(arg for override in CALENDAR_OVERRIDES for arg in ("--set", override))),
                  out, timeout=240)

    assert done.code == 0, f"{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    journal = done.journal()
    truths = {event.ref: event for event in journal.of(ReminderScheduled)}
    card = done.scorecard()
    assert card["calendar"]["speed"] == 86_400
    assert card["outcomes"]["on_time"] == card["owed"] == len(truths) >= 90
    # The feed gave no time: each send went out when the notifier's own reckoning said, at
    # its stage's 09:00, none early, and (but for a loaded machine's few) within half a day.
    sent: dict[str, set[str]] = {}
    behind = []
    for send in journal.of(SendRecorded):
        ref = re.search(r"ref:([A-Z0-9]{8})", send.body)
        assert ref is not None, send.body
        truth = truths[ref[1]]
        loan, stage = truth.reminder_id.rsplit("-", 1)
        sent.setdefault(loan, set()).add(stage)
        behind.append(send.t - truth.remind_at)
    assert {frozenset(stages) for stages in sent.values()} == {frozenset({"T0", "T1", "T3"})}
    assert min(behind) >= -0.05
    assert sorted(behind)[int(len(behind) * 0.95)] < 0.5, sorted(behind)[-10:]
