"""A shaped load from a real Locust against the real ledger: exactly the curve's ticks, none
before its time, counted from the month's epoch; from one process, or from a master and two
workers that tick a part of the curve each."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.journal import ReminderScheduled, read_journal
from harness.loadgen import LoadGenerator
from harness.scenario import load_scenario
from tests.conftest import ROOT
from tests.mocks import mockkit
from tests.mocks.mockkit import running_mocks


@pytest.mark.parametrize("workers", [0, 2])
def test_a_spiky_month_schedules_exactly_its_ticks_and_none_ahead_of_time(
        tmp_path: Path, workers: int) -> None:
    # 6 s of load at 2/s with a spike of 5 times that from 2 s to 4 s: 28 ticks.
    scenario = load_scenario(ROOT / "scenarios" / "month-end-peak.yaml", overrides=[
        "duration=6s", "timeline=[]", "load.users=4", f"load.workers={workers}",
        "reminders.shape={kind: spike, at: 2s, for: 2s, factor: 5}", "reminders.rate=2/s"])
    curve = scenario.curve()
    assert curve.ticks == 28
    with running_mocks(tmp_path, "http://127.0.0.1:9/unused") as mocks:
        # Locust starts before the epoch, as a run's does, and waits for it (its workers
        # join their master first).
        epoch = time.time() + (3.0 if workers == 0 else 5.0)
        load = LoadGenerator(scenario, mocks.manifest.ledger_url, tmp_path / "load",
                             mockkit.TOKEN, epoch=epoch)
        try:
            load.wait_for_workers()
            code = load.wait(scenario.duration + 60.0)
        finally:
            totals = load.stop()
        ticks = sorted(event.t for event in read_journal(mocks.journal_dir).of(ReminderScheduled))

    # Every tick in a request (at most one request interval apart: at times several in one).
    assert (code, totals.ticks, totals.failures) == (0, 28, 0)
    assert 0 < totals.requests <= 28
    assert len(ticks) == 28
    # Late but never ahead: the i-th tick to reach the ledger came after the i-th tick's time.
    due = [epoch + at for k in range(28) if (at := curve.tick_at(k)) is not None]
    assert all(arrived >= planned for arrived, planned in zip(ticks, due, strict=True))
