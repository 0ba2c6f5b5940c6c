"""The container backend on a real Docker engine: ready with its environment, command and run
folder; its output in the log; faults measured as for a process; nothing left behind, even by a
harness that died."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from harness.container import (
    HOST_LABEL,
    PID_LABEL,
    RUN_LABEL,
    ContainerTarget,
    connect,
    remove_orphans,
    remove_run_containers,
)
from harness.errors import StartupError
from harness.instances import Instances
from harness.processes import free_port, poll_until
from harness.scenario import Step, Target
from harness.target import AddressBook
from harness.timeline import ProcessInjector
from tests.docker_engine import engine, notifier_image

SERVE = "echo serving {run.seed} as $(id -u) > {run.dir}/seen && " \
        "exec python -m http.server {target.port} --bind 127.0.0.1"


@pytest.fixture(scope="module")
def image() -> str:
    return notifier_image()


@pytest.fixture
def client() -> Any:
    return engine()


@pytest.fixture
def book(tmp_path: Path) -> AddressBook:
    return AddressBook({"target.port": str(free_port()), "run.dir": str(tmp_path),
                        "run.seed": "42"})


def spec(image: str, command: list[str], **more: Any) -> Target:
    return Target(image=image, command=command, health="http://127.0.0.1:{target.port}/",
                  ready_timeout=more.pop("ready_timeout", 20), **more)


def labelled(client: Any, run_dir: Path) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_dir}"}))


def answers(book: AddressBook) -> bool:
    try:
        return httpx.get(book.render("http://127.0.0.1:{target.port}/"), timeout=1).is_success
    except httpx.HTTPError:
        return False


@pytest.fixture
def target(image: str, book: AddressBook, tmp_path: Path) -> Iterator[ContainerTarget]:
    running = ContainerTarget(spec(image, ["sh", "-c", SERVE]), book,
                              tmp_path / "logs" / "target.log", tmp_path)
    yield running
    running.stop()


def step(fault: str, link: str = "target") -> Step:
    return Step.model_validate({"at": 0, "for": 1, "fault": fault, "link": link})


def test_a_socket_no_engine_listens_on_is_a_startup_error_and_leaves_no_socket_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
        bound.bind(str(path))  # not listening: a connection is refused, as by a dead engine's
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                with pytest.raises(StartupError, match=f"no Docker engine answers at unix://{path}"):
                    connect()
            assert remove_run_containers(str(tmp_path)) == []
            gc.collect()
    assert [str(warning.message) for warning in caught
            if issubclass(warning.category, ResourceWarning)] == []


@pytest.mark.parametrize(("given", "error"), [
    ({}, "give a command to run, or an image to run as a container"),
    ({"command": ["x"], "user": "1000"}, "user is for an image's container"),
    ({"image": "x:1", "cwd": "/app"}, "cwd is for a command"),
])
def test_a_target_is_a_command_or_an_image(given: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        Target.model_validate({"health": "tcp://127.0.0.1:1", **given})
    assert Target(image="x:1", health="tcp://127.0.0.1:1").command is None  # the image's own


def test_a_container_serves_on_the_host_network_with_its_placeholders_and_run_folder(
        image: str, client: Any, book: AddressBook, tmp_path: Path) -> None:
    target = ContainerTarget(
        spec(image, ["sh", "-c", "echo $GREETING; " + SERVE], env={"GREETING": "hi {run.seed}"}),
        book, tmp_path / "logs" / "target.log", tmp_path)
    try:
        assert answers(book)  # on 127.0.0.1 of the host: host networking
        # The run folder is mounted at its own path.
        assert (tmp_path / "seen").read_text() == "serving 42 as 0\n"
        [container] = labelled(client, tmp_path)
        assert container.labels[PID_LABEL] == str(os.getpid())
        assert container.labels[HOST_LABEL] == socket.gethostname()
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert target.version == client.images.get(image).short_id
        log = tmp_path / "logs" / "target.log"
        assert poll_until(lambda: "GET / " in log.read_text() or None, timeout=10)
        assert "hi 42\n" in log.read_text()
    finally:
        target.stop()
    assert labelled(client, tmp_path) == []


def test_a_container_runs_as_the_user_it_is_given(
        image: str, book: AddressBook, tmp_path: Path) -> None:
    serve = "id -u; exec python -m http.server {target.port} --bind 127.0.0.1"
    target = ContainerTarget(spec(image, ["sh", "-c", serve], user="1234:1234"), book,
                             tmp_path / "target.log", tmp_path)
    target.stop()
    assert "\n1234\n" in (tmp_path / "target.log").read_text()


def test_a_container_that_exits_early_fails_with_its_output_and_is_removed(
        image: str, client: Any, book: AddressBook, tmp_path: Path) -> None:
    with pytest.raises(StartupError) as caught:
        ContainerTarget(spec(image, ["sh", "-c", "echo config missing: LEDGER_URL; exit 3"]),
                        book, tmp_path / "target.log", tmp_path)
    assert "container exited with code 3 before it was ready" in str(caught.value)
    assert "config missing: LEDGER_URL" in caught.value.log_tail
    assert labelled(client, tmp_path) == []


def test_a_container_that_never_gets_ready_times_out_and_is_removed(
        image: str, client: Any, book: AddressBook, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"did not answer within 1s"):
        ContainerTarget(spec(image, ["sleep", "60"], ready_timeout=1), book,
                        tmp_path / "target.log", tmp_path)
    assert labelled(client, tmp_path) == []


def test_an_image_the_engine_lacks_is_named_and_never_pulled(
        client: Any, book: AddressBook, tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"image 'notifychaos-test/absent:0' is not on the "
                                           r"Docker engine \(notifychaos never pulls one\)"):
        ContainerTarget(spec("notifychaos-test/absent:0", ["true"]), book,
                        tmp_path / "target.log", tmp_path)


def logged(run_dir: Path, text: str, times: int) -> bool:
    """Whether the target's log shows `text` `times` times within 10 s."""
    log = run_dir / "logs" / "target.log"
    return poll_until(lambda: log.read_text().count(text) >= times or None, timeout=10) is True


