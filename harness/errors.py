"""The exception tree: every failure the harness reports is one of these, with its context.

    NotifyChaosError
    ├── ScenarioError           the scenario file is wrong (file, line, what was expected)
    ├── ComponentError          a component failed (its name, the last lines of its log)
    │   ├── StartupError        it did not start or never became ready
    │   └── ComponentLostError  a part of the harness (the mocks, Toxiproxy) exited mid-run
    ├── FaultInjectionError     a fault could not be applied or undone
    ├── LoadError               the load generator could not run
    └── JournalError            a journal file is damaged beyond its last line

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


class ComponentError(NotifyChaosError):
    """A component of a run failed: which one, and the last lines of its log if it has one."""

    def __init__(self, component: str, message: str, log_tail: str = "") -> None:
        self.component = component
        self.log_tail = log_tail
        super().__init__(f"{component}: {message}")


class StartupError(ComponentError):
    """A component (Toxiproxy, mocks, target, Locust) failed to start or to become ready."""


class ComponentLostError(ComponentError):
    """A part of the harness (the mocks, its Toxiproxy server) exited during the run: what the
    notifier did after that cannot be judged, so the run is not scored as its failure."""


class FaultInjectionError(NotifyChaosError):
    """A fault could not be applied or reverted."""


class LoadError(NotifyChaosError):
    """The load generator failed to run."""


class JournalError(NotifyChaosError):
    """A journal file cannot be read (damaged anywhere but its last, half-written line)."""
