"""Ctrl-C in the middle of an upgrade's migration: the migration and every process stop, nothing
is started again, and the journal says how far the cut-over got."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from harness.journal import ComponentReady, LoadStarted, UpgradeFinished
from tests.e2e.conftest import ROOT, finish, pid_alive, start, wait_for

pytestmark = pytest.mark.e2e


def test_ctrl_c_during_the_migration_stops_it_and_journals_the_cut_over(tmp_path: Path) -> None:
    pid_file = tmp_path / "migration.pid"
    migration = (f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
                 "time.sleep(120)")
    scenario = yaml.safe_load((ROOT / "scenarios" / "primary-vendor-outage.yaml").read_text(
        encoding="utf-8"))
    # Version B is version A again: the migration never ends, so B is never started.
    scenario |= {"duration": "40s", "timeline": [{"at": "2s", "fault": "upgrade",
                                                  "link": "target"}],
                 "upgrade": {"target": scenario["target"],
                             "migrate": {"command": ["python", "-c", migration]}}}
    path = tmp_path / "upgrade.yaml"
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "runs"
    process = start("run", path, "--out", out)
    wait_for(lambda: pid_file.exists() and pid_file.read_text() != "", 90,
             "the migration to start")
    migration_pid = int(pid_file.read_text())
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to the harness's group
    done = finish(process, out, timeout=60)
    assert done.code == 2, done.stderr
    assert "could not stop" not in done.stdout + done.stderr
    assert not pid_alive(migration_pid)
    journal = done.journal()
    [finished] = journal.of(UpgradeFinished)
    assert (finished.outcome, finished.migration_exit, finished.ready_at) == (
        "interrupted", None, None)
    assert finished.reason == "the run stopped during the migration (it was stopped)"
    assert finished.stop_ended is not None
    pids = [c.pid for c in journal.of(ComponentReady) if c.pid is not None]
    pids += [load.pid for load in journal.of(LoadStarted)]
    assert len(pids) == 4  # toxiproxy, mocks, version A (not started again), locust
    assert not [pid for pid in pids if pid_alive(pid)]