def test_a_kill_ends_the_container_and_its_revert_starts_a_fresh_one(
        target: ContainerTarget, image: str, client: Any, book: AddressBook,
        tmp_path: Path) -> None:
    injector = ProcessInjector(lambda link: target)
    before = target.current()
    [first] = labelled(client, tmp_path)
    measured = injector.apply(3, step("process.kill"))
    assert (measured.step, measured.probes, measured.affected) == (3, 1, 1)
    assert measured.detail == f"docker kill to {before.name}"
    assert before.name == f"container {first.short_id} (pid {before.pid})"
    assert labelled(client, tmp_path) == [] and not answers(book)
    injector.revert(3, step("process.kill"))
    [second] = labelled(client, tmp_path)
    assert second.id != first.id and answers(book)
    # Both containers' output is in the log (copied as it comes, so wait for it).
    assert logged(tmp_path, f" from {image}\n", 2)


def test_a_pause_freezes_the_container_until_its_revert(
        target: ContainerTarget, client: Any, book: AddressBook, tmp_path: Path) -> None:
    injector = ProcessInjector(lambda link: target)
    measured = injector.apply(0, step("process.pause"))
    assert measured.affected == 1 and measured.detail.startswith("docker pause to container ")
    [container] = labelled(client, tmp_path)
    assert container.status == "paused" and not answers(book)
    injector.revert(0, step("process.pause"))
    assert answers(book)


def test_a_restart_names_the_new_process_and_the_log_keeps_both(
        target: ContainerTarget, tmp_path: Path) -> None:
    before = target.current()
    restarted = ProcessInjector(lambda link: target).apply(1, step("process.restart"))
    after = target.current()
    assert after.pid != before.pid and after.exit_code is None
    assert restarted.detail == f"docker restart to {before.name}, started again as {after.name}"
    seen = (tmp_path / "seen").read_text()
    assert seen == "serving 42 as 0\n"  # written again by the second incarnation
    assert logged(tmp_path, "GET / ", 2)


def test_a_fault_on_a_container_already_gone_touches_nothing(
        target: ContainerTarget, client: Any, tmp_path: Path) -> None:
    [container] = labelled(client, tmp_path)
    container.kill()  # the target died on its own before the step
    container.wait(timeout=10)
    measured = ProcessInjector(lambda link: target).apply(2, step("process.pause"))
    assert (measured.probes, measured.affected) == (1, 0)
    assert measured.detail.endswith(", which had already ended (exit code 137)")


