"""The upgrade step: stop version A, run the migration, start version B; roll back on failure.

The step is instant on the timeline (nothing to undo) and journals `upgrade.finished` on every
exit path once it began. A migration that fails (non-zero exit, past its timeout, or no start at
all) or a version B that never becomes healthy rolls back: whatever B started is stopped and
version A starts again, so the run goes on and its verdict says the rehearsal failed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import runlock
from harness.errors import FaultInjectionError, StartupError
from harness.instances import Instances
from harness.journal import FaultMeasured, JournalWriter, UpgradeFinished, UpgradeOutcome
from harness.processes import ManagedProcess
from harness.scenario import Migration, Scenario, Step, Target
from harness.target import Incarnation, command_env

MIGRATION_LOG = Path("logs") / "migration.log"
"""Where the migration's output goes, relative to the run folder."""

MIGRATION_STOP_GRACE = 5.0
"""Seconds a migration past its timeout (or of a run that stops) has after SIGTERM."""

_POLL = 0.1


@dataclass
class _Cutover:
    """What one upgrade step has done so far (private to it; journaled once it is over)."""

    step: int
    stop_began: float
    stop_ended: float | None = None
    migration_exit: int | None = None
    migration_seconds: float | None = None
    b_started: float | None = None
    ready_at: float | None = None
    outcome: UpgradeOutcome = "interrupted"
    reason: str = "the run stopped during the cut-over"

    def finished(self, log: str) -> UpgradeFinished:
        gap = None if self.ready_at is None else round(self.ready_at - self.stop_began, 3)
        return UpgradeFinished(
            step=self.step, stop_began=self.stop_began, stop_ended=self.stop_ended,
            migration_exit=self.migration_exit, migration_seconds=self.migration_seconds,
            ready_at=self.ready_at, cut_over_gap=gap, outcome=self.outcome, reason=self.reason,
            log=log)


