"""`reminders.month.stages`, the bank's own reminder calendar: how it is written and refused, the
ledger's staging it becomes, and how long a run watches for its last stages."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from harness.clock import describe_pacing, staging
from harness.errors import ScenarioError
from harness.load_shapes import DAY
from harness.scenario import load_scenario
from mocks.bank import Bank, Changes, Population, Staging
from mocks.ledger import as_wire
from tests.conftest import ROOT
from tests.harness.journals import scenario

MONTH = "reminders.month={start: '2026-12-01', days: 30, stages: {before_days: [3, 1, 0], " \
        "at: '09:00'}}"
"""30 days over the hand-made scenario's 60 s (a calendar day every 2 s), T-3, T-1 and on the
day at 09:00."""


def test_the_library_s_calendar_scenario_stages_three_reminders_in_a_short_run() -> None:
    calendar = load_scenario(ROOT / "scenarios" / "repayment-calendar.yaml")
    month = calendar.reminders.month

    assert month is not None and month.stages is not None
    assert (month.stages.before_days, month.stages.at) == ([3, 1, 0], "09:00")
    assert calendar.duration <= 60
    # It joins the scenario library, which keeps each run under 75 s.
    assert calendar.duration + calendar.drain_seconds <= 75


def test_stages_become_the_ledger_s_staging_and_none_without_them() -> None:
    staged = scenario(MONTH)

    assert staging(staged) == Staging(start=date(2026, 12, 1), speed=30 * DAY / 60,
                                      before_days=(3, 1, 0), at="09:00")
    assert staging(scenario("reminders.month={start: '2026-12-01', days: 30}")) is None
    assert staging(scenario()) is None


def test_the_run_watches_until_the_last_installment_s_last_stage_has_had_its_window() -> None:
    staged = scenario(MONTH, "reminders.lead=1s", "reminders.window=3s")

    # An installment's T-3 comes up to a day after its lead; its on-the-day stage 3 days later.
    assert staged.drain_seconds == pytest.approx(1 + 4 * 2.0 + 3)
    assert scenario(MONTH, "drain=7s").drain_seconds == 7


@pytest.mark.parametrize(("override", "message"), [
    ("reminders.month.stages={before_days: [3, 1, 0], at: 9:00}",
     'reminders.month.stages.at: expected a quoted time of day such as "09:00", got 540'),
    ("reminders.month.stages={before_days: [1, 3], at: '09:00'}",
     "reminders.month.stages.before_days: expected distinct days from 31 down to 0, the "
     "earliest stage first (e.g. [3, 1, 0]), got [1, 3]"),
    ("reminders.month.stages={before_days: [3, 3], at: '09:00'}",
     "reminders.month.stages.before_days: expected distinct days"),
    ("reminders.month.stages={before_days: [1, -1], at: '09:00'}",
     "reminders.month.stages.before_days: expected distinct days"),
    ("reminders.month.stages={before_days: [], at: '09:00'}",
     "reminders.month.stages.before_days: List should have at least 1 item"),
    ("reminders.month.stages={before_days: [3]}",
     "reminders.month.stages.at: required key is missing"),
    ("reminders.month.stages={before_days: [3], at: '09:00', tz: UTC}",
     "reminders.month.stages.tz: unknown key"),
])
def test_bad_stages_are_one_line_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario(MONTH, override)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_contract_s_staged_entry_is_the_ledger_s() -> None:
    contract = (ROOT / "docs" / "target-contract.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```json\n(.*?)```", contract, re.S) if '"stage"' in b]
    example = json.loads(block)
    bank = Bank(Population(), Changes(), lead=1.0, window=4.0, seed=1,
                staging=Staging(start=date(2030, 3, 1), speed=66960.0, before_days=(3, 1, 0),
                                at="09:00"))
    bank.clock(1_900_000_000.0)
    served = as_wire(bank.schedule(1_900_000_000.0).records[0], None)

    assert {key: served[key] for key in ("remind_at", "send_by")} == {
        "remind_at": None, "send_by": None}
    assert served["stage"] == example["stage"] == {"days_before": 3, "at": "09:00"}
    assert re.fullmatch(r"ML-\d{6}-\d{3}-T3", str(served["reminder_id"]))
    assert re.fullmatch(r"ML-\d{6}-\d{3}-T3", example["reminder_id"])
    assert set(example) <= set(served)


def test_the_run_says_how_many_installments_and_stages_its_load_makes() -> None:
    calendar = load_scenario(ROOT / "scenarios" / "repayment-calendar.yaml")

    assert describe_pacing(calendar) == (
        "120 installments of 3 reminders (T-3, T-1, on the day at 09:00), steady, Mar 1 to "
        "Mar 31 2030 (a day every 1.29s)")
