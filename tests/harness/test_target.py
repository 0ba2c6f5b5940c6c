"""Placeholders and the start of a target: ready when healthy, a clear error when never."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

from harness.errors import StartupError
from harness.processes import free_port
from harness.scenario import Target
from harness.target import AddressBook, RunningTarget, start_target


def test_placeholders_are_filled_and_double_braces_are_literal() -> None:
    book = AddressBook({"ledger.url": "http://127.0.0.1:9", "run.seed": "7"})
    assert book.render("{ledger.url}/v1 {{not}} {run.seed}") == "http://127.0.0.1:9/v1 {not} 7"


def test_an_unknown_placeholder_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match=r"unknown placeholder \{ledger.uri\}"):
        AddressBook({}).render("{ledger.uri}")


def test_a_target_is_ready_when_its_health_url_answers(tmp_path: Path) -> None:
    port = free_port()
    target = Target(command=[sys.executable, "-m", "http.server", "{target.port}",
                             "--bind", "127.0.0.1"],
                    health="http://127.0.0.1:{target.port}/", ready_timeout=20)
    process = start_target(target, AddressBook({"target.port": str(port)}), tmp_path / "t.log")
    try:
        assert process.returncode is None
    finally:
        process.stop()
    assert process.returncode is not None


def test_a_target_that_exits_early_fails_with_its_log_tail(tmp_path: Path) -> None:
    target = Target(command=[sys.executable, "-c", "print('config missing: LEDGER_URL'); exit(3)"],
                    health="tcp://127.0.0.1:1", ready_timeout=20)
    with pytest.raises(StartupError) as caught:
        start_target(target, AddressBook({}), tmp_path / "t.log")
    assert "exited with code 3" in str(caught.value)
    assert "config missing: LEDGER_URL" in caught.value.log_tail


def test_a_target_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    target = Target(command=[sys.executable, "-c", "import time; time.sleep(30)"],
                    health=f"tcp://127.0.0.1:{free_port()}", ready_timeout=0.5)
    with pytest.raises(StartupError, match=r"did not answer within 0\.5s"):
        start_target(target, AddressBook({}), tmp_path / "t.log")


def test_the_runs_stop_is_registered_before_the_health_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target(command=[sys.executable, "-c", "import time; time.sleep(60)"],
                    health=f"tcp://127.0.0.1:{free_port()}", ready_timeout=20)
    with contextlib.ExitStack() as teardown:
        def health_check_torn_down(*args: object, **kwargs: object) -> bool:
            teardown.close()  # the run tears down while the target is still starting
            return True

        monkeypatch.setattr("harness.target.poll_until", health_check_torn_down)
        running = RunningTarget(target, AddressBook({}), tmp_path / "t.log", stop_with=teardown)
    assert running.process.returncode is not None



def test_a_target_stopped_for_good_starts_no_more(tmp_path: Path) -> None:
    port = free_port()
    target = Target(command=[sys.executable, "-m", "http.server", "{target.port}",
                             "--bind", "127.0.0.1"],
                    health="http://127.0.0.1:{target.port}/", ready_timeout=20)
    running = RunningTarget(target, AddressBook({"target.port": str(port)}), tmp_path / "t.log",
                            name="target.standby")
    running.kill()
    running.stop()  # the teardown, before the timeline's start of the killed target came
    with pytest.raises(StartupError, match=r"^target.standby: the run is ending"):
        running.start()
    assert running.current().exit_code is not None
