"""Distributed Locust for real: a master and two local worker processes carry the demo's load
through a vendor outage; the ticks are the ledger's reminders, at the rate one process gives;
each worker picks the borrowers who open the app from its own seed stream into its own journal
file; Locust's CSV statistics are in the run folder."""

from __future__ import annotations

import json

import pytest

from harness.journal import AppOpened, ReminderScheduled, read_journal
from harness.pytest_plugin import Rehearser
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

RATE, DURATION, USERS = 4, 20, 4
# Twilio down from 5 s to 15 s of a 20 s load; borrowers open the app once a second in all.
DISTRIBUTED = {
    "duration": f"{DURATION}s",
    "timeline": [{"at": "5s", "for": "10s", "fault": "proxy.down", "link": "vendors.twilio"}],
    "reminders.rate": f"{RATE}/s",
    "load": {"users": USERS, "spawn_rate": f"{USERS}/s", "workers": 2},
    "app": {"opens": "1/s"},
}


def test_two_local_workers_carry_the_load_each_with_its_own_seed_stream(
        rehearse: Rehearser) -> None:
    result = rehearse(ROOT / "scenarios" / "primary-vendor-outage.yaml", overrides=DISTRIBUTED)
    load = result.run_dir / "load"
    journal = read_journal(result.run_dir / "journal")

    assert result.passed and result.scorecard.continuity >= 0.99
    # One master that saw both workers join, and two worker processes that it sent home.
    assert b"2 workers connected" in (load / "locust.log").read_bytes()
    for index in (0, 1):
        log = (load / f"locust-worker-{index}.log").read_text(encoding="utf-8")
        assert "Got quit message from master" in log
    # Every tick Locust counted is a reminder the ledger scheduled, as many as one process
    # would send (the users tick at RATE / USERS each and never run ahead).
    stats = {(entry["method"], entry["name"]): entry
             for entry in json.loads((load / "locust.json").read_text())}
    ticks = stats[("TICK", "/admin/ticks")]  # one per tick; the requests are POST's
    assert 0 < stats[("POST", "/admin/ticks")]["num_requests"] <= ticks["num_requests"]
    scheduled = len(journal.of(ReminderScheduled))
    assert ticks["num_requests"] - ticks["num_failures"] == scheduled
    assert 0.75 * RATE * DURATION <= scheduled <= RATE * DURATION + USERS
    # Locust's CSV statistics land beside its JSON, in the run folder.
    csv = (load / "locust_stats.csv").read_text(encoding="utf-8")
    assert "/admin/ticks" in csv and (load / "locust_stats_history.csv").is_file()
    # Each worker journaled its own app opens into its own file, from its own picks.
    journal_dir = result.run_dir / "journal"
    assert not (journal_dir / "locust-app.jsonl").exists()
    picks: dict[str, list[str]] = {}
    for opened in journal.of(AppOpened):
        picks.setdefault(opened.source, []).append(opened.borrower_id)
    assert picks.keys() == {"locust-app-0", "locust-app-1"}
    assert all((journal_dir / f"{source}.jsonl").is_file() for source in picks)
    first, second = picks["locust-app-0"], picks["locust-app-1"]
    shortest = min(len(first), len(second))
    assert shortest >= 3
    assert first[:shortest] != second[:shortest]
    # 5 users (ceil(1/s x 5 s)) open once every 5 s each, late but never ahead.
    assert len(first) + len(second) <= 5 * (DURATION // 5 + 1)
