"""Ctrl-C in the middle of a fault: every process stops, no proxy stays, the journal is scorable."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.journal import ComponentReady, FaultApplied, LoadStarted, RunEnded, read_journal
from harness.toxiproxy import ToxiproxyServer, find_server
from tests.e2e.conftest import ROOT, finish, pid_alive, start, wait_for

pytestmark = pytest.mark.e2e

# The fault comes once the first reminders (5 s ahead in the feed) have been sent.
SHORT = (ROOT / "scenarios" / "primary-vendor-outage.yaml").read_text(encoding="utf-8") \
    .replace("duration: 90s", "duration: 40s").replace("at: 30s", "at: 8s")


@pytest.fixture
def toxiproxy_url(tmp_path: Path) -> Iterator[str]:
    """A Toxiproxy server the test owns, to look into after the harness is gone."""
    server = ToxiproxyServer(find_server(), tmp_path / "tp.log")
    yield server.url
    server.stop()


def interrupt_during_the_fault(tmp_path: Path, *extra: str) -> tuple[Path, int, str]:
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SHORT, encoding="utf-8")
    out = tmp_path / "runs"
    process = start("run", scenario, "--out", out, *extra)

    def fault_applied() -> bool:
        journals = list(out.glob("*/journal"))
        return bool(journals) and bool(read_journal(journals[0]).of(FaultApplied))

    wait_for(fault_applied, 60, "the fault to be applied")
    # A terminal's Ctrl-C goes to the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    done = finish(process, out, timeout=60)
    assert done.run_dir is not None
    return done.run_dir, done.code, done.stderr


def test_ctrl_c_stops_every_process_it_started(tmp_path: Path) -> None:
    run_dir, code, stderr = interrupt_during_the_fault(tmp_path)
    assert code == 2
    assert "interrupted" in stderr
    journal = read_journal(run_dir / "journal")
    pids = [c.pid for c in journal.of(ComponentReady) if c.pid is not None]
    pids += [load.pid for load in journal.of(LoadStarted)]
    assert len(pids) == 4  # toxiproxy, mocks, target, locust
    assert not [pid for pid in pids if pid_alive(pid)]
    [toxiproxy] = [c for c in journal.of(ComponentReady) if c.component == "toxiproxy"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{toxiproxy.address}/version", timeout=2)


def test_a_half_finished_run_can_still_be_reported(tmp_path: Path) -> None:
    run_dir, _, _ = interrupt_during_the_fault(tmp_path)
    (run_dir / "scorecard.json").unlink()
    report = finish(start("report", run_dir), None, timeout=60)
    assert report.code == 1, report.stderr
    assert "NOT JUDGED: the run interrupted" in report.stdout
    card = json.loads((run_dir / "scorecard.json").read_text())
    assert card["status"] == "interrupted"
    assert card["owed"] > 0


def test_ctrl_c_leaves_no_proxy_on_a_shared_server(tmp_path: Path, toxiproxy_url: str) -> None:
    run_dir, code, _ = interrupt_during_the_fault(tmp_path, "--toxiproxy-url", toxiproxy_url)
    assert code == 2
    assert httpx.get(f"{toxiproxy_url}/proxies", timeout=5).json() == {}
    journal = read_journal(run_dir / "journal")
    [ended] = journal.of(RunEnded)
    assert ended.status == "interrupted"
    card = (run_dir / "scorecard.json").read_text()
    assert '"status": "interrupted"' in card
