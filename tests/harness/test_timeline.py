"""The timeline player: steps at their times, undone at their end or when the run stops, each
step's measured effect journaled after it took effect."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.errors import FaultInjectionError
from harness.journal import (
    FaultApplied,
    FaultMeasured,
    FaultReverted,
    JournalWriter,
    read_journal,
)
from harness.scenario import Step
from harness.timeline import Effect, FamilyInjector, TimelinePlayer


class Recorder:
    """A fake injector that notes what it was asked to do, and when."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, int, float]] = []
        self.fail_on = fail_on
        self.t0 = time.monotonic()

    def apply(self, index: int, step: Step) -> None:
        if step.fault == self.fail_on:
            raise FaultInjectionError("refused")
        self.calls.append(("apply", index, time.monotonic() - self.t0))

    def revert(self, index: int, step: Step) -> None:
        self.calls.append(("revert", index, time.monotonic() - self.t0))


def step(at: float, duration: float | None, fault: str = "proxy.down",
         link: str = "vendors.sms") -> Step:
    return Step.model_validate({"at": at, "for": duration, "fault": fault, "link": link})


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[JournalWriter]:
    writer = JournalWriter(tmp_path, "harness")
    yield writer
    writer.close()


def play(steps: list[Step], injector: Recorder, journal: JournalWriter) -> TimelinePlayer:
    player = TimelinePlayer(steps, injector, journal)
    player.start(injector.t0)
    return player


def test_steps_apply_in_time_order_and_end_after_their_duration(journal: JournalWriter) -> None:
    injector = Recorder()
    player = play([step(0.2, 0.2), step(0.0, None, "proxy.latency")], injector, journal)
    wait_for(lambda: len(injector.calls) == 3)
    assert [(what, index) for what, index, _ in injector.calls] == [
        ("apply", 1), ("apply", 0), ("revert", 0)]
    assert injector.calls[1][2] >= 0.2 and injector.calls[2][2] >= 0.4
    player.stop()
    assert injector.calls[-1][:2] == ("revert", 1)  # the open-ended step ends with the run


def test_stopping_undoes_what_is_in_force_and_skips_what_is_to_come(
        journal: JournalWriter, tmp_path: Path) -> None:
    injector = Recorder()
    player = play([step(0.0, 60), step(30, 1)], injector, journal)
    wait_for(lambda: len(injector.calls) == 1)
    player.stop()
    assert [(what, index) for what, index, _ in injector.calls] == [("apply", 0), ("revert", 0)]
    journal = read_journal(tmp_path)
    assert [e.step for e in journal.of(FaultApplied)] == [0]
    assert [e.step for e in journal.of(FaultReverted)] == [0]


def test_a_run_stopped_before_its_load_began_stops_a_timeline_never_started(
        journal: JournalWriter, tmp_path: Path) -> None:
    injector = Recorder()
    TimelinePlayer([step(0.0, 1)], injector, journal).stop()  # Ctrl-C before the load began
    assert injector.calls == []
    assert read_journal(tmp_path).of(FaultApplied) == []


def test_a_step_that_cannot_be_applied_is_reported_and_not_undone(
        journal: JournalWriter, tmp_path: Path) -> None:
    injector = Recorder(fail_on="proxy.latency")
    player = play([step(0.0, 0.1, "proxy.latency")], injector, journal)
    wait_for(lambda: bool(player.errors))
    player.stop()
    assert "step 0 (proxy.latency on vendors.sms): refused" in player.errors[0]
    assert injector.calls == []
    assert read_journal(tmp_path).of(FaultApplied) == []


def test_steps_go_to_the_injector_of_their_family() -> None:
    network, vendor = Recorder(), Recorder()
    families = FamilyInjector({"network": network, "vendor": vendor})
    families.apply(0, step(0, None, "proxy.down"))
    families.apply(1, step(0, None, "vendor.throttle"))
    assert [c[1] for c in network.calls] == [0] and [c[1] for c in vendor.calls] == [1]


