"""Child processes of a run: each in its own process group, logged to a file, always stopped."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from harness import runlock
from harness.errors import StartupError

T = TypeVar("T")


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_PORTS = random.SystemRandom()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now, below the kernel's ephemeral range.

    The port is only named now and bound later (by a notifier, a proxy listener), so it must not
    be one the kernel may hand out meanwhile to an outgoing connection or a `bind(0)` of another
    run on this machine, leaving the notifier unable to listen on it.
    """
    try:
        lowest_ephemeral = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        lowest_ephemeral = 32768  # Linux's default range
    for _ in range(200):
        port = _PORTS.randrange(max(1024, lowest_ephemeral - 12000), lowest_ephemeral)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_until(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.1,
               watch: ManagedProcess | None = None) -> T | None:
    """Call `probe` until it returns something other than None or `timeout` passes.

    Returns the probe's value, or None on timeout. If the `watch`ed process ends first, raises
    StartupError with its exit code and the tail of its log.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if watch is not None and watch.returncode is not None:
            raise StartupError(watch.name, f"exited with code {watch.returncode} before it was "
                               "ready", watch.log_tail())
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


REAP_TIMEOUT = 5.0


class ManagedProcess:
    """One child process in a new session (so Ctrl-C reaches only the harness, which stops it).

    Started within a run (`harness.runlock.current()`), it carries the run's id in its
    environment and its group is written into the run lock, so that it cannot outlive a
    harness that dies.
    """

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path
        lock = runlock.current()
        child_env = dict(os.environ if env is None else env)
        if lock is not None:
            child_env[runlock.RUN_ENV] = lock.run_id
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            try:
                self._popen = subprocess.Popen(
                    list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=child_env, cwd=cwd, start_new_session=True)
            except OSError as exc:
                raise StartupError(name, f"cannot start {argv[0]!r}: {exc.strerror}") from None
        self._stopped = False
        if lock is not None:
            lock.add_group(name, self._popen.pid)

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has ended, else None."""
        return self._popen.poll()

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for the child to end; its exit code, or None."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0, signum: int = signal.SIGTERM) -> int | None:
        """Send `signum` to the whole group, then SIGKILL after `grace` seconds. Once stopped,
        stopping (or signalling) again does nothing: the group's id may by then be another's."""
        if self._stopped:
            return self._popen.poll()
        self._stopped = True
        if self._popen.poll() is None:
            self._killpg(signum)
            if self.wait(grace) is None:
                self._killpg(signal.SIGKILL)
                # A killed child still has to be reaped (else it lingers as a zombie whose
                # Popen warns when collected), even when no grace was given.
                self.wait(max(grace, REAP_TIMEOUT))
        # Children the target forked may outlive it; the group takes them down too.
        self._killpg(signal.SIGKILL)
        return self._popen.poll()

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the child and all it started; a process already gone (or stopped
        by `stop`) is no error."""
        if not self._stopped:
            self._killpg(signum)

    def _killpg(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines the child wrote."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
