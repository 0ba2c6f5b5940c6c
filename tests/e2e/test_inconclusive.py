"""A run that cannot tell does not pass: a fault that touched nothing makes it inconclusive."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ROOT, finish, start

pytestmark = pytest.mark.e2e

# Alibaba is only the secondary: with Twilio healthy, an outage at Alibaba meets no send.
UNMET_FAULT = ("timeline=[{at: 5s, for: 10s, fault: vendor.outage, link: vendors.aliyun, "
               "expect_alert: false}]")
# No step expects an alert, so the scenario's detection_time gate has nothing to measure.
GATES = "gates=[continuity >= 0.99, duplicates == 0, undetected_faults == 0]"


def test_a_fault_that_touched_nothing_makes_the_run_inconclusive_not_a_pass(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("inconclusive")
    # The load ends a second after the fault: nothing later bears on it.
    overrides = ("--set", "duration=16s", "--set", UNMET_FAULT, "--set", GATES)
    run = finish(start("run", ROOT / "scenarios" / "primary-vendor-outage.yaml", "--out", out,
                       *overrides), out, timeout=180)
    card = run.scorecard()
    assert (run.code, card["verdict"]) == (3, "inconclusive"), run.stdout + run.stderr
    assert all(gate["passed"] for gate in card["gates"])  # the gates alone would have passed
    [fault] = card["faults"]
    assert fault["fault"] == "vendor.outage" and fault["touched"] == 0
    [reason] = card["inconclusive"]
    assert reason.startswith("step 0") and "touched nothing" in reason
    assert "INCONCLUSIVE" in run.stdout
