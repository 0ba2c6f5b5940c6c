"""The notifier under test: placeholders filled with this run's addresses, started, made ready.

A target runs behind one protocol, `TargetBackend`, so process faults act alike on a process
(`RunningTarget`, here) and on a container (`harness.container.ContainerTarget`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from harness import runlock
from harness.errors import StartupError
from harness.processes import ManagedProcess, poll_until
from harness.scenario import PLACEHOLDER, Target


class Layers(Mapping[str, str]):
    """Placeholder values looked up in each mapping in turn, when they are rendered (a clock's
    `{clock.faketime}` is made at each start): a read-only ChainMap."""

    def __init__(self, *layers: Mapping[str, str]) -> None:
        self._layers = layers

    def __getitem__(self, name: str) -> str:
        for layer in self._layers:
            if name in layer:
                return layer[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for layer in self._layers for name in layer))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class AddressBook:
    """The values of every placeholder of one run (`ledger.url`, `vendors.x.url`, ...)."""

    values: Mapping[str, str]

    def render(self, text: str) -> str:
        """`text` with each `{name}` replaced; `{{` and `}}` become literal braces."""

        def fill(match: re.Match[str]) -> str:
            token, name = match.group(0), match.group(1)
            if name is None:
                return token[0]
            if name not in self.values:
                raise StartupError("target", f"unknown placeholder {{{name}}} in {text!r}")
            return self.values[name]

        return PLACEHOLDER.sub(fill, text)


def healthy(health: str) -> bool | None:
    """True when the health URL answers 2xx (or the tcp:// port accepts); None otherwise."""
    if health.startswith("tcp://"):
        parts = urlsplit(health)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1.0):
                return True
        except OSError:
            return None
    try:
        response = httpx.get(health, timeout=1.0)
    except httpx.HTTPError:
        return None
    return True if response.is_success else None


def start_target(target: Target, book: AddressBook, log_path: Path) -> ManagedProcess:
    """Start the target with its rendered command and environment, and wait until it is healthy."""
    process = spawn_target(target, book, log_path)
    await_target(process, target, book)
    return process


def spawn_target(target: Target, book: AddressBook, log_path: Path,
                 name: str = "target") -> ManagedProcess:
    """Start the target (the instance `name`) with its rendered command and environment, not
    waiting for health."""
    assert target.command is not None, "a target without a command runs as a container"
    argv = [book.render(arg) for arg in target.command]
    return ManagedProcess(name, argv, log_path=log_path, env=command_env(book, target.env),
                          cwd=Path(book.render(target.cwd)))


