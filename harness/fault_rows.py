"""One scorecard row per applied fault step: what it measurably touched, whether the notifier
alerted about it, and what became of the reminders exposed to it.

Rules:

- A step is active from `fault.applied` until `fault.reverted`, or until the end of the run;
  an instant step (process.restart) only at the moment it was applied; an upgrade (journaled
  once over) from version A's stop (`upgrade.finished`) until it was over.
- **Touched / effect.** A step the harness measured itself (`fault.measured`: canary requests
  through a Toxiproxy link, a signalled process) touched what it measured affected. Any other
  step touched the `fault.touched` events of its mock (the vendor of `vendors.<name>`, the
  channel's mock of `email` or `push`, or `ledger`) whose switch is one of the step's switches,
  while it was active (plus `CHANGE_GRACE` for what was already under way). Active, for this,
  begins when the mock switched (its `mock.faults` up to `CHANGE_GRACE` before
  `fault.applied`, which the harness journals once the mock has answered): a switch may act at
  once (a restored snapshot).
- **Exposed.** Owed, settled reminders whose wait ([remind_at, first correct delivery or the
  close of its window]) overlaps the step's activity; for the data faults that distort records
  (`DISTORTING`), the reminders whose records the step touched; for an upgrade, the reminders
  the notifier held while it ran (in the ledger since before it was over, not delivered when it
  began): what the cut-over must carry to version B, not only what fell due in its gap.
  `outcomes_exposed` has every outcome and adds up to `exposed`; `channels_exposed` counts the
  exposed reminders delivered correctly by each allowed channel (`harness.channel_figures`).
  Outside every fault: the settled reminders exposed to no step.
- **Detection.** An alert counts for a step when it arrives while the step is active or within
  `DETECTION_GRACE` after, and, when its body is a JSON object with a string `dependency`,
  only when that names the step's link (`twilio` or `vendors.twilio` for `vendors.twilio`,
  `ledger` for `ledger`). Detection = the first such alert - applied.
- **Recovery**, for a step that ended: see `harness.timing.Backlog.recovery`.
- **After maintenance.** Of the reminders exposed to any `process.stop` step (each counted
  once), the share delivered correctly at all (on time or late).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.faults import FAULTS
from harness.journal import (
    AlertReceived,
    FaultApplied,
    FaultMeasured,
    FaultReverted,
    FaultTouched,
    Journal,
    MockFaultsChanged,
    UpgradeFinished,
)
from harness.scenario import Scenario
from harness.scorecard import FaultFigures, Outcome
from harness.timing import Backlog
from harness.truth import CHANGE_GRACE

DETECTION_GRACE = 10.0
"""Seconds after a step ends during which an alert still counts for it."""

DISTORTING = frozenset({"data.drift", "data.drop", "data.duplicate", "data.stale"})
"""Data faults whose exposure is the records they touched, not the time they were active.
Not data.snapshot and data.test_leak: most of what they touch is owed to no one (repaid,
opted out, a test record), so their exposure is the owed reminders waiting while active."""

_EFFECTS: dict[tuple[str, str], str] = {
    ("vendor", "outage"): "calls refused",
    ("vendor", "throttle"): "calls throttled",
    ("vendor", "latency"): "calls delayed",
    ("vendor", "drop"): "sends dropped",
    ("vendor", "response_lost"): "responses lost",
    ("vendor", "partial"): "recipients failed",
    ("vendor", "invalid_numbers"): "sends refused as invalid",
    ("vendor", "barred_numbers"): "sends refused as barred",
    ("vendor", "dlr_delay"): "delivery reports delayed",
    ("vendor", "dlr_loss"): "delivery reports lost",
    ("vendor", "dlr_duplicate"): "delivery reports duplicated",
    ("vendor", "dlr_reorder"): "delivery reports reordered",
    ("data", "lag"): "records held back",
    ("data", "drop"): "records dropped",
    ("data", "drift"): "records drifted",
    ("data", "duplicate"): "records duplicated",
    ("data", "schema_change"): "pages served in the changed schema",
    ("data", "snapshot_age"): "records forgotten",
    ("data", "test_leak"): "test records leaked",
    ("vendor", "rejects"): "sends refused as no longer approved",
    ("vendor", "content_filter"): "messages caught by the content rule",
    ("email", "greylist"): "messages greylisted",
    ("email", "reject"): "messages refused",
    ("email", "data_delay"): "replies to DATA delayed",
    ("email", "drop_after_data"): "connections dropped after DATA",
    ("push", "unavailable"): "sends refused as unavailable",
    ("push", "quota"): "sends refused over quota",
    ("push", "latency"): "sends delayed",
}


@dataclass(frozen=True)
class StepRun:
    """One applied step as it ran (journal times)."""

    applied: FaultApplied
    reverted: float | None
    until: float
    """The end of its activity: reverted, applied (instant), or the end of the run."""
    expect_alert: bool

    @property
    def label(self) -> str:
        """`step 0 proxy.down`."""
        return f"step {self.applied.step} {self.applied.fault}"

    @property
    def ended(self) -> bool:
        """Whether it was over before the run ended (reverted, or instant)."""
        return self.reverted is not None or FAULTS[self.applied.fault].instant

    def active(self, t: float) -> bool:
        """Whether the step was in force at `t`."""
        return self.applied.t <= t <= self.until

    @property
    def mock(self) -> str:
        """The mock that carries it out: a vendor's name, `email`, `push` or `ledger`."""
        return self.applied.link.removeprefix("vendors.")

    @property
    def switches(self) -> dict[str, Any]:
        """The mock fault switches it sets (none for network and process faults)."""
        make = FAULTS[self.applied.fault].switches
        return {} if make is None else make(self.applied.params)


