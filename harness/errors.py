"""The exception tree: every failure the harness reports is one of these, with its context.

    NotifyChaosError
    ├── ScenarioError        the scenario file is wrong (file, line, what was expected)
    ├── StartupError         a component did not start or never became ready
    ├── FaultInjectionError  a fault could not be applied or undone
    ├── LoadError            the load generator could not run
    └── JournalError         a journal file is damaged beyond its last line

The CLI turns any of them into one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path


class NotifyChaosError(Exception):
    """Base of every error the harness raises on purpose."""


class ScenarioError(NotifyChaosError):
    """A scenario file cannot be used: where it is wrong and what was expected."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class StartupError(NotifyChaosError):
    """A component (Toxiproxy, mocks, target, Locust) failed to start or to become ready."""

    def __init__(self, component: str, message: str, log_tail: str = "") -> None:
        self.component = component
        self.log_tail = log_tail
        super().__init__(f"{component}: {message}")


class FaultInjectionError(NotifyChaosError):
    """A fault could not be applied or reverted."""


class LoadError(NotifyChaosError):
    """The load generator failed to run."""


class JournalError(NotifyChaosError):
    """A journal file cannot be read (damaged anywhere but its last, half-written line)."""
