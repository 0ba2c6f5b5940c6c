"""A target as several instances, on real processes: started in order on ports and logs of their
own, faulted one at a time by link, stopped cleanly and started again, and always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness import runlock
from harness.errors import StartupError
from harness.instances import Instances, instance_values
from harness.journal import ComponentReady
from harness.processes import free_port, poll_until
from harness.scenario import Step, Target
from harness.target import AddressBook, RunningTarget
from harness.timeline import ProcessInjector

# An instance: notes when it started, when it listened and any SIGTERM in its folder, answers
# /healthz with its name, and exits with code 3 at once when it is the instance told to fail;
# it waits SLOW seconds before listening (a slow start).
SERVE = """
import http.server, os, signal, sys, time
from pathlib import Path
name, port, notes, failing = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
def note(what):
    with (notes / name).open("a") as out:
        out.write(f"{what} {os.getpid()} {time.time()!r}\\n")
note("started")
time.sleep(float(os.environ.get("SLOW", "0")))
if name == failing:
    print(f"instance {name}: cannot start", flush=True)
    sys.exit(3)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(name.encode())
server = http.server.HTTPServer(("127.0.0.1", port), Health)
note("listening")
def stop(signum, frame):
    note("sigterm")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print(f"instance {name} on port {port}", flush=True)
