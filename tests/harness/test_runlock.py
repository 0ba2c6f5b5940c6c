"""The run lock and its watchdog: a harness killed outright leaves nothing, a dead run is found
and cleaned by the next, a live one is left alone, and a sealed journal is read no further."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import runlock
from harness.journal import (
    KILLED,
    ComponentReady,
    JournalWriter,
    RunEnded,
    RunStarted,
    read_journal,
    seal_journal,
)
from harness.processes import ManagedProcess
from tests.harness.journals import SCENARIO

ROOT = Path(__file__).resolve().parents[2]
# A child that forks a grandchild (same group, same environment), as a notifier may.
FORKER = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
          "'import time; time.sleep(600)']); time.sleep(600)")
# A stand-in harness: takes the lock, starts the forker within the run, journals, then waits.
HARNESS = f"""
import sys, time
from pathlib import Path
from harness import runlock
from harness.journal import ComponentReady, JournalWriter
from harness.processes import ManagedProcess
run_dir = Path(sys.argv[1])
lock = runlock.RunLock(run_dir, sys.argv[2])
journal = JournalWriter(run_dir / "journal", "harness")
with runlock.using(lock):
    child = ManagedProcess("forker", [sys.executable, "-c", {FORKER!r}],
                           log_path=run_dir / "logs" / "forker.log")
