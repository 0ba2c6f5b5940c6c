"""The load generator: the run's token in its environment (for the ledger's /admin), never on
its command line, which any local user can read; and borrowers opening the app, each open
journaled as they saw it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

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
from harness.toxiproxy import ToxiproxyControl, ToxiproxyServer, find_server
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


def test_borrowers_open_the_app_through_its_link_see_the_truth_and_opt_out(
        tmp_path: Path) -> None:
    # Two opens a second for 10 s, each also switching reminders off, from a real Locust to a
    # real ledger through a real Toxiproxy link, which is down for a while in the middle.
    scenario = load_scenario(ROOT / "scenarios" / "primary-vendor-outage.yaml", overrides=[
        "duration=10s", "timeline=[]", "load.users=2", "app={opens: 2/s, opt_outs: 1}"])
    server = ToxiproxyServer(find_server(), tmp_path / "toxiproxy.log")
    control = ToxiproxyControl(server.url)
    try:
        with running_mocks(tmp_path, "http://127.0.0.1:9/unused", app=True,
                           population=Population(borrowers=30)) as mocks:
            link = control.create_link("app", urlsplit(mocks.manifest.ledger_url).netloc)
            load = LoadGenerator(scenario, mocks.manifest.ledger_url, tmp_path / "load",
                                 mockkit.TOKEN, journal_dir=mocks.journal_dir,
                                 app_url=f"http://{link.listen_host}:{link.listen_port}")

            def opens(status: int | None, count: int, since: float = 0.0
                      ) -> list[AppOpened] | None:
                found = [opened for opened in read_journal(mocks.journal_dir).of(AppOpened)
                         if opened.status == status and opened.t > since]
                return found if len(found) >= count else None

            try:
                assert poll_until(lambda: opens(200, 3), timeout=30) is not None
                control.disable("app")
                down = time.time()  # once it is down: an open begun before may still get in
                # Only through the link: opens begun while it is down get no answer.
                assert poll_until(lambda: opens(None, 2, since=down), timeout=30) is not None
                up = time.time()
                control.enable("app")
                assert load.wait(scenario.duration + 30) is not None
            finally:
                totals = load.stop()
            journal = read_journal(mocks.journal_dir)
    finally:
        control.remove_links()
        server.stop()

    made = journal.of(AppOpened)
    # At most the rate allows (constant throughput never runs ahead).
    assert len(made) <= 2 * 10 + 1
    assert {opened.source for opened in made} == {"locust-app"}
    assert all(opened.status is None for opened in made if down < opened.t < up)
    ticked = {event.borrower_id: event.phone for event in journal.of(ReminderScheduled)}
    answered = {opened.borrower_id for opened in made if opened.status == 200}
    assert answered <= ticked.keys()
    figures = app_figures(journal, [(down, up)])
    assert figures is not None
    assert figures.correctness == 1.0
    assert figures.answered < figures.opens
    assert figures.answered_in_faults < figures.opens_in_faults
    # Each open also switched reminders off: a borrower's first that got through opted them
    # out (once), none that did not.
    stops = [stop.phone for stop in journal.of(BorrowerOptedOut) if stop.vendor == "app"]
    assert stops
    assert sorted(stops) == sorted(set(stops))
    assert set(stops) <= {ticked[borrower_id] for borrower_id in answered}
    # The opens count in Locust's totals with the ticks' requests (one or more ticks each),
    # those that failed as failures.
    assert totals.exit_code == 1
    assert totals.ticks >= len(ticked)
    assert totals.requests >= 1 + len(made) + len(stops)
    assert totals.failures >= len(made) - figures.answered


def test_the_app_users_keep_the_rate_while_every_open_waits_out_its_timeouts() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "primary-vendor-outage.yaml",
                             overrides=["app={opens: 3/s, opt_outs: 0.5}"])
    assert scenario.app is not None

    load = AppLoad.of(scenario.app, 42, "http://127.0.0.1:1", Path("/run/journal"))

    # 3 opens a second, each up to 1.5 requests of APP_TIMEOUT (5 s): 23 users.
    assert (load.users, load.opens, load.opt_outs, load.seed) == (23, 3.0, 0.5, 42)


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
