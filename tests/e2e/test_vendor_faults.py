"""A vendor fault end to end: lost responses make the reference notifier send reminders twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.journal import VendorFaultsChanged
from tests.e2e.conftest import ROOT, finish, start

pytestmark = pytest.mark.e2e


def test_lost_responses_are_caught_as_duplicates_during_the_fault(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run = finish(start("run", ROOT / "scenarios" / "lost-responses.yaml", "--out", out), out,
                 timeout=200)
    assert run.code == 1, run.stderr
    card = run.scorecard()
    assert card["continuity"] >= 0.99
    assert card["duplicates"] > 0
    [fault] = card["faults"]
    assert fault["fault"] == "vendor.response_lost"
    assert fault["duplicates_exposed"] == card["duplicates"]
    assert [g["passed"] for g in card["gates"]] == [True, False]
    switched = run.journal().of(VendorFaultsChanged)
    assert [(s.vendor, s.faults) for s in switched] == [
        ("twilio", {"response_lost": 1.0}), ("twilio", {})]
