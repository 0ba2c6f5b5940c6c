"""A part of the harness that dies mid-run voids the run: the mocks (or the run's Toxiproxy
server) killed during the load end it at once with a one-line error and exit code 2, not with a
verdict blaming the notifier; every process stops, and the journal still makes a report that
says the run was not judged and why."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from harness.journal import ComponentReady, LoadStarted, ReminderScheduled, RunEnded, read_journal
from tests.e2e.conftest import ROOT, finish, pid_alive, start, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("component", ["mocks", "toxiproxy"])
def test_a_harness_process_killed_during_the_load_voids_the_run_instead_of_failing_the_notifier(
        tmp_path: Path, component: str) -> None:
    out = tmp_path / "runs"
    process = start("run", ROOT / "scenarios" / "primary-vendor-outage.yaml", "--out", out,
                    "--set", "duration=60s", "--set", "timeline=[]")

    def journal_dir() -> Path | None:
        found = list(out.glob("*/journal"))
        return found[0] if found else None

    def reminders_flowing() -> bool:
        journal = journal_dir()
        if journal is None:
            return False
        events = read_journal(journal)
        return bool(events.of(LoadStarted)) and len(events.of(ReminderScheduled)) >= 3

    wait_for(reminders_flowing, 120, "the load to schedule reminders")
    journal = journal_dir()
    assert journal is not None
    [killed] = [c for c in read_journal(journal).of(ComponentReady) if c.component == component]
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)
    # Well before the 60 s load would have ended on its own.
    done = finish(process, out, timeout=45)

    assert done.code == 2, done.stdout + done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("notifychaos: error")]
    expected = f"notifychaos: error: {component}: exited with code -9 during the run"
    assert error.startswith(expected), error
    assert "cannot be judged" in error
    assert done.run_dir is not None
    assert not (done.run_dir / "scorecard.json").exists()  # no verdict on the notifier
    events = read_journal(done.run_dir / "journal")
    [ended] = events.of(RunEnded)
    assert ended.status == "failed" and ended.reason.startswith(f"{component}: exited with code -9")
    pids = [c.pid for c in events.of(ComponentReady) if c.pid is not None]
    pids += [load.pid for load in events.of(LoadStarted)]
    assert len(pids) == 4  # toxiproxy, mocks, target, locust
    assert not [pid for pid in pids if pid_alive(pid)]

    report = finish(start("report", done.run_dir), None, timeout=60)
    assert report.code == 1, report.stdout + report.stderr
    assert f"NOT JUDGED: the run failed: {component}: exited with code -9" in report.stdout, \
        report.stdout
    card = json.loads((done.run_dir / "scorecard.json").read_text(encoding="utf-8"))
    assert card["status"] == "failed" and card["verdict"] == "not_judged"
    assert card["status_reason"] == ended.reason
