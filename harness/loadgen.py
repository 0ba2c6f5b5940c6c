"""Load from Locust, headless, in its own process (Locust monkey-patches whatever imports it)."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.processes import ManagedProcess
from harness.scenario import Scenario

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


@dataclass(frozen=True)
class LoadTotals:
    """What Locust reports at the end: its exit code and request counts."""

    exit_code: int | None
    requests: int
    failures: int


TOKEN_ENV = "NOTIFYCHAOS_TOKEN"
"""The environment variable that gives Locust the run's token (the ledger's admin wants it)."""


class LoadGenerator:
    """One headless Locust run ticking the ledger (each tick schedules a reminder) at the
    scenario's rate, with the run's `token`."""

    def __init__(self, scenario: Scenario, ledger_admin_url: str, workdir: Path,
                 token: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self._stats = workdir / "locust"
        argv = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", str(scenario.load.users), "-r", f"{scenario.load.spawn_rate:g}",
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
