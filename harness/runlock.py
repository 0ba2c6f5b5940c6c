"""The run lock: what a run holds (process groups, Toxiproxy servers, containers), so that when
its harness dies the run's watchdog, or else the next run, stops what survived and seals it.

The lock is `<run folder>/run.lock` (JSON). Every child a run starts also carries
`NOTIFYCHAOS_RUN=<run id>` in its environment (so do the children it forks), which finds a
survivor even when the harness died before it could write the child's group down; every proxy
the run makes on a Toxiproxy server is named `<run id>.<link>`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import JournalError
from harness.journal import (
    KILLED,
    JournalWriter,
    RunEnded,
    RunStarted,
    read_journal,
    seal_journal,
)

LOCK_NAME = "run.lock"
RUN_ENV = "NOTIFYCHAOS_RUN"
"""The environment variable naming the run a process belongs to."""
REAP_TIMEOUT = 10.0
"""Seconds a killed survivor may take to disappear."""


class Group(BaseModel):
    """A process group the run started: its name, id, and when its leader started (clock
    ticks after boot), so that a group id the system gave out again is never taken for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    pgid: int
    started: int


class LockState(BaseModel):
    """The lock file's content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    run_dir: str
    host: str
    harness_pid: int
    harness_started: int
    groups: tuple[Group, ...] = ()
    toxiproxies: tuple[str, ...] = ()
    docker: bool = False

    @property
    def proxy_prefix(self) -> str:
        """How the names of this run's proxies begin."""
        return f"{self.run_id}."

    def harness_alive(self) -> bool:
        """True while the harness that holds the lock runs (on this host)."""
        if self.host != socket.gethostname():
            return True  # pids of another host mean nothing here: never take its run for dead
        return _started(self.harness_pid) == self.harness_started