def step_runs(journal: Journal, scenario: Scenario, end: float) -> list[StepRun]:
    """Every step of the journal that was applied, with its activity."""
    reverted = {event.step: event.t for event in journal.of(FaultReverted)}
    stopped = {event.step: event.stop_began for event in journal.of(UpgradeFinished)}
    runs = []
    for journaled in journal.of(FaultApplied):
        applied = (journaled.model_copy(update={"t": stopped[journaled.step]})
                   if journaled.step in stopped else journaled)
        back = reverted.get(applied.step)
        instant = FAULTS[applied.fault].instant
        until = back if back is not None else (applied.t if instant else end)
        expect = (scenario.timeline[applied.step].alert_expected
                  if 0 <= applied.step < len(scenario.timeline) else False)
        runs.append(StepRun(applied, back, until, expect))
    return runs


@dataclass(frozen=True)
class Exposure:
    """Which owed settled reminders one step exposed (the rule under **Exposed**)."""

    subjects: frozenset[str] | None
    """The reminders whose records a distorting data fault touched; None for the others."""
    by_schedule: bool
    """An upgrade: exposed are the reminders in the ledger since before it was over."""
    applied: float
    until: float

    def exposes(self, reminder_id: str, remind_at: float, scheduled_t: float,
                waited_until: float) -> bool:
        """Whether a reminder with these values was exposed to the step."""
        if self.subjects is not None:
            return reminder_id in self.subjects
        start = scheduled_t if self.by_schedule else remind_at
        return start <= self.until and waited_until >= self.applied


@dataclass(frozen=True)
class Exposed:
    """What became of the reminders one step exposed."""

    count: int
    outcomes: dict[Outcome, int]
    """Every outcome, adding up to `count`."""
    duplicates: int
    channels: dict[str, int]
    """By which allowed channel those delivered correctly were delivered."""


def exposures(runs: Sequence[StepRun], journal: Journal) -> list[Exposure]:
    """The exposure of each step in `runs`."""
    touched = journal.of(FaultTouched)
    switched = journal.of(MockFaultsChanged)
    return [_exposure(run, _touches(run, touched, switched)) for run in runs]


def maintenance(runs: Sequence[StepRun]) -> list[Exposure]:
    """The exposure of each maintenance window (`process.stop`) in `runs`."""
    return [_exposure(run, ()) for run in runs if run.applied.fault == "process.stop"]


MAINTENANCE_DELIVERED: frozenset[Outcome] = frozenset({"on_time", "late"})
"""The outcomes of a reminder delivered correctly at all after a maintenance window."""