def test_a_paused_container_is_still_removed_at_the_end(
        image: str, client: Any, book: AddressBook, tmp_path: Path) -> None:
    target = ContainerTarget(spec(image, ["sh", "-c", SERVE]), book, tmp_path / "t.log", tmp_path)
    target.pause()
    target.stop()
    assert labelled(client, tmp_path) == []


def test_containers_of_a_harness_that_died_are_removed_and_others_kept(
        image: str, client: Any, tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()

    def leave(pid: int, run: str) -> Any:
        return client.containers.run(image, ["sleep", "300"], detach=True, network_mode="host",
                                     labels={RUN_LABEL: str(tmp_path / run), HOST_LABEL: host,
                                             PID_LABEL: str(pid)})

    orphan, alive = leave(dead.pid, "dead"), leave(os.getpid(), "alive")
    try:
        removed = remove_orphans(client)
        assert removed == [f"{orphan.name} (harness pid {dead.pid}, run {tmp_path / 'dead'})"]
        assert labelled(client, tmp_path / "dead") == []
        assert [c.id for c in labelled(client, tmp_path / "alive")] == [alive.id]
    finally:
        alive.remove(force=True)


def test_a_stop_waits_for_a_start_under_way_and_removes_what_it_made(
        image: str, client: Any, book: AddressBook, tmp_path: Path) -> None:
    slow = "sleep 1; exec python -m http.server {target.port} --bind 127.0.0.1"
    target = ContainerTarget(spec(image, ["sh", "-c", slow]), book, tmp_path / "t.log", tmp_path)
    [first] = labelled(client, tmp_path)
    target.kill()
    restarting = threading.Thread(target=target.start)  # as the timeline reverts a kill
    restarting.start()
    assert poll_until(lambda: [c for c in labelled(client, tmp_path) if c.id != first.id] or None,
                      timeout=10)
    target.stop()  # while the fresh container is not ready yet
    restarting.join(timeout=30)
    assert labelled(client, tmp_path) == []
    with pytest.raises(StartupError, match="the run is ending"):
        target.start()


def test_a_dead_runs_containers_are_removed_by_its_folder_and_no_one_elses(
        image: str, client: Any, tmp_path: Path) -> None:
    def leave(run: str) -> Any:
        return client.containers.run(image, ["sleep", "300"], detach=True, network_mode="host",
                                     labels={RUN_LABEL: str(tmp_path / run)})

    dead, other = leave("dead"), leave("other")
    try:
        assert remove_run_containers(str(tmp_path / "dead")) == [dead.name]
        assert labelled(client, tmp_path / "dead") == []
        assert [c.id for c in labelled(client, tmp_path / "other")] == [other.id]
    finally:
        other.remove(force=True)


def test_two_instances_of_one_image_run_apart_and_one_stops_cleanly_for_a_while(
        image: str, client: Any, tmp_path: Path) -> None:
    pair = spec(image, ["sh", "-c", "exec python -m http.server {target.port} --bind 127.0.0.1"],
                instances=["active", "standby"], stop_grace=2)
    book = AddressBook({"run.dir": str(tmp_path)})
    with contextlib.ExitStack() as teardown:
        instances = Instances(pair, {"target.active": 0, "target.standby": 1}, book,
                              tmp_path / "logs", tmp_path, teardown)
        names = sorted(container.name for container in labelled(client, tmp_path))
        assert len(names) == 2 and names[0].endswith("-active-1") \
            and names[1].endswith("-standby-1")
        assert all(answers(each) for each in instances.books)
        injector = ProcessInjector(instances.for_link)
        before = instances.backend(1).current()
        measured = injector.apply(0, step("process.stop", "target.standby"))
        assert measured.detail == f"docker stop to {before.name} (target.standby)"
        assert not answers(instances.books[1]) and answers(instances.books[0])
        assert [c.name for c in labelled(client, tmp_path)] == [names[0]]
        injector.revert(0, step("process.stop", "target.standby"))
        assert answers(instances.books[1])
        # A fresh container: the standby's second start.
        assert sorted(c.name.rsplit("-", 2)[-2:] for c in labelled(client, tmp_path)) == [
            ["active", "1"], ["standby", "2"]]
    assert labelled(client, tmp_path) == []
