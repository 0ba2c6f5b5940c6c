"""The scorecard's rows of upgrade steps, from their `upgrade.finished` events, and the figures
over them.

Rules:

- One row per `upgrade.finished`, at the moment version A's stop began (seconds from the start
  of load).
- `cut_over_gap` is the longest gap (stop began to version B healthy) over the upgrade steps;
  0 when the scenario upgrades nothing (its baseline: no cut-over, no gap), None when an upgrade
  never got a healthy version B or never journaled its end (so a gate on it fails).
- `failed_upgrades` counts the steps that did not end with version B healthy; any fails the run
  (see `harness.verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.journal import Journal, UpgradeFinished
from harness.scorecard import UpgradeFigures


def upgrade_rows(journal: Journal, t0: float) -> list[UpgradeFigures]:
    """Each upgrade step of the run, in time order; `t0` is the start of load."""
    return [UpgradeFigures(step=event.step, at=round(event.stop_began - t0, 3),
                           outcome=event.outcome, reason=event.reason,
                           migration_exit=event.migration_exit,
                           migration_seconds=event.migration_seconds,
                           cut_over_gap=event.cut_over_gap)
            for event in journal.of(UpgradeFinished)]


def longest_cut_over(rows: Sequence[UpgradeFigures], planned: int) -> float | None:
    """The longest cut-over gap of the `planned` upgrade steps (see the module's rules)."""
    if not planned:
        return 0.0
    gaps = [row.cut_over_gap for row in rows]
    if len(gaps) < planned or any(gap is None for gap in gaps):
        return None
    return max(gap for gap in gaps if gap is not None)