def fault_rows(runs: Sequence[StepRun], journal: Journal, exposed: Sequence[Exposed],
               backlog: Backlog, t0: float) -> list[FaultFigures]:
    """The scorecard's row of each step in `runs`, with what became of the reminders each
    exposed (`exposed`, one per step)."""
    touched = journal.of(FaultTouched)
    switched = journal.of(MockFaultsChanged)
    measured = journal.of(FaultMeasured)
    alerts = journal.of(AlertReceived)
    rows = []
    for run, became in zip(runs, exposed, strict=True):
        touches = _touches(run, touched, switched)
        mine = [m for m in measured if m.step == run.applied.step]
        rows.append(FaultFigures(
            step=run.applied.step, fault=run.applied.fault, link=run.applied.link,
            applied_at=round(run.applied.t - t0, 3),
            reverted_at=None if run.reverted is None else round(run.reverted - t0, 3),
            touched=sum(m.affected for m in mine) if mine else len(touches),
            effect="; ".join(m.detail for m in mine) if mine else _effect(run, touches),
            expect_alert=run.expect_alert,
            detection=_detection(run, alerts),
            exposed=became.count,
            outcomes_exposed=became.outcomes,
            duplicates_exposed=became.duplicates,
            recovery=backlog.recovery(run.applied.t, run.until) if run.ended else None,
            channels_exposed=became.channels))
    return rows


def delivered_after_maintenance(exposed: int, delivered: int) -> float | None:
    """The share of the `exposed` reminders exposed to a maintenance window (`process.stop`)
    that reached their borrower correctly, on time or late (`delivered`); None when no window
    exposed any."""
    if not exposed:
        return None
    return round(delivered / exposed, 6)


def _touches(run: StepRun, touched: Sequence[FaultTouched],
             switched: Sequence[MockFaultsChanged]) -> list[FaultTouched]:
    switches = run.switches
    applied = run.applied.t
    since = max((event.t for event in switched if event.mock == run.mock
                 and applied - CHANGE_GRACE <= event.t <= applied), default=applied)
    return [event for event in touched
            if event.mock == run.mock and event.switch in switches
            and since <= event.t <= run.until + CHANGE_GRACE]


def _exposure(run: StepRun, touches: Sequence[FaultTouched]) -> Exposure:
    distorting = run.applied.fault in DISTORTING
    return Exposure(
        subjects=frozenset(event.subject for event in touches) if distorting else None,
        by_schedule=FAULTS[run.applied.fault].family == "upgrade",
        applied=run.applied.t, until=run.until)


def _effect(run: StepRun, touches: Sequence[FaultTouched]) -> str:
    """`41 calls refused (outage)`, `12 records drifted (phone)`."""
    switches = run.switches
    if not switches:
        return "nothing measured"
    counts = Counter(event.switch for event in touches)
    if not counts:
        return f"no {run.mock} record of {', '.join(sorted(switches))} acting"
    family = FAULTS[run.applied.fault].family
    parts = []
    for switch, count in counts.items():
        phrase = _EFFECTS.get((family, switch), f"touched by {switch}")
        label = {"drift": switches.get("drift_field"), "rejects": switches.get("rejects"),
                 "content_filter": switches.get("content_action"),
                 "schema_change": switches.get("schema_change"),
                 "test_leak": switches.get("test_leak_records")}.get(switch) or switch
        parts.append(f"{count} {phrase} ({label})")
    return ", ".join(parts)


def _detection(run: StepRun, alerts: Sequence[AlertReceived]) -> float | None:
    for alert in alerts:
        if run.applied.t <= alert.t <= run.until + DETECTION_GRACE and _about(alert, run):
            return round(alert.t - run.applied.t, 3)
    return None


def _about(alert: AlertReceived, run: StepRun) -> bool:
    """Whether the alert may be about the step: it names the step's link, or nothing."""
    dependency = alert.body.get("dependency") if isinstance(alert.body, dict) else None
    if not isinstance(dependency, str):
        return True
    link = run.applied.link
    return dependency in (link, link.removeprefix("vendors."))