journal.write(ComponentReady(component="forker", pid=child.pid))
print("ready", flush=True)
time.sleep(600)
"""


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def tagged(run_id: str) -> list[int]:
    """Live processes whose environment names the run."""
    found = []
    for pid in pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"{runlock.RUN_ENV}={run_id}".encode() in environ.split(b"\0") and state != "Z":
            found.append(pid)
    return found


def pids() -> list[int]:
    with os.scandir("/proc") as entries:
        return [int(entry.name) for entry in entries if entry.name.isdigit()]


def run_folder(tmp_path: Path, name: str = "run") -> Path:
    run_dir = tmp_path / "out" / name
    (run_dir / "logs").mkdir(parents=True)
    return run_dir


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, str]]:
    """A stand-in harness holding a run with a child and a grandchild, once they are up."""
    run_dir, run_id = run_folder(tmp_path), f"nc-test{os.getpid()}"
    process = subprocess.Popen([sys.executable, "-c", HARNESS, str(run_dir), run_id], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    wait_until(lambda: len(tagged(run_id)) == 2, 30, "the child and its grandchild")
    yield process, run_dir, run_id
    process.kill()
    process.wait()
    process.stdout.close()
    for pid in tagged(run_id):
        os.kill(pid, signal.SIGKILL)


def watchdog_of(run_dir: Path) -> int:
    for pid in pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"harness.watchdog\0" + str(run_dir / runlock.LOCK_NAME).encode() in cmdline:
            return pid
    raise AssertionError("no watchdog runs")


def test_a_killed_harness_leaves_nothing_its_watchdog_stops_the_run_and_seals_it(
        harness: tuple[subprocess.Popen[str], Path, str]) -> None:
    process, run_dir, run_id = harness
    assert runlock.read_lock(run_dir / runlock.LOCK_NAME) is not None
    process.kill()
    process.wait()
    wait_until(lambda: not (run_dir / runlock.LOCK_NAME).exists(), 30, "the watchdog")
    assert tagged(run_id) == []
    log = (run_dir / "logs" / "watchdog.log").read_text()
    assert "left 2 processes (forker pid" in log and "its journal sealed" in log
    journal = read_journal(run_dir / "journal")
    [ended] = journal.of(RunEnded)
    assert ended.status == KILLED
    # Ended at the last event's time: the score does not depend on when the run was sealed.
    assert ended.t == journal.of(ComponentReady)[-1].t
    assert (run_dir / "journal" / "seal.json").exists()


def test_the_next_run_cleans_up_a_dead_run_whose_watchdog_died_too(
        harness: tuple[subprocess.Popen[str], Path, str]) -> None:
    process, run_dir, run_id = harness
    os.kill(watchdog_of(run_dir), signal.SIGKILL)
    process.kill()
    process.wait()
    assert len(tagged(run_id)) == 2
    [line] = runlock.recover_dead_runs(run_dir.parent)
    assert line.startswith(f"a dead run ({run_dir}) left 2 processes (forker pid")
    assert line.endswith("0 proxies, 0 containers: stopped, its journal sealed")
    assert tagged(run_id) == []
    assert not (run_dir / runlock.LOCK_NAME).exists()
    assert runlock.recover_dead_runs(run_dir.parent) == []
    assert read_journal(run_dir / "journal").of(RunEnded)[0].status == KILLED


def test_a_live_run_is_left_alone_and_released_it_leaves_no_lock(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path)
    lock = runlock.RunLock(run_dir, "nc-live")
    assert runlock.recover(run_dir) is None
    assert runlock.recover_dead_runs(run_dir.parent) == []
    released = lock.release()
    assert not released.stopped and released.remaining == ()
    assert not (run_dir / runlock.LOCK_NAME).exists()


def test_release_stops_what_the_teardown_missed(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path)
    lock = runlock.RunLock(run_dir, "nc-missed")
    with runlock.using(lock):
        child = ManagedProcess("sleeper", [sys.executable, "-c", FORKER],
                               log_path=run_dir / "logs" / "sleeper.log")
    wait_until(lambda: len(tagged("nc-missed")) == 2, 30, "the child and its grandchild")
    released = lock.release()
    assert released.stopped.processes[0] == f"sleeper pid {child.pid}"
    assert len(released.stopped.processes) == 2 and released.remaining == ()
    assert child.wait(5) == -signal.SIGKILL
    assert tagged("nc-missed") == []


def test_a_process_started_outside_a_run_carries_no_run(tmp_path: Path) -> None:
    child = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                           log_path=tmp_path / "sleeper.log")
    try:
        environ = Path(f"/proc/{child.pid}/environ").read_bytes()
        assert runlock.RUN_ENV.encode() + b"=" not in environ
    finally:
        child.stop(grace=0, signum=signal.SIGKILL)


def test_a_sealed_journal_is_read_no_further(tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    writer = JournalWriter(journal_dir, "mocks")
    writer.write(ComponentReady(component="a"))
    writer.write(ComponentReady(component="b"))
    with (journal_dir / "mocks.jsonl").open("a") as half:
        half.write('{"kind": "component.re')  # a writer killed mid-line
    seal_journal(journal_dir)
    # A late writer: the rest of its line, more events, and a file of its own.
    with (journal_dir / "mocks.jsonl").open("a") as late:
        late.write('ady"}\n')
    writer.write(ComponentReady(component="late"))
    writer.close()
    latecomer = JournalWriter(journal_dir, "latecomer")
    latecomer.write(ComponentReady(component="late"))
    latecomer.close()
    events = read_journal(journal_dir).of(ComponentReady)
    assert [event.component for event in events] == ["a", "b"]


def test_a_run_still_starting_is_not_taken_for_dead(tmp_path: Path) -> None:
    # Its journal is open, its lock not made yet (the lock comes before `run.started`).
    run_dir = run_folder(tmp_path)
    JournalWriter(run_dir / "journal", "harness").close()
    assert runlock.recover(run_dir) is None
    assert not (run_dir / "journal" / "seal.json").exists()


def test_a_run_that_never_ended_without_a_lock_is_sealed_once(tmp_path: Path) -> None:
    run_dir = run_folder(tmp_path)
    writer = JournalWriter(run_dir / "journal", "harness")
    writer.write(RunStarted(scenario=SCENARIO))
    writer.write(ComponentReady(component="a"))
    writer.close()
    assert runlock.recover(run_dir) == (f"a dead run ({run_dir}) was sealed: its journal is "
                                        "read no further")
    assert runlock.recover(run_dir) is None
    [ended] = read_journal(run_dir / "journal").of(RunEnded)
    assert ended.status == KILLED


def test_a_folder_whose_journal_cannot_be_read_is_left_for_scoring_to_refuse(
        tmp_path: Path) -> None:
    # Junk under --out (or given to `report`) is no run of ours: nothing to seal, no traceback.
    run_dir = run_folder(tmp_path)
    (run_dir / "journal").mkdir()
    (run_dir / "journal" / "harness.jsonl").write_text("garbage\n{}\n", encoding="utf-8")
    assert runlock.recover(run_dir) is None
    assert not (run_dir / "journal" / "seal.json").exists()
