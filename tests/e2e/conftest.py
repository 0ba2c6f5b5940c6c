"""End-to-end helpers: run the real `notifychaos` command and read what it left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import ComponentError, ExitCode, NotifyChaosError
from harness.journal import Journal, read_journal
from harness.pytest_plugin import Rehearser, describe

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Finished:
    """A finished `notifychaos` process: exit code, output, and its run folder if it made one."""

    code: int
    stdout: str
    stderr: str
    run_dir: Path | None

    def scorecard(self) -> dict[str, Any]:
        assert self.run_dir is not None, self.stderr
        data: dict[str, Any] = json.loads((self.run_dir / "scorecard.json").read_text())
        return data

    def journal(self) -> Journal:
        assert self.run_dir is not None, self.stderr
        return read_journal(self.run_dir / "journal")


def start(*args: str | Path) -> subprocess.Popen[str]:
    """Start `notifychaos ARGS` in its own session, as a terminal would run it."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *map(str, args)], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "COLUMNS": "200"})


def finish(process: subprocess.Popen[str], out: Path | None, timeout: float) -> Finished:
    """Wait for the process; kill its group if it overstays `timeout`."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"notifychaos did not finish within {timeout}s:\n{stdout}\n{stderr}")
    runs = sorted(out.iterdir()) if out is not None and out.exists() else []
    return Finished(process.returncode, stdout, stderr, runs[-1] if runs else None)


def rehearse_many(jobs: dict[str, tuple[Path, list[str]]], rehearse: Rehearser,
                  concurrency: int) -> dict[str, Finished]:
    """Rehearse every job (scenario, overrides) through the pytest plugin's rehearser, at most
    `concurrency` at a time in threads of this process; a run that could not be made fails the
    test that asks for it, with its error."""

    def one(job: tuple[Path, list[str]]) -> Finished:
        scenario, overrides = job
        try:
            result = rehearse(scenario, overrides=overrides)
        except NotifyChaosError as exc:
            tail = f"\n{exc.log_tail}" if isinstance(exc, ComponentError) else ""
            return Finished(int(ExitCode.NOT_RUN), "", f"{type(exc).__name__}: {exc}{tail}", None)
        return Finished(int(result.exit_code), describe(result), "", result.run_dir)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return dict(zip(jobs, pool.map(one, jobs.values()), strict=True))


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll `predicate` until true, failing the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
