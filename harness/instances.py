"""Every instance of the notifier under test: each on its own port with its own log, started in
order (each healthy before the next), stopped and started again as a whole, always torn down.

A lone instance is what a target always was: component and run-lock name `target`, log
`logs/target.log`. Several (`replicas: 2`, or named `instances: [active, standby]`) are
`target[<i>]` or `target.<name>`, each logging to `logs/target-<name>.log`. The base book's
`target.*` values name instance 0 (the run renders the vendors' callback URLs with them before
any instance starts); each instance gets a book of its own with its `target.host`,
`target.port`, `target.url`, `target.instance` and `target.index`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from harness import runlock
from harness.container import ContainerTarget
from harness.errors import StartupError
from harness.journal import ComponentReady
from harness.processes import free_port
from harness.scenario import Target
from harness.target import AddressBook, Layers, RunningTarget, TargetBackend

HOST = "127.0.0.1"
"""Where every instance listens: all traffic of a run stays on loopback."""


def instance_values(index: int, name: str, port: int) -> dict[str, str]:
    """The `target.*` placeholders of the instance `index` called `name`, listening on `port`."""
    return {"target.host": HOST, "target.port": str(port), "target.url": f"http://{HOST}:{port}",
            "target.instance": name, "target.index": str(index)}


def component_names(spec: Target) -> tuple[str, ...]:
    """How the journal, errors and the run lock name each instance: `target` for a lone one,
    else `target.<name>` (named instances) or `target[<i>]`."""
    names = spec.instance_names
    if len(names) == 1:
        return ("target",)
    if spec.instances:
        return tuple(f"target.{name}" for name in names)
    return tuple(f"target[{index}]" for index in range(len(names)))


class Instances:
    """The instances of a run's target, in start order, each behind a `TargetBackend`.

    Built, it has started every instance of `spec` (each healthy before the next, so that
    instance 0 is up first: an active/standby pair's first instance takes the lease) and
    journaled each one's `component.ready` through `on_ready`. Its stop is on `teardown` before
    the first health check, so an instance that never gets ready stops those before it too.
    `links` maps each link a process fault may name to its instance (`Scenario.instance_links`).

    Thread-safe: the timeline's thread stops and starts instances while the run's thread may
    tear down; what a start under way makes is stopped by the teardown that waits for it.
    """

    def __init__(self, spec: Target, links: Mapping[str, int], book: AddressBook, logs: Path,
                 run_dir: Path, teardown: contextlib.ExitStack, *,
                 on_ready: Callable[[ComponentReady], None] | None = None) -> None:
        self._spec = spec
        self._links = dict(links)
        self._run_dir = run_dir
        self._on_ready = on_ready
        self._lock = threading.RLock()
        # Starts from the timeline's thread belong to the run too (threads do not inherit it).
        self._runlock = runlock.current()
        self._closed = False
        self.names: tuple[str, ...] = tuple(spec.instance_names)
        self._components = component_names(spec)
        first = book.values.get("target.port")
        ports = [int(first) if first else free_port(),
                 *(free_port() for _ in self.names[1:])]
        self.books: tuple[AddressBook, ...] = tuple(
            AddressBook(Layers(instance_values(index, name, port), book.values))
            for index, (name, port) in enumerate(zip(self.names, ports, strict=True)))
        lone = len(self.names) == 1
        self._logs = tuple(logs / ("target.log" if lone else f"target-{name}.log")
                           for name in self.names)
        # Every backend's stop goes on this stack (only ever touched under the lock), which the
        # run's teardown closes: last started, first stopped.
        self._stops = contextlib.ExitStack()
        teardown.callback(self.close)
        self._backends: list[TargetBackend] = []
        self._start_all(spec, first_time=True)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def spec(self) -> Target:
        """The version of the target now running (version B after an upgrade)."""
        with self._lock:
            return self._spec

    def backend(self, index: int) -> TargetBackend:
        """Instance `index` as it runs now."""
        with self._lock:
            return self._backends[index]

    def for_link(self, link: str) -> TargetBackend:
        """The instance a process fault's link names (`target`, `target[1]`, `target.active`)."""
        if link not in self._links:
            raise ValueError(f"no instance of the target is linked as {link!r}; known: "
                             f"{', '.join(self._links)}")
        return self.backend(self._links[link])

    def stop_all(self) -> None:
        """Stop every instance cleanly (SIGTERM, SIGKILL after `spec.stop_grace`), last started
        first; `start_all` brings them back."""
        with self._lock:
            for backend in reversed(self._backends):
                backend.halt()

    def start_all(self, spec: Target) -> None:
        """Start every instance anew from `spec` (on the same ports, with the same books, their
        output appended to the same logs), in order, each healthy before the next; StartupError
        (with the log's tail) when one is not. What it started is stopped by the teardown."""
        self._start_all(spec, first_time=False)

    def close(self) -> None:
        """Stop every instance for good, last started first; nothing is started after it (a
        start under way on another thread finishes first, and is stopped too)."""
        with self._lock:
            self._closed = True
            self._stops.close()

    def _start_all(self, spec: Target, *, first_time: bool) -> None:
        with self._lock:
            if self._closed:
                raise StartupError("target", "the run is ending: no instance is started")
            if len(spec.instance_names) != len(self.names):
                raise StartupError("target", f"{len(spec.instance_names)} instance(s) to start, "
                                   f"but the target has {len(self.names)}")
            self._spec = spec
            for index in range(len(self.names)):
                backend = self._start(spec, index)
                if first_time:
                    self._backends.append(backend)
                else:
                    self._backends[index] = backend
                if self._on_ready is not None:
                    self._on_ready(ComponentReady(
                        component=self._components[index], pid=backend.current().pid,
                        address=self.books[index].render(spec.health), version=backend.version))

    def _start(self, spec: Target, index: int) -> TargetBackend:
        name, book, log = self._components[index], self.books[index], self._logs[index]
        with runlock.using(self._runlock):
            if spec.image:
                if self._runlock is not None:
                    self._runlock.use_docker()
                return ContainerTarget(spec, book, log, self._run_dir, stop_with=self._stops,
                                       name=name)
            return RunningTarget(spec, book, log, stop_with=self._stops, name=name)
