"""Load from Locust, headless, in its own process (Locust monkey-patches whatever imports it)."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.journal import AppOpened
from harness.processes import ManagedProcess
from harness.scenario import App, Scenario

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


@dataclass(frozen=True)
class LoadTotals:
    """What Locust reports at the end: its exit code and request counts."""

    exit_code: int | None
    requests: int
    failures: int


TOKEN_ENV = "NOTIFYCHAOS_TOKEN"
"""The environment variable that gives Locust the run's token (the ledger's admin wants it)."""

APP_ENV = "NOTIFYCHAOS_APP"
"""The environment variable that gives Locust the borrower app's load (an `AppLoad` as JSON)."""

APP_TIMEOUT = 5.0
"""Seconds a borrower's app waits to connect, and for each read: no longer than a fault lasts,
so that a dead link shows as opens with no answer."""


class AppLoad(BaseModel):
    """Borrowers opening the bank's app, as Locust's process is told: where the app's API is
    (through the `app` link), how often in all, by how many users, how many opens also switch
    reminders off, the seed of its picks and the run's journal folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    opens: float
    users: int
    opt_outs: float
    seed: int
    journal_dir: str

    @classmethod
    def of(cls, app: App, seed: int, url: str, journal_dir: Path) -> AppLoad:
        # Enough users that the rate holds while every open waits out its timeouts (one
        # request, or two with an opt-out): constant throughput runs late, never ahead.
        per_open = APP_TIMEOUT * (1 + app.opt_outs)
        return cls(url=url, opens=app.opens, users=max(1, math.ceil(app.opens * per_open)),
                   opt_outs=app.opt_outs, seed=seed, journal_dir=str(journal_dir))


def app_opened(borrower_id: str, t: float, latency: float, status: int,
               body: bytes) -> AppOpened:
    """An open of the app at `t` as the journal keeps it. `status` 0 is no answer; so is a 200
    whose body is not the borrower's view (a link that cut it short): it showed them nothing."""
    opened = AppOpened(t=t, borrower_id=borrower_id, status=status or None, latency=latency)
    if status != 200:
        return opened
    try:
        view = json.loads(body)
    except ValueError:
        view = None
    if not isinstance(view, dict) or view.get("borrower_id") != borrower_id:
        return opened.model_copy(update={"status": None})
    if "installment" in view and view["installment"] is None:
        return opened
    shown = {key: view.get(key) for key in ("reminder_id", "amount", "due_date")}
    if not all(isinstance(value, str) for value in shown.values()):
        return opened.model_copy(update={"status": None})
    return opened.model_copy(update=shown)


class LoadGenerator:
    """One headless Locust run ticking the ledger (each tick schedules a reminder) at the
    scenario's rate, with the run's `token`; with the scenario's `app`, borrowers also open the
    app at `app_url` and journal each open into `journal_dir` (required then)."""

    def __init__(self, scenario: Scenario, ledger_admin_url: str, workdir: Path,
                 token: str, *, app_url: str | None = None,
                 journal_dir: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self._stats = workdir / "locust"
        app: AppLoad | None = None
        if scenario.app is not None:
            if app_url is None or journal_dir is None:
                raise ValueError(f"scenario {scenario.name!r} has app opens: LoadGenerator "
                                 "needs app_url and journal_dir")
            app = AppLoad.of(scenario.app, scenario.seed, app_url, journal_dir)
        users = scenario.load.users + (app.users if app else 0)
        # Every user is up as soon as the ticking ones alone would be: the app's must not hold
        # back the reminders.
        spawn_rate = scenario.load.spawn_rate * users / scenario.load.users
        argv = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(users), "-r", f"{spawn_rate:g}",
            "-t", f"{scenario.duration:g}s", "-H", ledger_admin_url,
            "--json-file", str(self._stats), "--only-summary", "--stop-timeout", "5",
        ]
        env = {
            **os.environ,
            "NOTIFYCHAOS_RATE": f"{scenario.reminders.rate:g}",
            "NOTIFYCHAOS_USERS": str(scenario.load.users),
            # The environment, not argv: any local user can read a process's command line.
            TOKEN_ENV: token,
        }
        if app is not None:
            env[APP_ENV] = app.model_dump_json()
        # cwd is the run's own folder: Locust reads locust.conf and pyproject.toml from its cwd.
        self.process = ManagedProcess("locust", argv, log_path=workdir / "locust.log",
                                      env=env, cwd=workdir)

    def wait(self, timeout: float) -> int | None:
        """Wait for Locust to finish its run time; its exit code, or None if still running."""
        return self.process.wait(timeout)

    def stop(self) -> LoadTotals:
        """Stop Locust if it still runs (SIGINT writes all its outputs) and read its totals."""
        code = self.process.stop(grace=10.0, signum=signal.SIGINT)
        requests = failures = 0
        try:
            entries = json.loads(self._stats.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = []
        for entry in entries:
            requests += int(entry.get("num_requests", 0))
            failures += int(entry.get("num_failures", 0))
        return LoadTotals(code, requests, failures)
