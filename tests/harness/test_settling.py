"""The drain ends once every reminder is decided and the mocks are quiet, never before a reminder
still owed has had its window, and a scenario's explicit drain is kept exactly."""

from __future__ import annotations

from pathlib import Path

from harness.journal import (
    ComponentReady,
    Event,
    JournalWriter,
    LoadStarted,
    ReminderChanged,
    RunStarted,
)
from harness.scenario import Scenario
from harness.settling import QUIET, decided, drain, quiet_for
from tests.harness.journals import SCENARIO, T0, owed, scenario, sent


def growing(folder: Path, *events: Event, run: Scenario = SCENARIO) -> Path:
    """The journal of a run still going: no run.ended yet."""
    writer = JournalWriter(folder / "journal", "harness")
    for event in (RunStarted(t=T0, scenario=run), ComponentReady(t=T0, component="toxiproxy"),
                  LoadStarted(t=T0, pid=1), *events):
        writer.write(event)
    writer.close()
    return folder / "journal"


class Clock:
    """A clock that moves only when slept on."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_run_whose_reminders_all_arrived_is_decided_once_the_mocks_are_quiet(
        tmp_path: Path) -> None:
    folder = growing(tmp_path, owed("AAAAAAAA", 1), owed("BBBBBBBB", 2),
                     sent("AAAAAAAA", 1.5), sent("BBBBBBBB", 2.5))
    assert not decided(folder, SCENARIO, T0 + 2.5 + QUIET - 0.5)
    assert decided(folder, SCENARIO, T0 + 2.5 + QUIET + 0.1)


def test_a_reminder_still_owed_keeps_the_drain_to_its_end(tmp_path: Path) -> None:
    folder = growing(tmp_path, owed("AAAAAAAA", 1), owed("BBBBBBBB", 2), sent("AAAAAAAA", 1.5))
    assert not decided(folder, SCENARIO, T0 + 60)
    clock = Clock(T0 + 10)
    watched = drain(SCENARIO, folder, clock=clock, sleep=clock.sleep)
    assert watched == SCENARIO.drain_seconds


def test_a_reminder_not_yet_due_is_waited_for_even_when_quiet(tmp_path: Path) -> None:
    folder = growing(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5),
                     owed("BBBBBBBB", 30, scheduled=2))
    assert not decided(folder, SCENARIO, T0 + 20)


def test_a_cancelled_reminder_needs_no_delivery(tmp_path: Path) -> None:
    folder = growing(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5),
                     owed("BBBBBBBB", 3, scheduled=0.5),
                     ReminderChanged(t=T0 + 1, reminder_id="rem-BBBBBBBB", change="repaid",
                                     amount="0.00"))
    assert decided(folder, SCENARIO, T0 + 10)


def test_the_drain_ends_at_the_first_check_after_everything_is_decided(tmp_path: Path) -> None:
    folder = growing(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5))
    clock = Clock(T0 + 2)
    watched = drain(SCENARIO, folder, clock=clock, sleep=clock.sleep)
    assert 1.5 + QUIET - 2 <= watched <= 1.5 + QUIET - 2 + 1.0
    assert watched < SCENARIO.drain_seconds


def test_an_explicit_drain_is_kept_exactly(tmp_path: Path) -> None:
    folder = growing(tmp_path, owed("AAAAAAAA", 1), sent("AAAAAAAA", 1.5))
    fixed = scenario("drain=12s")
    clock = Clock(T0 + 20)
    assert drain(fixed, folder, clock=clock, sleep=clock.sleep) == 12.0
    assert clock.slept == [12.0]


def test_the_quiet_lasts_longer_than_a_step_holds_a_call_up() -> None:
    held = scenario("timeline=[{at: 1s, for: 5s, fault: vendor.latency, link: vendors.sms, "
                    "params: {latency: 4s}}]")
    assert quiet_for(held) == QUIET + 4.0
    assert quiet_for(scenario("handsets.stop_after=12s")) == 13.0