def command_env(book: AddressBook, env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a command a scenario gives (the target's, a migration's): the
    harness's own with `env` rendered on top."""
    rendered = {**os.environ, **{key: book.render(value) for key, value in env.items()}}
    # `python` in a scenario means the interpreter running the harness.
    rendered["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                        rendered.get("PATH", "")])
    return rendered


def await_target(process: ManagedProcess, target: Target, book: AddressBook) -> None:
    """Wait until the started target is healthy; it is stopped when it is not (or on Ctrl-C)."""
    health = book.render(target.health)
    try:
        ready = poll_until(lambda: healthy(health), timeout=target.ready_timeout,
                           interval=0.2, watch=process)
    except BaseException:  # Ctrl-C while waiting too: the process is in a session of its own
        process.stop()
        raise
    if ready is None:
        process.stop()
        raise StartupError(process.name, f"{health} did not answer within "
                           f"{target.ready_timeout:g}s", process.log_tail())


@dataclass(frozen=True)
class Incarnation:
    """One start of the target, as a fault's measured detail names it."""

    name: str
    """`pid 4242`, or `container 3f2a1b0c9d8e (pid 4242)`."""
    pid: int | None
    """Its process id on this host, when it has one."""
    exit_code: int | None
    """None while it runs (paused too); its exit code once it has ended."""


class TargetBackend(Protocol):
    """The notifier of a run, started and ready, which process faults may pause, kill, start
    again and restart, and which the run stops at its end (on every exit path)."""

    @property
    def version(self) -> str:
        """What exactly runs (a container's image id), or "" when the backend cannot tell."""

    def current(self) -> Incarnation:
        """The incarnation running now, or the last one if it has ended."""

    def verb(self, fault: str) -> str:
        """What a process fault (`process.kill`, ...) does to this backend, as in `SIGKILL`."""

    def pause(self) -> None:
        """Freeze the target: it keeps its sockets open and answers nothing."""

    def resume(self) -> None:
        """Let a paused target run on; a target that is not paused is left as it is."""

    def kill(self) -> None:
        """End the target at once, as a crash or an OOM kill would."""

    def start(self) -> None:
        """Start the target again and wait until it is healthy (StartupError if it is not)."""

    def restart(self) -> None:
        """A clean restart, as a deployment does: SIGTERM, then start again and wait."""

    def halt(self) -> None:
        """A clean stop, as for maintenance or an upgrade: SIGTERM (a paused target is let run
        first so that it hears it), SIGKILL after the target's `stop_grace`; `start` brings
        it back."""

    def stop(self) -> None:
        """End the target for good, a paused one too, leaving nothing behind."""


_SIGNALS = {"process.pause": "SIGSTOP", "process.kill": "SIGKILL", "process.restart": "SIGTERM",
            "process.stop": "SIGTERM"}


class RunningTarget:
    """The process backend: the target's command as a child process in its own group.

    `stop_with` gets the target's stop before the first health check; the run lock in force
    at construction also holds the starts made later from the timeline's thread. `name` is
    the instance's, as errors and the run lock name it (`target`, `target.standby`). Once
    stopped for good, it starts no more: a start from the timeline's thread that comes after
    the teardown's stop would leave a process nobody stops.
    """

    def __init__(self, target: Target, book: AddressBook, log_path: Path, *,
                 stop_with: contextlib.ExitStack | None = None, name: str = "target") -> None:
        self._target, self._book, self._log_path, self._name = target, book, log_path, name
        self._lock = runlock.current()
        self._starting = threading.Lock()
        self._stopped = False
        self.process = spawn_target(target, book, log_path, name)
        if stop_with is not None:
            stop_with.callback(self.stop)
        await_target(self.process, target, book)

    @property
    def version(self) -> str:
        """A command has no version the harness can read."""
        return ""

    def current(self) -> Incarnation:
        """The child process of the latest start."""
        return Incarnation(f"pid {self.process.pid}", self.process.pid, self.process.returncode)

    def verb(self, fault: str) -> str:
        """The signal each process fault sends."""
        return _SIGNALS[fault]

    def pause(self) -> None:
        """Freeze the target (SIGSTOP): it keeps its sockets open and answers nothing."""
        self.process.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused target run on (SIGCONT)."""
        self.process.signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """End the target at once (SIGKILL), as a crash or an OOM kill would."""
        self.process.stop(grace=0, signum=signal.SIGKILL)

    def start(self) -> None:
        """Start the target again and wait until it is healthy (a stop meanwhile ends it)."""
        with self._starting, runlock.using(self._lock):
            if self._stopped:
                raise StartupError(self._name, "the run is ending: no process is started")
            self.process = spawn_target(self._target, self._book, self._log_path, self._name)
        await_target(self.process, self._target, self._book)

    def restart(self) -> None:
        """A clean restart, as a deployment does: SIGTERM, then start again."""
        self.halt()
        self.start()

    def halt(self) -> None:
        """SIGTERM (a paused target is resumed first so that it hears it), SIGKILL after the
        target's `stop_grace`."""
        self.resume()
        self.process.stop(grace=self._target.stop_grace)

    def stop(self) -> None:
        """End the target for good, as `halt` does: nothing of it is left running."""
        with self._starting:
            self._stopped = True
        self.halt()