class UpgradeInjector:
    """Carries out the scenario's `upgrade` step on the target's instances.

    `interrupt()` (the run is stopping) ends a migration under way at once and skips what is
    left of the cut-over, rollback included: the run's teardown stops whatever runs.
    """

    def __init__(self, instances: Instances, scenario: Scenario, journal: JournalWriter,
                 run_dir: Path, say: Callable[[str], None]) -> None:
        self._instances = instances
        self._scenario = scenario
        self._journal = journal
        self._run_dir = run_dir
        self._say = say
        self._lock = runlock.current()  # the timeline's thread starts the migration
        self._stopping = threading.Event()
        labels = {index: link for link, index in scenario.instance_links.items()}
        self._labels = labels if len(labels) > 1 else {}  # a lone instance needs no label

    def interrupt(self) -> None:
        """The run is stopping: end the cut-over under way without rolling back."""
        self._stopping.set()

    def apply(self, index: int, step: Step) -> FaultMeasured:
        """Cut over from version A to version B; what it measured (`affected`: the instances
        of A that were running when they were told to stop)."""
        upgrade = self._scenario.upgrade
        assert upgrade is not None, "an upgrade step needs the scenario's upgrade section"
        if self._stopping.is_set():
            raise FaultInjectionError("upgrade: the run is stopping")
        before = [self._instances.backend(i).current() for i in range(len(self._instances))]
        cutover = _Cutover(step=index, stop_began=time.time())
        log = str(MIGRATION_LOG) if upgrade.migrate is not None else ""
        try:
            self._cut_over(cutover, upgrade.migrate, upgrade.target)
        except FaultInjectionError:
            raise
        except Exception as exc:  # the timeline plays on; the run fails with this error
            cutover.reason = f"error during the cut-over: {type(exc).__name__}: {exc}"
            raise FaultInjectionError(f"upgrade: {cutover.reason}") from exc
        finally:
            self._journal.write(cutover.finished(log))
        return FaultMeasured(step=index, probes=len(before),
                             affected=sum(1 for run in before if run.exit_code is None),
                             detail=self._detail(before, cutover))

    def revert(self, index: int, step: Step) -> None:
        """An upgrade is over once applied: nothing to undo."""

    def _cut_over(self, cutover: _Cutover, migrate: Migration | None, version_b: Target
                  ) -> None:
        self._instances.stop_all()
        cutover.stop_ended = time.time()
        if self._stopping.is_set():
            cutover.reason = "the run stopped once version A was stopped"
            return
        if migrate is not None and not self._migrate(cutover, migrate):
            if cutover.outcome == "migration_failed":
                self._roll_back(cutover, started_b=False)
            return
        if self._stopping.is_set():
            cutover.reason = "the run stopped before version B started"
            return
        cutover.b_started = time.time()
        try:
            self._instances.start_all(version_b)
        except StartupError as exc:
            cutover.outcome = "not_ready"
            last = exc.log_tail.strip().splitlines()[-1:]
            # One line, as every reason: the log's last line says most often why.
            cutover.reason = f"version B did not become ready: {exc}" + (
                f" (its log ends: {last[0].strip()[:200]})" if last else "")
            self._roll_back(cutover, started_b=True)
            return
        cutover.ready_at = time.time()
        cutover.outcome, cutover.reason = "upgraded", "version B is ready"

    def _migrate(self, cutover: _Cutover, migrate: Migration) -> bool:
        """Run the migration to its end; whether it succeeded (else the cutover says why)."""
        book = self._instances.books[0]
        argv = [book.render(arg) for arg in migrate.command]
        env = command_env(book, migrate.env)
        began = time.monotonic()
        try:
            with runlock.using(self._lock):
                process = ManagedProcess("migration", argv, log_path=self._run_dir / MIGRATION_LOG,
                                         env=env, cwd=Path(book.render(migrate.cwd)))
        except StartupError as exc:
            cutover.outcome, cutover.reason = "migration_failed", f"{exc}"
            return False
        try:
            code = self._wait(process, began + migrate.timeout)
        finally:
            process.stop(grace=MIGRATION_STOP_GRACE)  # a timed-out one, and what it forked
        cutover.migration_seconds = round(time.monotonic() - began, 3)
        cutover.migration_exit = code
        if self._stopping.is_set() and code is None:
            cutover.reason = "the run stopped during the migration (it was stopped)"
            return False
        if code is None:
            cutover.outcome = "migration_failed"
            cutover.reason = (f"the migration did not finish within {migrate.timeout:g}s and "
                              f"was stopped (see {MIGRATION_LOG})")
            return False
        if code != 0:
            cutover.outcome = "migration_failed"
            cutover.reason = f"the migration exited with code {code} (see {MIGRATION_LOG})"
            return False
        return True

    def _wait(self, process: ManagedProcess, deadline: float) -> int | None:
        """The migration's exit code, or None when it passed `deadline` or the run stops."""
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            code = process.wait(min(left, _POLL))
            if code is not None:
                return code
        return None

    def _roll_back(self, cutover: _Cutover, started_b: bool) -> None:
        """Stop what version B started, start version A again; the cutover's reason says it."""
        self._say(f"upgrade failed: {cutover.reason}; rolling back to version A")
        if started_b:
            self._instances.stop_all()
        if self._stopping.is_set():
            cutover.reason += "; not rolled back: the run stopped"
            return
        try:
            self._instances.start_all(self._scenario.target)
        except StartupError as exc:
            cutover.reason += f"; rolling back failed: version A did not come back: {exc}"
            raise FaultInjectionError(f"upgrade: {cutover.reason}") from None
        cutover.reason += "; rolled back to version A"

    def _detail(self, before: Sequence[Incarnation], cutover: _Cutover) -> str:
        """`SIGTERM to pid 41; migration exit 0 in 0.8s; version B ready in 1.9s (cut-over
        gap 2.7s)`."""
        verb = self._instances.backend(0).verb("process.stop")
        stopped = ", ".join(run.name + (f" ({self._labels[i]})" if i in self._labels else "")
                            + ("" if run.exit_code is None else " (already ended)")
                            for i, run in enumerate(before))
        parts = [f"{verb} to {stopped}"]
        if cutover.migration_seconds is not None:
            code = ("no exit (stopped)" if cutover.migration_exit is None
                    else f"exit {cutover.migration_exit}")
            parts.append(f"migration {code} in {cutover.migration_seconds:.1f}s")
        if cutover.ready_at is not None and cutover.b_started is not None:
            gap = cutover.ready_at - cutover.stop_began
            parts.append(f"version B ready in {cutover.ready_at - cutover.b_started:.1f}s "
                         f"(cut-over gap {gap:.1f}s)")
        else:
            parts.append(f"{cutover.outcome.replace('_', ' ')}: {cutover.reason}")
        return "; ".join(parts)
