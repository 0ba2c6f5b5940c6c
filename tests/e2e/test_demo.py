"""The demo scenario end to end: the reference notifier passes, the naive one fails, and why.

Both runs are real: the Toxiproxy server, the mock process, the notifier process and Locust, all
on 127.0.0.1. They run side by side to halve the wall time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Finished, finish, start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Finished]:
    scenarios = {"reference": ROOT / "scenarios" / "primary-vendor-outage.yaml",
                 "naive": ROOT / "scenarios" / "primary-vendor-outage-naive.yaml"}
    outs = {name: tmp_path_factory.mktemp(name) for name in scenarios}
    running = {name: start("run", path, "--out", outs[name]) for name, path in scenarios.items()}
    return {name: finish(process, outs[name], timeout=300) for name, process in running.items()}


def test_the_reference_notifier_passes_the_gate(demo_runs: dict[str, Finished]) -> None:
    run = demo_runs["reference"]
    card = run.scorecard()
    assert run.code == 0, run.stdout + run.stderr
    assert card["passed"] is True
    assert card["toxiproxy_version"] == "2.12.0"
    # 4 reminders/s for 90 s: a run that made far fewer proves nothing.
    assert card["owed"] >= 250
    assert card["continuity"] >= 0.99
    assert card["outcomes"]["missed"] == 0
    assert [gate["passed"] for gate in card["gates"]] == [True, True, True]
    [fault] = card["faults"]
    assert fault["exposed"] > 0
    assert fault["outcomes_exposed"]["on_time"] == fault["exposed"]
    assert "PASSED" in run.stdout


def test_the_naive_notifier_fails_the_gate_by_missing_reminders_during_the_outage(
        demo_runs: dict[str, Finished]) -> None:
    run = demo_runs["naive"]
    card = run.scorecard()
    assert run.code == 1, run.stdout + run.stderr
    assert card["passed"] is False
    continuity_gate = card["gates"][0]
    assert continuity_gate["expr"] == "continuity >= 0.99"
    assert continuity_gate["passed"] is False
    [fault] = card["faults"]
    assert fault["fault"] == "proxy.down" and fault["link"] == "vendors.twilio"
    # The misses are the outage's: every missed reminder was owed while Twilio was down.
    assert card["outcomes"]["missed"] > 0
    assert fault["outcomes_exposed"]["missed"] == card["outcomes"]["missed"]
    assert "FAILED" in run.stdout


@pytest.mark.parametrize("which", ["reference", "naive"])
def test_each_run_keeps_the_logs_of_every_component(demo_runs: dict[str, Finished],
                                                    which: str) -> None:
    run_dir = demo_runs[which].run_dir
    assert run_dir is not None
    for log in ("toxiproxy.log", "mocks.log", "target.log"):
        assert (run_dir / "logs" / log).stat().st_size > 0, log
    assert (run_dir / "load" / "locust.log").exists()
    assert (run_dir / "load" / "locust.json").exists()
    assert sorted(p.name for p in (run_dir / "journal").iterdir()) == ["harness.jsonl",
                                                                       "mocks.jsonl"]


def test_a_journal_can_be_scored_again_to_the_same_scorecard(
        demo_runs: dict[str, Finished], tmp_path: Path) -> None:
    run = demo_runs["naive"]
    assert run.run_dir is not None
    shutil.copytree(run.run_dir / "journal", tmp_path / "journal")
    again = finish(start("report", tmp_path), None, timeout=60)
    assert again.code == 1, again.stderr
    rescored = json.loads((tmp_path / "scorecard.json").read_text())
    assert rescored == run.scorecard()