@dataclass(frozen=True)
class Leftovers:
    """What a reap found and stopped."""

    processes: tuple[str, ...] = ()
    proxies: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.processes or self.proxies or self.containers)

    def describe(self) -> str:
        """`2 processes (mocks pid 41, target pid 42), 1 proxy (x.ledger), 0 containers`."""
        parts = []
        for one, many, items in (("process", "processes", self.processes),
                                 ("proxy", "proxies", self.proxies),
                                 ("container", "containers", self.containers)):
            named = f" ({', '.join(items)})" if items else ""
            parts.append(f"{len(items)} {one if len(items) == 1 else many}{named}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Released:
    """How a run let go of its lock: what its teardown had left (now stopped), and the
    processes that could not be stopped (none, but for a process someone else owns)."""

    stopped: Leftovers
    remaining: tuple[str, ...]


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _started(pid: int) -> int | None:
    """When a live (not zombie) process started, in clock ticks after boot; None if gone."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _pids() -> list[int]:
    with os.scandir("/proc") as entries:
        return [int(entry.name) for entry in entries if entry.name.isdigit()]


def _tagged(pid: int, run_id: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or another user's
        return False
    return f"\0{RUN_ENV}={run_id}\0".encode() in b"\0" + environ + b"\0"


def survivors(state: LockState) -> dict[int, str]:
    """The live processes of a run (its groups' members and its tagged processes), by pid."""
    groups = {group.pgid: group for group in state.groups}
    found: dict[int, str] = {}
    for pid in _pids():
        if pid in (os.getpid(), state.harness_pid):
            continue
        fields = _stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        group = groups.get(int(fields[2]))
        # A group id outlives its leader only while members remain; one given out again
        # belongs to a leader (or members) started later than the leader recorded.
        if group is not None and (_started(group.pgid) == group.started
                                  or (_started(group.pgid) is None
                                      and int(fields[19]) >= group.started)):
            found[pid] = f"{group.name} pid {pid}"
        elif _tagged(pid, state.run_id):
            found[pid] = f"pid {pid}"
    return found


def _kill(processes: dict[int, str]) -> None:
    for pid in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + REAP_TIMEOUT
    while any(_started(pid) is not None for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.05)


def _remove_proxies(state: LockState) -> list[str]:
    removed = []
    for url in state.toxiproxies:
        try:
            proxies = httpx.get(f"{url}/proxies", timeout=5.0).json()
        except (httpx.HTTPError, ValueError):
            continue  # the server is gone, and its proxies with it
        for name in proxies:
            if name.startswith(state.proxy_prefix):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.delete(f"{url}/proxies/{name}", timeout=5.0).is_success:
                        removed.append(name)
    return removed


def reap(state: LockState) -> Leftovers:
    """SIGKILL the run's surviving processes, remove its proxies and its containers."""
    processes = survivors(state)
    _kill(processes)
    containers: list[str] = []
    if state.docker:
        # The Docker SDK is loaded only for runs that used a container.
        from harness.container import remove_run_containers

        containers = remove_run_containers(state.run_dir)
    return Leftovers(tuple(processes.values()), tuple(_remove_proxies(state)), tuple(containers))


def seal_dead_run(journal_dir: Path) -> None:
    """End a dead run's journal (`run.ended`, interrupted (harness killed), at its last event's
    time, so that the score does not depend on when it was sealed) and seal it."""
    if not journal_dir.is_dir() or (journal_dir / "seal.json").exists():
        return
    events = read_journal(journal_dir).events
    if events and not any(isinstance(event, RunEnded) for event in events):
        writer = JournalWriter(journal_dir, "reaper")
        writer.write(RunEnded(t=events[-1].t, status=KILLED,
                              reason="the harness died without ending the run"))
        writer.close()
    seal_journal(journal_dir)


def read_lock(path: Path) -> LockState | None:
    """The lock at `path`, or None when there is none or it cannot be read."""
    try:
        return LockState.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def recover(run_dir: Path, *, holder_gone: bool = False) -> str | None:
    """If the run in `run_dir` is dead (its lock held by a harness no longer running, or its
    journal never ended), stop what survived and seal its journal; one line saying what was
    done, or None when there was nothing to do. `holder_gone`: the caller knows the harness
    has let go (its watchdog's pipe ended), even if its process is still exiting."""
    lock = run_dir / LOCK_NAME
    state = read_lock(lock)
    if state is not None and not holder_gone and state.harness_alive():
        return None
    journal_dir = run_dir / "journal"
    sealed = (journal_dir / "seal.json").exists()
    # Without a lock, only a run that began (its lock is made before `run.started`) and never
    # ended is dead: a folder with no `run.started` yet may be a run still starting.
    if state is None and (sealed or not journal_dir.is_dir()
                          or not _began_and_never_ended(journal_dir)):
        return None
    left = reap(state) if state is not None else Leftovers()
    seal_dead_run(journal_dir)
    lock.unlink(missing_ok=True)
    if left:
        return f"a dead run ({run_dir}) left {left.describe()}: stopped, its journal sealed"
    return None if sealed else f"a dead run ({run_dir}) was sealed: its journal is read no further"


def _began_and_never_ended(journal_dir: Path) -> bool:
    """Whether the journal shows a run that began and never ended; a journal that cannot be read
    shows no run of ours (scoring it says what is wrong with it)."""
    if not _may_have_begun_and_never_ended(journal_dir):
        return False  # what the whole read below would say, without holding the journal
    try:
        journal = read_journal(journal_dir)
    except JournalError:
        return False
    return journal.first(RunStarted) is not None and journal.first(RunEnded) is None


def _may_have_begun_and_never_ended(journal_dir: Path) -> bool:
    """False when no line of the journal is a `run.started` or one is a `run.ended`: a scan of
    its lines that parses only those naming a run event (a journal of 10^6 reminders is 2 GB)."""
    began = False
    # Smallest first: a run's end is in the harness's own file, beside the mocks' gigabytes.
    for path in sorted(journal_dir.glob("*.jsonl"), key=lambda found: found.stat().st_size):
        with path.open("rb") as lines:
            for line in lines:
                if b"run.ended" not in line and b"run.started" not in line:
                    continue
                try:
                    kind = json.loads(line).get("kind")
                except (ValueError, AttributeError):
                    continue  # a torn line, which reading drops too
                if kind == "run.ended":
                    return False
                began = began or kind == "run.started"
    return began


def recover_dead_runs(out: Path) -> list[str]:
    """Recover every dead run under `out` that still has its lock; a line for each."""
    lines = []
    for lock in sorted(out.glob(f"*/{LOCK_NAME}")):
        line = recover(lock.parent)
        if line is not None:
            lines.append(line)
    return lines


_CURRENT: ContextVar[RunLock | None] = ContextVar("notifychaos_run_lock", default=None)


def current() -> RunLock | None:
    """The lock of the run this thread carries out, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(lock: RunLock | None) -> Iterator[None]:
    """Children started inside belong to `lock`'s run (threads do not inherit the caller's)."""
    token = _CURRENT.set(lock)
    try:
        yield
    finally:
        _CURRENT.reset(token)


class RunLock:
    """The lock of a run in progress and its watchdog: a process in a session of its own that
    holds the reading end of a pipe whose writing end only this harness has. When the harness
    dies (SIGKILL too), the pipe ends, and the watchdog reaps and seals the run at once."""

    def __init__(self, run_dir: Path, run_id: str) -> None:
        self.path = run_dir / LOCK_NAME
        self.run_id = run_id
        self._lock = threading.Lock()
        started = _started(os.getpid())
        assert started is not None, "the harness itself is running"
        self._state = LockState(run_id=run_id, run_dir=str(run_dir), host=socket.gethostname(),
                                harness_pid=os.getpid(), harness_started=started)
        self._write(self._state)
        env = {key: value for key, value in os.environ.items() if key != RUN_ENV}
        try:
            with (run_dir / "logs" / "watchdog.log").open("ab") as log:
                self._watchdog = subprocess.Popen(
                    [sys.executable, "-m", "harness.watchdog", str(self.path)],
                    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True)
        except BaseException:  # Ctrl-C now: the run holds nothing yet, and has no lock
            self.path.unlink(missing_ok=True)
            raise

    @property
    def state(self) -> LockState:
        """What the lock says now."""
        return self._state

    def _write(self, state: LockState) -> None:
        # Written whole then renamed, so that a reader never sees half a lock.
        partial = self.path.with_name(f".{LOCK_NAME}.tmp")
        partial.write_text(state.model_dump_json(indent=2), encoding="utf-8")
        partial.replace(self.path)

    def _update(self, change: Callable[[LockState], LockState]) -> None:
        # Read and written under one lock: a target restarted on the timeline's thread must
        # not lose a group written down at the same moment on the run's.
        with self._lock:
            self._state = change(self._state)
            self._write(self._state)

    def add_group(self, name: str, pid: int) -> None:
        """Write down a child's process group (it leads one of its own)."""
        started = _started(pid)
        if started is not None:
            group = Group(name=name, pgid=pid, started=started)
            self._update(lambda state: state.model_copy(
                update={"groups": (*state.groups, group)}))

    def add_toxiproxy(self, url: str) -> None:
        """Write down a Toxiproxy server the run is about to make proxies on."""
        self._update(lambda state: state if url in state.toxiproxies else state.model_copy(
            update={"toxiproxies": (*state.toxiproxies, url)}))

    def use_docker(self) -> None:
        """Write down that the run is about to make containers (labelled with its folder)."""
        self._update(lambda state: state.model_copy(update={"docker": True}))

    def release(self) -> Released:
        """At the run's end, after its teardown: stop anything that still survived (what the
        teardown missed), then, if nothing remains, remove the lock; let the watchdog go (it
        tries again when the lock is still there)."""
        stopped = reap(self._state)
        remaining = tuple(survivors(self._state).values())
        if not remaining:
            self.path.unlink(missing_ok=True)
        self.close()
        return Released(stopped, remaining)

    def close(self) -> None:
        """End the watchdog's pipe and reap it; with the lock still there, it cleans up."""
        assert self._watchdog.stdin is not None
        with contextlib.suppress(OSError):
            self._watchdog.stdin.close()
        try:
            self._watchdog.wait(REAP_TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
            self._watchdog.wait()
