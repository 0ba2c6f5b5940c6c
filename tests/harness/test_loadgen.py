"""The load generator: the run's token in its environment (for the ledger's /admin), never on
its command line, which any local user can read; and borrowers opening the app, each open
journaled as they saw it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.app_figures import app_figures
from harness.journal import AppOpened, BorrowerOptedOut, ReminderScheduled, read_journal
from harness.loadgen import (
    APP_ENV,
    LOCUSTFILE,
    TOKEN_ENV,
    AppLoad,
    LoadGenerator,
    app_opened,
)
from harness.processes import poll_until
from harness.scenario import load_scenario
from mocks.bank import Population
from mocks.manifest import TOKEN_HEADER
from tests.conftest import ROOT
from tests.mocks import mockkit
from tests.mocks.mockkit import running_mocks

TOKEN = "a-token-for-this-test-only-0123456789"


def test_locust_has_the_token_in_its_environment_and_not_in_its_argv(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "primary-vendor-outage.yaml")
    load = LoadGenerator(scenario, "http://127.0.0.1:9", tmp_path, TOKEN)
    try:
        proc = Path("/proc") / str(load.process.pid)

        def execed() -> str | None:
            # Until exec, the child's /proc shows the harness's command line and environment.
            argv = (proc / "cmdline").read_bytes().decode()
            return argv if "locust" in argv else None

        argv = poll_until(execed, timeout=20)
        assert argv is not None
        environ = (proc / "environ").read_bytes().split(b"\0")
    finally:
        load.stop()
    assert TOKEN not in argv
    assert f"{TOKEN_ENV}={TOKEN}".encode() in environ


def test_the_locustfile_sends_the_token_in_the_header_the_mocks_check() -> None:
    text = LOCUSTFILE.read_text(encoding="utf-8")

    assert f'{{"{TOKEN_HEADER}": os.environ.get("{TOKEN_ENV}"' in text


def test_the_locustfile_reads_the_app_load_where_the_load_generator_puts_it() -> None:
    assert f'os.environ.get("{APP_ENV}")' in LOCUSTFILE.read_text(encoding="utf-8")


def test_borrowers_open_the_app_at_its_rate_see_the_truth_and_opt_out(tmp_path: Path) -> None:
    # Two opens a second for 6 s, each also switching reminders off, through a real Locust
    # against a real ledger (direct: the run puts the `app` link in between).
    scenario = load_scenario(ROOT / "scenarios" / "primary-vendor-outage.yaml", overrides=[
        "duration=6s", "timeline=[]", "load.users=2", "app={opens: 2/s, opt_outs: 1}"])
    with running_mocks(tmp_path, "http://127.0.0.1:9/unused", app=True,
                       population=Population(borrowers=30)) as mocks:
        load = LoadGenerator(scenario, mocks.manifest.ledger_url, tmp_path / "load",
                             mockkit.TOKEN, app_url=mocks.manifest.ledger_url,
                             journal_dir=mocks.journal_dir)
        try:
            assert load.wait(scenario.duration + 30) is not None
        finally:
            totals = load.stop()
        journal = read_journal(mocks.journal_dir)

    assert (totals.exit_code, totals.failures) == (0, 0)
    opens = journal.of(AppOpened)
    # At most the rate allows (constant throughput never runs ahead); at least half of it,
    # after Locust's start and the first tick.
    assert 6 <= len(opens) <= 2 * 6 + 1
    assert {opened.source for opened in opens} == {"locust-app"}
    ticked = {event.borrower_id: event.phone for event in journal.of(ReminderScheduled)}
    assert {opened.borrower_id for opened in opens} <= ticked.keys()
    assert all(opened.status == 200 and opened.reminder_id for opened in opens)
    figures = app_figures(journal, [])
    assert figures is not None
    assert (figures.availability, figures.correctness) == (1.0, 1.0)
    # Every open switched reminders off: each borrower opened once is opted out, once.
    stops = [stop for stop in journal.of(BorrowerOptedOut) if stop.vendor == "app"]
    assert sorted(stop.phone for stop in stops) == sorted(
        {ticked[opened.borrower_id] for opened in opens})
    # The opens' requests count in Locust's totals with the ticks'.
    assert totals.requests >= len(ticked) + 2 * len(opens)


def test_the_app_users_keep_the_rate_while_every_open_waits_out_its_timeouts() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "primary-vendor-outage.yaml",
                             overrides=["app={opens: 3/s, opt_outs: 0.5}"])
    assert scenario.app is not None

    load = AppLoad.of(scenario, scenario.app, "http://127.0.0.1:1", Path("/run/journal"))

    # 3 opens a second, each up to 1.5 requests of APP_TIMEOUT (5 s): 23 users.
    assert (load.users, load.opens, load.opt_outs, load.seed) == (23, 3.0, 0.5, scenario.seed)


def test_a_scenario_with_app_opens_needs_the_app_url_and_the_journal(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "primary-vendor-outage.yaml",
                             overrides=["app={opens: 1/s}"])

    with pytest.raises(ValueError, match="needs app_url and journal_dir"):
        LoadGenerator(scenario, "http://127.0.0.1:9", tmp_path, TOKEN)


VIEW = {"borrower_id": "B000001", "reminder_id": "ML-000001-001", "amount": "100.00",
        "due_date": "2026-12-05", "currency": "CNY"}


@pytest.mark.parametrize(("status", "body", "journaled"), [
    (200, VIEW, (200, "ML-000001-001", "100.00", "2026-12-05")),
    (200, {"borrower_id": "B000001", "installment": None}, (200, None, None, None)),
    (0, None, (None, None, None, None)),
    (503, {"error": "down"}, (503, None, None, None)),
    (200, b'{"borrower_id": "B000001", "remin', (None, None, None, None)),
    (200, {**VIEW, "borrower_id": "B000002"}, (None, None, None, None)),
    (200, {**VIEW, "amount": 100}, (None, None, None, None)),
    (200, {"borrower_id": "B000001"}, (None, None, None, None)),
])
def test_an_open_is_journaled_with_what_the_borrower_saw(
        status: int, body: object, journaled: tuple[object, ...]) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    opened = app_opened("B000001", 1000.0, 0.25, status, raw)

    assert (opened.t, opened.borrower_id, opened.latency) == (1000.0, "B000001", 0.25)
    assert (opened.status, opened.reminder_id, opened.amount, opened.due_date) == journaled
