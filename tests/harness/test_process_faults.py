"""Process faults on a real target: each step is measured by whether its signal reached a live
process."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.processes import free_port
from harness.scenario import Step, Target
from harness.target import AddressBook, RunningTarget
from harness.timeline import ProcessInjector


@pytest.fixture
def target(tmp_path: Path) -> Iterator[RunningTarget]:
    spec = Target(command=[sys.executable, "-m", "http.server", "{target.port}",
                           "--bind", "127.0.0.1"],
                  health="http://127.0.0.1:{target.port}/", ready_timeout=20)
    running = RunningTarget(spec, AddressBook({"target.port": str(free_port())}),
                            tmp_path / "target.log")
    yield running
    running.stop()


def step(fault: str) -> Step:
    return Step.model_validate({"at": 0, "for": 1, "fault": fault, "link": "target"})


def test_a_kill_reaches_the_live_target_and_says_which_pid(target: RunningTarget) -> None:
    injector = ProcessInjector(lambda link: target)
    pid = target.process.pid
    measured = injector.apply(4, step("process.kill"))
    assert target.process.wait(5) == -signal.SIGKILL  # it dies as the kernel gets to it
    assert (measured.step, measured.probes, measured.affected) == (4, 1, 1)
    assert measured.detail == f"SIGKILL to pid {pid}"
    injector.revert(4, step("process.kill"))
    assert target.process.returncode is None and target.process.pid != pid


def test_a_pause_and_a_restart_name_their_signal_and_the_new_pid(target: RunningTarget) -> None:
    injector = ProcessInjector(lambda link: target)
    pid = target.process.pid
    assert injector.apply(0, step("process.pause")).detail == f"SIGSTOP to pid {pid}"
    injector.revert(0, step("process.pause"))
    restarted = injector.apply(1, step("process.restart"))
    assert restarted.affected == 1
    assert restarted.detail == f"SIGTERM to pid {pid}, started again as pid {target.process.pid}"


def test_a_signal_to_a_target_already_gone_touches_nothing(target: RunningTarget) -> None:
    target.process.stop()  # the target died on its own before the step
    pid, code = target.process.pid, target.process.returncode
    measured = ProcessInjector(lambda link: target).apply(2, step("process.pause"))
    assert (measured.probes, measured.affected) == (1, 0)
    assert measured.detail == f"SIGSTOP to pid {pid}, which had already ended (exit code {code})"


def test_an_instance_cut_over_meanwhile_is_not_started_again(target: RunningTarget,
                                                             tmp_path: Path) -> None:
    # An upgrade during a kill's window put version B in the instance's place: the kill's end
    # must neither start the old version nor a second copy of the new one.
    spec = Target(command=[sys.executable, "-m", "http.server", "{target.port}",
                           "--bind", "127.0.0.1"],
                  health="http://127.0.0.1:{target.port}/", ready_timeout=20)
    version_b = RunningTarget(spec, AddressBook({"target.port": str(free_port())}),
                              tmp_path / "b.log")
    try:
        now = {"target": target}
        injector = ProcessInjector(lambda link: now[link])
        injector.apply(0, step("process.kill"))
        now["target"] = version_b
        b_pid = version_b.process.pid
        injector.revert(0, step("process.kill"))
        assert target.process.returncode is not None  # the old version stays down
        assert (version_b.process.pid, version_b.process.returncode) == (b_pid, None)
    finally:
        version_b.stop()


def test_an_instance_running_again_already_is_not_started_twice(target: RunningTarget) -> None:
    injector = ProcessInjector(lambda link: target)
    injector.apply(0, step("process.kill"))
    target.start()  # someone brought it back first (a rollback, an operator)
    pid = target.process.pid
    injector.revert(0, step("process.kill"))
    assert (target.process.pid, target.process.returncode) == (pid, None)