def test_vendor_fault_parameters_are_checked_at_load() -> None:
    with pytest.raises(ValueError, match="fraction"):
        Step.model_validate({"at": 0, "fault": "vendor.drop", "link": "vendors.sms",
                             "params": {"fraction": 1.5}})


class Measuring(Recorder):
    """A recorder that measures what it applies: at once (as a process fault does) or, for
    network faults, through a callable the player runs later, here held until `release`."""

    def __init__(self, fail_measuring: bool = False) -> None:
        super().__init__()
        self.release = threading.Event()
        self.fail_measuring = fail_measuring

    def apply(self, index: int, step: Step) -> Effect:  # type: ignore[override]
        super().apply(index, step)
        if step.fault.startswith("process."):
            return FaultMeasured(step=index, probes=1, affected=1, detail="SIGTERM to pid 1")

        def measure() -> FaultMeasured:
            assert self.release.wait(5), "the test never released the measurement"
            if self.fail_measuring:
                raise OSError("canary socket: network unreachable")
            return FaultMeasured(step=index, probes=5, affected=4, detail="4 of 5 delayed")

        return measure


def kinds(tmp_path: Path) -> list[tuple[str, int]]:
    return [(event.kind, event.step) for event in read_journal(tmp_path).events
            if isinstance(event, FaultApplied | FaultMeasured | FaultReverted)]


def test_a_slow_measurement_is_journaled_after_its_step_and_delays_no_other_step(
        journal: JournalWriter, tmp_path: Path) -> None:
    injector = Measuring()
    player = play([step(0.0, None, "proxy.latency"), step(0.1, None, "proxy.down",
                                                          link="ledger")], injector, journal)
    # Step 1 takes effect while step 0 is still being measured.
    wait_for(lambda: len(read_journal(tmp_path).of(FaultApplied)) == 2)
    assert kinds(tmp_path) == [("fault.applied", 0), ("fault.applied", 1)]
    injector.release.set()
    wait_for(lambda: len(read_journal(tmp_path).of(FaultMeasured)) == 2)
    player.stop()
    measured = read_journal(tmp_path).of(FaultMeasured)
    assert sorted((m.step, m.probes, m.affected) for m in measured) == [(0, 5, 4), (1, 5, 4)]
    order = kinds(tmp_path)
    for index in (0, 1):
        assert order.index(("fault.applied", index)) < order.index(("fault.measured", index))


def test_a_measurement_given_at_once_comes_between_applied_and_reverted(
        journal: JournalWriter, tmp_path: Path) -> None:
    player = play([step(0.0, None, "process.restart", link="target")], Measuring(), journal)
    wait_for(lambda: len(read_journal(tmp_path).of(FaultReverted)) == 1)
    player.stop()
    assert kinds(tmp_path) == [("fault.applied", 0), ("fault.measured", 0),
                               ("fault.reverted", 0)]


def test_a_measurement_that_fails_is_journaled_as_no_effect_and_fails_nothing(
        journal: JournalWriter, tmp_path: Path) -> None:
    injector = Measuring(fail_measuring=True)
    injector.release.set()
    player = play([step(0.0, None, "proxy.latency")], injector, journal)
    wait_for(lambda: bool(read_journal(tmp_path).of(FaultMeasured)))
    player.stop()
    [measured] = read_journal(tmp_path).of(FaultMeasured)
    assert (measured.step, measured.probes, measured.affected) == (0, 0, 0)
    assert "OSError: canary socket: network unreachable" in measured.detail
    assert player.errors == []


def test_stopping_waits_for_a_measurement_under_way(journal: JournalWriter,
                                                    tmp_path: Path) -> None:
    injector = Measuring()
    player = play([step(0.0, None, "proxy.latency")], injector, journal)
    wait_for(lambda: len(read_journal(tmp_path).of(FaultApplied)) == 1)
    threading.Timer(0.5, injector.release.set).start()
    player.stop()  # returns only once the measurement is in the journal
    assert kinds(tmp_path) == [("fault.applied", 0), ("fault.reverted", 0),
                               ("fault.measured", 0)]
