"""The notifier under test as a Docker container: on the host's network, logged into the run
folder, faulted as a process is, and always removed (a dead harness's, by the next run)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import requests

from harness.errors import FaultInjectionError, NotifyChaosError, StartupError
from harness.processes import poll_until
from harness.scenario import Target
from harness.target import AddressBook, Incarnation, healthy

RUN_LABEL = "notifychaos.run"
"""Label of every target container: the run folder it belongs to."""
PID_LABEL = "notifychaos.pid"
"""Label of every target container: the pid of the harness that started it."""
HOST_LABEL = "notifychaos.host"
"""Label of every target container: the host of that harness (pids mean nothing elsewhere)."""

TIMEOUT = 30.0
"""Seconds any one call to the engine may take."""

DEFAULT_HOST = "unix:///var/run/docker.sock"
"""Where the engine listens when DOCKER_HOST does not say."""
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)
"""What a call to the engine raises: the engine's refusals, and its socket's failures."""

_ENDED = ("exited", "dead", "removing")
_VERBS = {"process.pause": "docker pause", "process.kill": "docker kill",
          "process.restart": "docker restart", "process.stop": "docker stop"}
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def _client() -> Any:
    """A client of the engine that DOCKER_HOST names (else the default socket); raises one of
    ENGINE_ERRORS when none listens there."""
    where = os.environ.get("DOCKER_HOST", DEFAULT_HOST)
    if where.startswith("unix://"):
        # docker's unix transport leaves a refused connection's socket open for the garbage
        # collector (an unraisable ResourceWarning wherever it runs next): a refusal is met
        # here first, on a socket closed whatever happens.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(TIMEOUT)
            try:
                probe.connect(where.removeprefix("unix://"))
            except OSError as exc:
                raise docker.errors.DockerException(str(exc)) from None
    return docker.from_env(timeout=TIMEOUT)


def connect() -> Any:
    """A client of the engine that DOCKER_HOST names (else the default socket), which answers."""
    where = os.environ.get("DOCKER_HOST", DEFAULT_HOST)
    client = None
    try:
        client = _client()
        client.ping()
    except ENGINE_ERRORS as exc:
        if client is not None:
            client.close()  # its socket, else left for the garbage collector to find
        raise StartupError("target", f"no Docker engine answers at {where} ({exc}); start one "
                           "(dockerd) or set DOCKER_HOST to where one listens") from None
    return client


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    return True


def remove_orphans(client: Any) -> list[str]:
    """Remove this host's target containers whose harness (their pid label) is no longer
    running, as after a harness that was killed; the names of those removed."""
    found = client.containers.list(all=True, filters={
        "label": [PID_LABEL, f"{HOST_LABEL}={socket.gethostname()}"]})
    removed = []
    for container in found:
        pid = container.labels.get(PID_LABEL, "")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(docker.errors.NotFound):  # another run cleaned it up first
            container.remove(force=True)
        removed.append(f"{container.name} (harness pid {pid}, "
                       f"run {container.labels.get(RUN_LABEL)})")
    return removed


def remove_run_containers(run_dir: str) -> list[str]:
    """Remove every container labelled with the run folder `run_dir` (a dead run's, whatever
    its harness's pid); the names of those removed. An engine that does not answer has none."""
    try:
        client = _client()
    except ENGINE_ERRORS:
        return []
    removed = []
    try:
        for container in client.containers.list(all=True,
                                                filters={"label": f"{RUN_LABEL}={run_dir}"}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
            removed.append(str(container.name))
    except ENGINE_ERRORS:
        pass  # an engine that stopped answering: what it holds cannot be removed now
    finally:
        client.close()
    return removed


def _epoch(stamp: str) -> float:
    """Seconds since the epoch of the engine's RFC 3339 UTC time (nanoseconds, `Z`)."""
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float(f"0.{fraction}")


class ContainerTarget:
    """The container backend: the target's image on the host's network (so all traffic stays on
    127.0.0.1), `{run.dir}` bind-mounted at its own path, labelled with the run folder and this
    harness's pid, its output copied into the run's `logs/target.log` as it comes.

    A kill or a halt ends the container and removes it; the start that follows makes a fresh
    one from the same image, with the same command, environment and port. One operation runs at
    a time, so a stop waits for a start under way in the timeline's thread, and removes what it
    made. Several instances of one image differ by `name` (`target`, `target.standby`), which
    their containers' names carry, and by the port each one's environment gives it.
    """

    def __init__(self, target: Target, book: AddressBook, log_path: Path, run_dir: Path, *,
                 stop_with: contextlib.ExitStack | None = None, name: str = "target") -> None:
        if target.image is None:
            raise StartupError(name, "a container target needs an image")
        self._target, self._image_ref, self._book, self._name = target, target.image, book, name
        self._log_path, self._run_dir = log_path, run_dir
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._labels = {RUN_LABEL: str(run_dir), PID_LABEL: str(os.getpid()),
                        HOST_LABEL: socket.gethostname()}
        self._starts = 0
        self._container: Any = None
        self._last = Incarnation("no container", None, None)
        self._copier: threading.Thread | None = None
        self._lock = threading.RLock()
        self._stopped = False
        self._client = connect()
        try:
            for orphan in remove_orphans(self._client):
                self._note(f"removed container {orphan}, whose harness is no longer running")
            self._image = self._client.images.get(self._image_ref)
        except docker.errors.ImageNotFound:
            self._client.close()
            raise StartupError(name, f"image {self._image_ref!r} is not on the Docker engine "
                               "(notifychaos never pulls one): build, load or pull it first")\
                from None
        except ENGINE_ERRORS as exc:
            self._client.close()
            raise StartupError(name, f"Docker engine: {exc}") from None
        # Registered before the first start waits for health (a signal may come then).
        if stop_with is not None:
            stop_with.callback(self.stop)
        try:
            self.start()
        except BaseException:  # a failed start, or Ctrl-C while it waits for health
            if stop_with is None:  # else the stack stops it, with the client still open
                self.stop()
            raise

    @property
    def version(self) -> str:
        """The id of the image the containers run."""
        return str(self._image.short_id)

    def current(self) -> Incarnation:
        """The container of the latest start, with its main process's pid on this host."""
        with self._lock:
            if self._container is None:
                return self._last
            with self._engine("inspect"):
                self._container.reload()
            state = self._container.attrs["State"]
            pid = int(state["Pid"]) or None
            name = f"container {self._container.short_id}" + (f" (pid {pid})" if pid else "")
            ended = state["Status"] in _ENDED
            return Incarnation(name, pid, int(state["ExitCode"]) if ended else None)

    def verb(self, fault: str) -> str:
        """The engine's operation each process fault is."""
        return _VERBS[fault]

    def pause(self) -> None:
        """Freeze every process of the container (docker pause, the cgroup freezer)."""
        with self._lock, self._engine("pause"):
            if self._status() == "running":
                self._container.pause()

    def resume(self) -> None:
        """Thaw a paused container (docker unpause)."""
        with self._lock, self._engine("unpause"):
            if self._status() == "paused":
                self._container.unpause()

    def kill(self) -> None:
        """SIGKILL the container (docker kill), then remove it once its output is copied."""
        with self._lock:
            if self._container is None:  # already killed, not started again
                return
            with self._engine("kill"):
                if self._status() == "paused":
                    self._container.unpause()  # a frozen process would not die until thawed
                if self._status() not in _ENDED:
                    self._container.kill()
                self._container.wait(timeout=TIMEOUT)
            self._discard()

    def start(self) -> None:
        """Start a fresh container and wait until it is healthy; StartupError (with the tail of
        its output) when it exits first or never answers."""
        with self._lock:
            if self._stopped:
                raise StartupError(self._name, "the run is ending: no container is started")
            self._starts += 1
            # The instance's name keeps two instances' containers apart (a lone one's is the
            # name it always had: no instance part).
            instance = self._name.removeprefix("target").strip(".[]")
            name = _NAME_UNSAFE.sub("-", f"notifychaos-{os.getpid()}-{self._run_dir.name}"
                                         f"{'-' + instance if instance else ''}-{self._starts}")
            options: dict[str, Any] = {}
            if self._target.command is not None:
                options["command"] = [self._book.render(arg) for arg in self._target.command]
            if self._target.user is not None:
                options["user"] = self._target.user
            run_dir = str(self._run_dir)
            try:
                # Under the engine's init (docker run --init), SIGTERM ends a main process that
                # does not handle it, as it ends a process target; as PID 1 it would not.
                self._container = self._client.containers.create(
                    self._image_ref, name=name, labels=self._labels, network_mode="host",
                    init=True, environment={key: self._book.render(value)
                                            for key, value in self._target.env.items()},
                    mounts=[docker.types.Mount(run_dir, run_dir, type="bind")], **options)
                self._note(f"container {name} ({self._container.short_id}) "
                           f"from {self._image_ref}")
                self._container.start()
                self._copy_output(since=None)
                self._await_health()
            except ENGINE_ERRORS as exc:
                self._discard()
                raise StartupError(self._name, f"container {name}: {exc}") from None
            except BaseException:  # not ready, or Ctrl-C while waiting: leave nothing behind
                self._discard()
                raise

    def restart(self) -> None:
        """A clean restart (docker restart: SIGTERM, SIGKILL after the target's stop_grace,
        start again), then wait until healthy; a container that had ended is replaced by a
        fresh one."""
        with self._lock:
            with self._engine("inspect"):
                ended = self._status() in _ENDED
            if ended:
                self._discard()
                self.start()
                return
            with self._engine("restart"):
                if self._status() == "paused":
                    self._container.unpause()  # so that it hears SIGTERM
                self._container.restart(timeout=math.ceil(self._target.stop_grace))
                self._container.reload()
                # The copy of the last incarnation's output ended as it stopped.
                self._join_copier()
                self._copy_output(since=_epoch(self._container.attrs["State"]["FinishedAt"]))
            self._await_health()

    def halt(self) -> None:
        """docker stop: SIGTERM, SIGKILL after the target's stop_grace (a paused container is
        thawed first so that it can hear it); then remove it, as a kill does."""
        with self._lock:
            if self._container is None:  # already ended, not started again
                return
            with self._engine("stop"):
                self._stop_container()
            self._discard()

    def stop(self) -> None:
        """Stop the container as `halt` does and remove it, for good (no start after it); an
        engine that cannot remove it is an error naming it."""
        with self._lock:
            self._stopped = True
            try:
                if self._container is not None:
                    with contextlib.suppress(*ENGINE_ERRORS):
                        self._stop_container()
                    self._discard()
            finally:
                self._client.close()

    def _stop_container(self) -> None:
        if self._status() == "paused":
            self._container.unpause()
        if self._status() not in _ENDED:
            # The engine takes whole seconds; a grace is never cut short.
            self._container.stop(timeout=math.ceil(self._target.stop_grace))

    def _status(self) -> str:
        if self._container is None:
            return "exited"
        self._container.reload()
        return str(self._container.status)

    def _await_health(self) -> None:
        health = self._book.render(self._target.health)

        def probe() -> bool | None:
            if (status := self._status()) in _ENDED:
                code = self._container.attrs["State"]["ExitCode"]
                raise StartupError(self._name, f"container {status} with code {code} before it "
                                   "was ready", self._tail())
            return healthy(health)

        try:
            ready = poll_until(probe, timeout=self._target.ready_timeout, interval=0.2)
        except ENGINE_ERRORS as exc:
            raise StartupError(self._name, f"Docker engine, while waiting for {health}: {exc}")\
                from None
        if ready is None:
            raise StartupError(self._name, f"{health} did not answer within "
                               f"{self._target.ready_timeout:g}s", self._tail())

    def _copy_output(self, since: float | None) -> None:
        """Copy the container's output (since that time) into the log until it stops."""
        container = self._container

        def copy() -> None:
            with self._log_path.open("ab") as log:
                try:
                    for chunk in container.logs(stream=True, follow=True, since=since):
                        log.write(chunk)
                        log.flush()
                except ENGINE_ERRORS as exc:
                    log.write(f"notifychaos: the container's output stopped: {exc}\n".encode())

        self._copier = threading.Thread(target=copy, name="target-output", daemon=True)
        self._copier.start()

    def _join_copier(self) -> None:
        if self._copier is not None:
            self._copier.join(timeout=TIMEOUT)
            self._copier = None

    def _tail(self, lines: int = 20) -> str:
        with contextlib.suppress(*ENGINE_ERRORS):
            return bytes(self._container.logs(tail=lines)).decode("utf-8", "replace").rstrip()
        return ""

    def _discard(self) -> None:
        """Remove the current container (killing it if it runs), keeping how it ended."""
        container, self._container = self._container, None
        if container is None:
            return
        with contextlib.suppress(*ENGINE_ERRORS):
            container.reload()
            state = container.attrs["State"]
            self._last = Incarnation(f"container {container.short_id}", None,
                                     int(state["ExitCode"]) if state["Status"] in _ENDED
                                     else None)
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except ENGINE_ERRORS as exc:
            raise NotifyChaosError(f"target: container {container.name} could not be removed "
                                   f"({exc}); remove it with: docker rm -f {container.name}")\
                from None
        finally:
            self._join_copier()

    @contextlib.contextmanager
    def _engine(self, operation: str) -> Iterator[None]:
        """An engine failure during a fault, as a FaultInjectionError."""
        try:
            yield
        except ENGINE_ERRORS as exc:
            raise FaultInjectionError(f"docker {operation}: {exc}") from None

    def _note(self, text: str) -> None:
        with self._log_path.open("a", encoding="utf-8") as log:
            log.write(f"notifychaos: {text}\n")
