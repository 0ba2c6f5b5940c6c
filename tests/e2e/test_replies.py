"""Borrowers reply STOP end to end: the vendor mocks forward each reply to the real notifier,
which stops sending to those borrowers and keeps sending to everyone else."""

from __future__ import annotations

import sqlite3

import pytest

from harness.journal import BorrowerOptedOut, SendRecorded
from tests.e2e.conftest import ROOT, finish, start

pytestmark = pytest.mark.e2e


def test_a_borrower_who_replied_stop_gets_nothing_more(tmp_path_factory: pytest.TempPathFactory
                                                       ) -> None:
    out = tmp_path_factory.mktemp("stop-replies")
    run = finish(start("run", ROOT / "scenarios" / "stop-replies.yaml", "--out", out), out,
                 timeout=180)
    assert run.code == 0, run.stdout + run.stderr
    card = run.scorecard()
    assert card["opted_out"] > 0 and card["sent_to_opted_out"] == 0
    assert card["outcomes"]["missed"] == 0
    journal = run.journal()
    stopped = {o.phone: o.t for o in journal.of(BorrowerOptedOut)}
    assert len(stopped) == card["opted_out"]
    after = [s for s in journal.of(SendRecorded) if s.to in stopped and s.t > stopped[s.to]]
    assert after == []
    assert run.run_dir is not None
    with sqlite3.connect(run.run_dir / "outbox.sqlite3") as outbox:
        opted = {phone for (phone,) in outbox.execute("SELECT phone FROM opted_out")}
        suppressed = outbox.execute(
            "SELECT COUNT(*) FROM outbox WHERE status = 'suppressed'").fetchone()[0]
    assert opted == set(stopped)  # every reply reached the notifier
    assert suppressed > 0
