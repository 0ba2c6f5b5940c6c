"""The scorecard's rows of upgrade steps, from their `upgrade.finished` events, and the figures
over them.

Rules:

- One row per `upgrade.finished`, at the moment version A's stop began (seconds from the start
  of load).
- A step the scenario plans but the journal has no `upgrade.finished` for (the run ended, or
  the step could not begin) is a row too, `never_ran`: a rehearsal that did not rehearse fails.
- `cut_over_gap` is the longest gap (stop began to version B healthy) over the upgrade steps;
  0 when the scenario upgrades nothing (its baseline: no cut-over, no gap), None when an upgrade
  never got a healthy version B (so a gate on it fails).
- `failed_upgrades` counts the steps that did not end with version B healthy; any fails the run
  (see `harness.verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.faults import FAULTS
from harness.journal import Journal, UpgradeFinished
from harness.scenario import Scenario
from harness.scorecard import UpgradeFigures


def upgrade_rows(journal: Journal, scenario: Scenario, t0: float) -> list[UpgradeFigures]:
    """Each upgrade step of the run, in time order, then those that never ran; `t0` is the
    start of load."""
    rows = [UpgradeFigures(step=event.step, at=round(event.stop_began - t0, 3),
                           outcome=event.outcome, reason=event.reason,
                           migration_exit=event.migration_exit,
                           migration_seconds=event.migration_seconds,
                           cut_over_gap=event.cut_over_gap)
            for event in journal.of(UpgradeFinished)]
    ran = {row.step for row in rows}
    return rows + [UpgradeFigures(step=index, at=step.at, outcome="never_ran",
                                  reason="the run ended before the step was carried out",
                                  migration_exit=None, migration_seconds=None,
                                  cut_over_gap=None)
                   for index, step in enumerate(scenario.timeline)
                   if FAULTS[step.fault].family == "upgrade" and index not in ran]


def longest_cut_over(rows: Sequence[UpgradeFigures]) -> float | None:
    """The longest cut-over gap of the upgrade steps (see the module's rules)."""
    if not rows:
        return 0.0
    gaps = [row.cut_over_gap for row in rows]
    if any(gap is None for gap in gaps):
        return None
    return max(gap for gap in gaps if gap is not None)
