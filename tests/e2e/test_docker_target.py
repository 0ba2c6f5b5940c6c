"""A notifier shipped as a container image is a target: the reference notifier's image, on a real
Docker engine, is killed, frozen and restarted mid-run and still delivers every reminder once;
the run leaves no container behind, and removes the one a harness that died had left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from harness.container import HOST_LABEL, PID_LABEL, RUN_LABEL
from harness.journal import ComponentReady, FaultApplied, FaultMeasured, LoadStarted, read_journal
from tests.docker_engine import engine, notifier_image
from tests.e2e.conftest import ROOT, finish, start, wait_for

pytestmark = pytest.mark.e2e


def test_the_reference_notifier_in_a_container_survives_kill_pause_and_restart(
        tmp_path: Path) -> None:
    client, image = engine(), notifier_image()
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = client.containers.run(image, ["sleep", "600"], detach=True, network_mode="host",
                                  labels={RUN_LABEL: str(tmp_path / "killed-run"),
                                          PID_LABEL: str(gone.pid),
                                          HOST_LABEL: socket.gethostname()})
    out = tmp_path / "runs"
    try:
        run = finish(start("run", ROOT / "scenarios" / "notifier-crash.yaml", "--out", out,
                           "--set", f"target.image={image}"), out, timeout=300)
    finally:
        with pytest.raises(docker.errors.NotFound):  # the run's clean-up removed it first
            stale.remove(force=True)
    summary = f"exit {run.code}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    card = run.scorecard()
    assert (run.code, card["verdict"]) == (0, "passed"), summary
    assert card["owed"] >= 100 and card["outcomes"]["missed"] == 0 and card["duplicates"] == 0

    journal = run.journal()
    faults = {applied.step: applied.fault for applied in journal.of(FaultApplied)}
    measured = {faults[m.step]: m for m in journal.of(FaultMeasured)}
    for fault, verb in (("process.kill", "docker kill"), ("process.pause", "docker pause"),
                        ("process.restart", "docker restart"), ("process.stop", "docker stop")):
        assert measured[fault].affected == 1, measured[fault]
        assert measured[fault].detail.startswith(f"{verb} to container "), measured[fault]
    [ready] = [c for c in journal.of(ComponentReady) if c.component == "target"]
    assert ready.version == client.images.get(image).short_id

    assert run.run_dir is not None
    log = (run.run_dir / "logs" / "target.log").read_text(encoding="utf-8")
    # Started, started afresh after the kill, restarted, started after the maintenance
    # window: each one's output is in the log.
    assert log.count("listening on 127.0.0.1:") == 4, log[-3000:]
    assert f"removed container {stale.name} (harness pid {gone.pid}" in log
    assert client.containers.list(all=True, filters={
        "label": f"{RUN_LABEL}={run.run_dir}"}) == []


def _labelled(client: Any, run_dir: Path) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_dir}"}))


def _started(out: Path, image: str, event: type) -> tuple[subprocess.Popen[str], Path]:
    """A run of a short scenario (the target paused from 2 s to 22 s), once `event` is in its
    journal."""
    process = start("run", ROOT / "scenarios" / "notifier-crash.yaml", "--out", out,
                    "--set", f"target.image={image}", "--set", "duration=30s", "--set",
                    "timeline=[{at: 2s, for: 20s, fault: process.pause, link: target}]")

    def journaled() -> bool:
        journals = list(out.glob("*/journal"))
        return bool(journals) and bool(read_journal(journals[0]).of(event))

    wait_for(journaled, 60, f"{event.__name__} in the journal")
    [run_dir] = out.iterdir()
    return process, run_dir


def _watchdog_of(run_dir: Path) -> int:
    """The pid of the run's watchdog (its command line names the run's lock)."""
    lock = str(run_dir / "run.lock").encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"harness.watchdog" in argv and lock in argv:
                return int(entry.name)
    raise AssertionError(f"no watchdog holds {lock!r}")


def test_a_dead_harness_leaves_its_container_to_the_next_run_which_sigterm_cleans_up(
        tmp_path: Path) -> None:
    client, image = engine(), notifier_image()
    # A harness killed outright (SIGKILL) with its watchdog (a whole process tree killed at
    # once) cannot clean up: its container stays behind.
    killed, killed_dir = _started(tmp_path / "killed", image, LoadStarted)
    os.kill(_watchdog_of(killed_dir), signal.SIGKILL)
    killed.kill()
    killed.communicate(timeout=10)
    journal = read_journal(killed_dir / "journal")
    for pid in [c.pid for c in journal.of(ComponentReady) if c.component != "target"] + [
            load.pid for load in journal.of(LoadStarted)]:
        if pid is not None:  # its other children, in sessions of their own, go too
            os.killpg(pid, signal.SIGKILL)
    [left] = _labelled(client, killed_dir)
    assert left.labels[PID_LABEL] == str(killed.pid)

    # The next run removes it as it starts; SIGTERM while its own container is paused
    # removes that one too.
    running, run_dir = _started(tmp_path / "next", image, FaultApplied)
    assert _labelled(client, killed_dir) == []
    assert [c.status for c in _labelled(client, run_dir)] == ["paused"]
    running.send_signal(signal.SIGTERM)
    done = finish(running, tmp_path / "next", timeout=60)
    assert done.code == 2 and "interrupted" in done.stderr, done.stderr
    assert _labelled(client, run_dir) == []
    log = (run_dir / "logs" / "target.log").read_text(encoding="utf-8")
    assert f"removed container {left.name} (harness pid {killed.pid}" in log
