"""The reference notifier is unharmed by the core system's data faults, on real processes: it
keeps each reminder's highest version and checks the primary before sending, so a replica
restored from an old snapshot and test records leaking into the feed change nothing it sends."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ROOT, finish, start

pytestmark = pytest.mark.e2e

# repayment-storm's notifier and load, with borrowers who change numbers and opt out too, and
# shorter windows (the run watches lead + window after the load); the snapshot is older than
# the run, so every change made before the step is forgotten.
OVERRIDES = (
    "duration=20s", "reminders.lead=5s", "reminders.window=10s",
    "changes={repaid: 0.3, partially_repaid: 0.1, phone_changed: 0.2, opted_out: 0.1}",
    "timeline=[{at: 3s, for: 12s, fault: data.snapshot, link: ledger, params: {age: 30s}},"
    " {at: 3s, for: 12s, fault: data.test_leak, link: ledger,"
    " params: {fraction: 0.2, records: borrowers}}]",
    "gates=[continuity >= 0.99, sent_after_repayment == 0, sent_to_test_data == 0,"
    " sent_to_opted_out == 0, wrong_recipient == 0, wrong_content == 0, duplicates == 0]",
)


def test_the_reference_notifier_sends_nothing_a_snapshot_or_a_test_leak_got_wrong(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("data-faults")
    sets = [arg for override in OVERRIDES for arg in ("--set", override)]
    run = finish(start("run", ROOT / "scenarios" / "repayment-storm.yaml", "--out", out, *sets),
                 out, timeout=240)
    card = run.scorecard()

    assert (run.code, card["verdict"]) == (0, "passed"), run.stdout[-4000:] + run.stderr[-2000:]
    snapshot, leak = card["faults"]
    # Both faults acted (else the run would be inconclusive): the feed was wrong, the sends not.
    assert snapshot["touched"] > 0 and "records forgotten" in snapshot["effect"]
    assert leak["touched"] > 0 and "test records leaked (borrowers)" in leak["effect"]
    assert card["cancelled"] > 0 and card["unmatched"] == 0
