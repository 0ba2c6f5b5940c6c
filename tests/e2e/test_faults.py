"""Vendor, process and data faults end to end, on real processes, three scenarios side by side.

Lost responses make a notifier that re-sends blindly send some reminders twice; killing,
freezing and restarting the reference notifier mid-send loses and repeats nothing, thanks to its
outbox and its asking the vendor; a drifting replica makes it send
reminders to numbers the bank has since changed.
"""

from __future__ import annotations

import pytest

from harness.journal import ComponentReady, FaultApplied, MockFaultsChanged
from tests.e2e.conftest import ROOT, Finished, finish, start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Finished]:
    names = ("lost-responses", "notifier-crash", "core-upgrade-drift")
    outs = {name: tmp_path_factory.mktemp(name) for name in names}
    running = {name: start("run", ROOT / "scenarios" / f"{name}.yaml", "--out", outs[name])
               for name in names}
    return {name: finish(process, outs[name], timeout=240) for name, process in running.items()}


def test_lost_responses_are_caught_as_duplicates_during_the_fault(
        runs: dict[str, Finished]) -> None:
    run = runs["lost-responses"]
    assert run.code == 1, run.stdout + run.stderr
    card = run.scorecard()
    assert card["continuity"] >= 0.99
    assert card["duplicates"] > 0
    [fault] = card["faults"]
    assert fault["fault"] == "vendor.response_lost"
    assert fault["duplicates_exposed"] == card["duplicates"]
    assert [g["passed"] for g in card["gates"]] == [True, False, False]
    twilio = card["vendors"]["twilio"]
    assert twilio["lost"] > 0 and twilio["sla_met"] is False
    assert card["vendors"]["aliyun"]["sla_met"] is None  # no SLA given
    switched = run.journal().of(MockFaultsChanged)
    assert [(s.mock, s.faults) for s in switched] == [
        ("twilio", {"response_lost": 1.0}), ("twilio", {})]


def test_a_killed_frozen_and_restarted_notifier_loses_and_repeats_nothing(
        runs: dict[str, Finished]) -> None:
    run = runs["notifier-crash"]
    assert run.code == 0, run.stdout + run.stderr
    card = run.scorecard()
    assert card["owed"] > 100
    assert card["outcomes"]["missed"] == 0 and card["duplicates"] == 0
    journal = run.journal()
    assert [f.fault for f in journal.of(FaultApplied)] == [
        "vendor.latency", "process.kill", "process.pause", "process.restart"]
    kill = card["faults"][1]
    assert kill["exposed"] > 0 and kill["outcomes_exposed"]["on_time"] == kill["exposed"]
    # Sends were in flight when it was killed and frozen: it asked Twilio about them.
    assert card["vendors"]["twilio"]["read"] > 0
    restart = card["faults"][3]
    assert restart["reverted_at"] - restart["applied_at"] < 10  # instant: done when back up
    assert len([c for c in journal.of(ComponentReady) if c.component == "target"]) == 1


def test_a_drifting_replica_is_scored_against_the_truth(runs: dict[str, Finished]) -> None:
    run = runs["core-upgrade-drift"]
    assert run.code == 1, run.stdout + run.stderr
    card = run.scorecard()
    drift, schema = card["faults"]
    assert card["outcomes"]["wrong_recipient"] > 0
    assert drift["outcomes_exposed"]["wrong_recipient"] == card["outcomes"]["wrong_recipient"]
    assert schema["fault"] == "data.schema" and schema["exposed"] > 0
    gates = {gate["expr"]: gate["passed"] for gate in card["gates"]}
    assert gates["wrong_recipient == 0"] is False