server.serve_forever()
"""


def spec(tmp_path: Path, failing: str = "none", **fields: object) -> Target:
    script = tmp_path / "serve.py"
    script.write_text(SERVE, encoding="utf-8")
    (tmp_path / "notes").mkdir(exist_ok=True)
    return Target.model_validate({
        "command": [sys.executable, str(script), "{target.instance}", "{target.port}",
                    str(tmp_path / "notes"), failing],
        "health": "http://{target.host}:{target.port}/healthz", "ready_timeout": 20,
        **fields})


def notes(tmp_path: Path, name: str) -> list[tuple[str, int, float]]:
    """What instance `name` noted: (what, pid, when), in order."""
    path = tmp_path / "notes" / name
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [(what, int(pid), float(when)) for what, pid, when in map(str.split, lines)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def links(target: Target) -> dict[str, int]:
    names = target.instance_names
    found = {f"target[{index}]": index for index in range(len(names))}
    if target.instances:
        found |= {f"target.{name}": index for index, name in enumerate(names)}
    return {"target": 0, **found} if len(names) == 1 else found


def step(fault: str, link: str) -> Step:
    return Step.model_validate({"at": 0, "for": 1, "fault": fault, "link": link})


class Started:
    """Instances started in `tmp_path`, with the `component.ready` each journaled."""

    def __init__(self, tmp_path: Path, target: Target, teardown: contextlib.ExitStack,
                 book: AddressBook | None = None) -> None:
        self.ready: list[ComponentReady] = []
        self.logs = tmp_path / "logs"
        self.instances = Instances(target, links(target), book or AddressBook({}), self.logs,
                                   tmp_path, teardown, on_ready=self.ready.append)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Started]:
    with contextlib.ExitStack() as teardown:
        yield Started(tmp_path, spec(tmp_path, instances=["active", "standby"]), teardown)


def test_instances_start_in_order_each_on_its_own_port_with_its_own_log(
        tmp_path: Path, pair: Started) -> None:
    instances = pair.instances
    assert instances.names == ("active", "standby")
    assert len(instances) == 2
    ports = [int(book.values["target.port"]) for book in instances.books]
    assert ports[0] != ports[1]
    for index, (name, port) in enumerate(zip(instances.names, ports, strict=True)):
        assert instances.books[index].values["target.instance"] == name
        assert instances.books[index].values["target.index"] == str(index)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == name
        assert f"instance {name} on port {port}" in \
            (pair.logs / f"target-{name}.log").read_text(encoding="utf-8")
    # The standby started only once the active listened.
    active_listening = notes(tmp_path, "active")[1]
    standby_started = notes(tmp_path, "standby")[0]
    assert active_listening[0] == "listening" and standby_started[0] == "started"
    assert standby_started[2] >= active_listening[2]
    assert [(r.component, r.pid, r.address) for r in pair.ready] == [
        ("target.active", instances.backend(0).current().pid,
         f"http://127.0.0.1:{ports[0]}/healthz"),
        ("target.standby", instances.backend(1).current().pid,
         f"http://127.0.0.1:{ports[1]}/healthz")]
    assert instances.for_link("target.standby") is instances.backend(1)
    assert instances.for_link("target[0]") is instances.backend(0)


def test_a_lone_instance_keeps_the_books_port_its_log_and_its_name(tmp_path: Path) -> None:
    port = free_port()
    book = AddressBook({"ledger.url": "http://127.0.0.1:9", **instance_values(0, "0", port)})
    with contextlib.ExitStack() as teardown:
        started = Started(tmp_path, spec(tmp_path), teardown, book)
        [ready] = started.ready
        assert (ready.component, ready.address) == ("target", f"http://127.0.0.1:{port}/healthz")
        assert started.instances.books[0].values["ledger.url"] == "http://127.0.0.1:9"
        assert started.instances.for_link("target") is started.instances.backend(0)
        assert (started.logs / "target.log").exists()
    assert not alive(ready.pid or 0)


def test_a_kill_on_one_instance_kills_only_it_and_names_it(pair: Started) -> None:
    instances = pair.instances
    injector = ProcessInjector(instances.for_link)
    active, standby = (instances.backend(i).current().pid for i in (0, 1))
    measured = injector.apply(3, step("process.kill", "target[1]"))
    assert measured.detail == f"SIGKILL to pid {standby} (target[1])"
    standby_process = instances.backend(1)
    assert isinstance(standby_process, RunningTarget)
    assert standby_process.process.wait(10) == -signal.SIGKILL
    assert instances.backend(0).current().exit_code is None and alive(active or 0)
    injector.revert(3, step("process.kill", "target[1]"))
    again = instances.backend(1).current()
    assert again.exit_code is None and again.pid != standby


def test_a_stop_sends_sigterm_and_the_end_of_the_step_starts_it_again(
        tmp_path: Path, pair: Started) -> None:
    instances = pair.instances
    injector = ProcessInjector(instances.for_link)
    pid = instances.backend(0).current().pid
    measured = injector.apply(1, step("process.stop", "target.active"))
    assert (measured.affected, measured.detail) == (1, f"SIGTERM to pid {pid} (target.active)")
    assert instances.backend(0).current().exit_code == 0  # it heard SIGTERM and exited
    assert ("sigterm", pid) in [(what, who) for what, who, _ in notes(tmp_path, "active")]
    injector.revert(1, step("process.stop", "target.active"))
    again = instances.backend(0).current()
    assert again.exit_code is None and again.pid != pid
    port = instances.books[0].values["target.port"]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "active"


def test_once_the_run_ends_an_undone_kill_starts_nothing(pair: Started) -> None:
    instances = pair.instances
    injector = ProcessInjector(instances.for_link)
    injector.apply(0, step("process.kill", "target.standby"))
    killed = instances.backend(1).current()
    injector.end()
    injector.revert(0, step("process.kill", "target.standby"))
    assert instances.backend(1).current() == killed  # not started again just to be stopped


def test_stop_all_and_start_all_bring_every_instance_back_on_the_same_ports(
        tmp_path: Path, pair: Started) -> None:
    instances = pair.instances
    before = [instances.backend(i).current().pid for i in (0, 1)]
    instances.stop_all()
    # Last started, first stopped: the standby heard SIGTERM before the active.
    terms = sorted((when, name) for name in ("active", "standby")
                   for what, _, when in notes(tmp_path, name) if what == "sigterm")
    assert [name for _, name in terms] == ["standby", "active"]
    upgraded = spec(tmp_path, instances=["active", "standby"], env={"VERSION": "b"})
    instances.start_all(upgraded)
    assert instances.spec is upgraded
    after = [instances.backend(i).current().pid for i in (0, 1)]
    assert set(after).isdisjoint(before)
    for index, name in enumerate(instances.names):
        port = instances.books[index].values["target.port"]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == name
        log = (pair.logs / f"target-{name}.log").read_text(encoding="utf-8")
        assert log.count(f"instance {name} on port {port}") == 2  # appended
    assert [r.component for r in pair.ready] == ["target.active", "target.standby"] * 2


def test_everything_started_is_stopped_and_the_run_lock_knows_each_group(
        tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    lock = runlock.RunLock(tmp_path, "nc-test0001")
    try:
        with runlock.using(lock), contextlib.ExitStack() as teardown:
            started = Started(tmp_path, spec(tmp_path, replicas=3), teardown)
            instances = started.instances
            # A start from another thread (the timeline's) belongs to the run too.
            injector = ProcessInjector(instances.for_link)
            with runlock.using(None):
                injector.apply(0, step("process.kill", "target[2]"))
                injector.revert(0, step("process.kill", "target[2]"))
            pids = [r.pid for r in started.ready] + [instances.backend(2).current().pid]
            groups = {(group.name, group.pgid) for group in lock.state.groups}
            assert groups == {("target[0]", pids[0]), ("target[1]", pids[1]),
                              ("target[2]", pids[2]), ("target[2]", pids[3])}
            assert [r.component for r in started.ready] == ["target[0]", "target[1]",
                                                            "target[2]"]
            assert (tmp_path / "logs" / "target-2.log").exists()
        assert not [pid for pid in pids if pid is not None and alive(pid)]
    finally:
        released = lock.release()
    assert not released.remaining


def test_an_instance_that_never_gets_ready_stops_those_before_it(tmp_path: Path) -> None:
    with pytest.raises(StartupError) as caught, contextlib.ExitStack() as teardown:
        Started(tmp_path, spec(tmp_path, failing="1", replicas=2), teardown)
    assert str(caught.value).startswith("target[1]: exited with code 3")
    assert "instance 1: cannot start" in caught.value.log_tail
    first = notes(tmp_path, "0")
    assert [what for what, _, _ in first] == ["started", "listening", "sigterm"]
    assert not alive(first[0][1])  # the teardown stopped (and reaped) instance 0


def test_a_teardown_waits_for_a_start_under_way_and_stops_what_it_made(
        tmp_path: Path) -> None:
    pair = spec(tmp_path, replicas=2)
    with contextlib.ExitStack() as teardown:
        instances = Started(tmp_path, pair, teardown).instances
        instances.stop_all()
        slow = pair.model_copy(update={"env": {"SLOW": "1"}})
        upgrading = threading.Thread(target=instances.start_all, args=(slow,))  # the timeline's
        upgrading.start()
        assert poll_until(lambda: len(notes(tmp_path, "0")) > 3 or None, timeout=20)
    # The teardown waited for both instances of the new start, then stopped them.
    upgrading.join(timeout=30)
    assert not upgrading.is_alive()
    pids = {pid for name in ("0", "1") for _, pid, _ in notes(tmp_path, name)}
    assert len(pids) == 4 and not [pid for pid in pids if alive(pid)]
    assert [what for what, _, _ in notes(tmp_path, "1")][-3:] == ["started", "listening",
                                                                  "sigterm"]
    with pytest.raises(StartupError, match="the run is ending: no instance is started"):
        instances.start_all(pair)
