"""The scorer: a pure function from a run's journal to its reminder-continuity scorecard."""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.errors import JournalError
from harness.journal import (
    AlertReceived,
    BorrowerOptedOut,
    ComponentReady,
    FaultApplied,
    FaultReverted,
    Journal,
    LoadFinished,
    LoadStarted,
    ReminderOwed,
    RunEnded,
    RunStarted,
    SendRecorded,
    VendorCall,
)
from harness.scenario import Correlation, Sla

Outcome = Literal["on_time", "late", "missed", "filtered", "wrong_content", "wrong_recipient"]
OUTCOMES: tuple[Outcome, ...] = ("on_time", "late", "missed", "filtered", "wrong_content",
                                 "wrong_recipient")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Latency(_Model):
    """Seconds from "due to be sent" to the inbox, over reminders that arrived correctly."""

    p50: float | None
    p95: float | None
    p99: float | None


class FaultFigures(_Model):
    """One applied fault: when (seconds from the start of load), how fast it was noticed, and
    what became of the reminders exposed to it (their window overlapped the fault)."""

    step: int
    fault: str
    link: str
    applied_at: float
    reverted_at: float | None
    detection: float | None
    exposed: int
    outcomes_exposed: dict[Outcome, int]
    duplicates_exposed: int
    recovery: float | None


class LoadFigures(_Model):
    """What the load generator did."""

    exit_code: int | None
    requests: int
    failures: int


class VendorFigures(_Model):
    """One vendor's API as the notifier met it, against its SLA if the scenario gives one."""

    calls: int
    accepted: int
    read: int
    rejected: int
    refused: int
    lost: int
    availability: float | None
    p95_latency: float | None
    sla_met: bool | None


class GateResult(_Model):
    """One gate's verdict."""

    expr: str
    value: float | None
    passed: bool


class Scorecard(_Model):
    """Everything a run is judged on; `scorecard.json` is this model."""

    scenario: str
    status: str
    toxiproxy_version: str
    started_at: str
    ended_at: str | None
    owed: int
    unsettled: int
    continuity: float
    outcomes: dict[Outcome, int]
    duplicates: int
    unmatched: int
    opted_out: int
    sent_to_opted_out: int
    latency: Latency
    longest_blackout: float
    alerts: int
    faults: list[FaultFigures]
    vendors: dict[str, VendorFigures]
    sla_breaches: int
    load: LoadFigures | None
    gates: list[GateResult]
    passed: bool

    def metric(self, name: str) -> float | None:
        """The figure a gate names (see harness.gates.METRICS)."""
        if name in OUTCOMES:
            return float(self.outcomes[name])
        if name.endswith("_latency"):
            value = getattr(self.latency, name.removesuffix("_latency"))
            return None if value is None else float(value)
        return float(getattr(self, name))


@dataclass(frozen=True)
class _Verdict:
    outcome: Outcome
    delivered_at: float | None
    copies: int


def _national(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("0086"):
        return digits[4:]
    if digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    return digits


def _correlate(send: SendRecorded, rule: Correlation, refs: set[str]) -> tuple[str | None,
                                                                              re.Match[str] | None]:
    match = re.search(rule.body, send.body) if rule.body else None
    if rule.client_ref and send.client_ref in refs:
        return send.client_ref, match
    if match is not None and match.group("ref") in refs:
        return match.group("ref"), match
    return None, match


def _content_ok(reminder: ReminderOwed, match: re.Match[str] | None) -> bool:
    if match is None:
        return True  # correlated by client reference alone: the body has nothing to compare
    groups = match.groupdict()
    expected = {"amount": reminder.amount, "due_date": reminder.due_date}
    return all(groups.get(key) in (None, value) for key, value in expected.items())


def _judge(reminder: ReminderOwed, copies: Sequence[tuple[SendRecorded, re.Match[str] | None]]
           ) -> _Verdict:
    """The first correct arrival in the inbox decides; the others say why none came."""
    wrong: Outcome | None = None
    for send, match in copies:
        if send.inbox_at is None:
            continue
        if _national(send.to) != _national(reminder.phone):
            wrong = wrong or "wrong_recipient"
        elif not _content_ok(reminder, match):
            wrong = wrong or "wrong_content"
        elif send.handset == "spam":
            wrong = "filtered" if wrong in (None, "filtered") else wrong
        else:
            outcome: Outcome = "on_time" if send.inbox_at <= reminder.send_by else "late"
            return _Verdict(outcome, send.inbox_at, len(copies))
    return _Verdict(wrong or "missed", None, len(copies))


def _percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 3)


class _Backlog:
    """How many owed reminders are waiting at any moment: fallen due, not yet delivered, and
    either still deliverable or late but delivered later (a missed one leaves at its deadline)."""

    def __init__(self, owed: Sequence[ReminderOwed], delivered: dict[str, float]) -> None:
        self._due = sorted(r.remind_at for r in owed)
        self._delivered = sorted(delivered[r.ref] for r in owed if r.ref in delivered)
        self._expired = sorted(r.send_by for r in owed if r.ref not in delivered)
        self._out = sorted(self._delivered + self._expired)

    def at(self, t: float) -> int:
        """The backlog just after time `t`."""
        return bisect.bisect_right(self._due, t) - bisect.bisect_right(self._out, t)

    def recovery(self, start: float, end: float) -> float | None:
        """Seconds after `end` until the backlog is back to its typical size before `start`
        (its median at the moments reminders fell due before the fault); None if never."""
        before = [self.at(t) for t in self._due if t < start]
        steady = statistics.median(before) if before else 0
        if self.at(end) <= steady:
            return 0.0
        later = (t for t in self._out if t > end and self.at(t) <= steady)
        back = next(later, None)
        return None if back is None else round(back - end, 3)


    def longest_blackout(self) -> float:
        """Longest stretch with a backlog and no delivery at all."""
        marks = sorted([(t, "due") for t in self._due] + [(t, "delivered") for t in
                       self._delivered] + [(t, "expired") for t in self._expired])
        pending, since, longest = 0, 0.0, 0.0
        for when, what in marks:
            if what == "due":
                since = when if pending == 0 else since
                pending += 1
                continue
            pending -= 1
            if what == "delivered" or pending == 0:
                longest = max(longest, when - since)
                since = when
        return round(longest, 3)


def _vendor_figures(calls: Sequence[VendorCall], sla: Sla | None) -> VendorFigures:
    by_outcome = Counter(call.outcome for call in calls)
    answered = by_outcome["accepted"] + by_outcome["read"] + by_outcome["rejected"]
    availability = round(answered / len(calls), 6) if calls else None
    p95 = _percentile([c.latency for c in calls if c.outcome != "lost"], 0.95)
    met = None
    if sla is not None:
        met = ((sla.availability is None or (availability or 0.0) >= sla.availability)
               and (sla.p95_latency is None or (p95 or 0.0) <= sla.p95_latency))
    counts = {outcome: by_outcome[outcome]
              for outcome in ("accepted", "read", "rejected", "refused", "lost")}
    return VendorFigures(calls=len(calls), **counts, availability=availability,
                         p95_latency=p95, sla_met=met)


def _count(outcomes: Iterable[Outcome]) -> dict[Outcome, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome in outcomes:
        counts[outcome] += 1
    return counts


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _owed(reminder: ReminderOwed, opted_out_at: float, delivered_at: float | None) -> bool:
    """Whether a reminder counts, given when its borrower replied STOP (inf if never)."""
    if opted_out_at >= reminder.send_by:
        return True
    return delivered_at is not None and delivered_at <= opted_out_at


def score(journal: Journal) -> Scorecard:
    """Score a run from its journal alone; the scenario comes from its `run.started` event."""
    started = journal.first(RunStarted)
    if started is None:
        raise JournalError("the journal has no run.started event: nothing to score")
    scenario = started.scenario
    ended = journal.first(RunEnded)
    toxiproxy = next((c for c in journal.of(ComponentReady) if c.component == "toxiproxy"), None)
    end = ended.t if ended else max(event.t for event in journal.events)

    opted_out = {_national(e.phone): e.t for e in journal.of(BorrowerOptedOut)}
    every_reminder = journal.of(ReminderOwed)
    refs = {r.ref for r in every_reminder}
    copies: dict[str, list[tuple[SendRecorded, re.Match[str] | None]]] = defaultdict(list)
    unmatched = 0
    # Only what reached a handset counts; a send the vendor dropped or nobody received is lost.
    arrived = [send for send in journal.of(SendRecorded) if send.inbox_at is not None]
    for send in sorted(arrived, key=lambda s: s.inbox_at or 0.0):
        ref, match = _correlate(send, scenario.reminders.correlate, refs)
        if ref is None:
            unmatched += 1
        else:
            copies[ref].append((send, match))

    verdicts = {r.ref: _judge(r, copies[r.ref]) for r in every_reminder}
    # A borrower who replied STOP is owed nothing from then on, not even a reminder already due
    # that had not reached them (it may no longer be sent); any send after is a defect.
    reminders = [r for r in every_reminder
                 if _owed(r, opted_out.get(_national(r.phone), math.inf),
                          verdicts[r.ref].delivered_at)]
    # A reminder whose window outlasts the run and that has not arrived is not yet decided.
    settled = [r for r in reminders
               if verdicts[r.ref].delivered_at is not None or r.send_by <= end]
    counts = _count(verdicts[r.ref].outcome for r in settled)
    delivered = {ref: v.delivered_at for ref, v in verdicts.items() if v.delivered_at is not None}
    latencies = [delivered[r.ref] - r.remind_at for r in settled if r.ref in delivered]
    sent_to_opted_out = sum(1 for send in journal.of(SendRecorded)
                            if send.t > opted_out.get(_national(send.to), math.inf))
    extra_copies = {ref: max(0, len(sends) - 1) for ref, sends in copies.items()}
    duplicates = sum(extra_copies.values())

    alerts = journal.of(AlertReceived)
    load_started = journal.first(LoadStarted)
    t0 = load_started.t if load_started else started.t
    reverted = {event.step: event.t for event in journal.of(FaultReverted)}
    backlog = _Backlog(settled, delivered)
    faults = []
    for fault in journal.of(FaultApplied):
        until = reverted.get(fault.step, end)
        exposed = [r for r in settled if r.remind_at <= until and r.send_by >= fault.t]
        faults.append(FaultFigures(
            step=fault.step, fault=fault.fault, link=fault.link,
            applied_at=round(fault.t - t0, 3),
            reverted_at=round(reverted[fault.step] - t0, 3) if fault.step in reverted else None,
            detection=next((round(a.t - fault.t, 3) for a in alerts if a.t >= fault.t), None),
            exposed=len(exposed),
            outcomes_exposed=_count(verdicts[r.ref].outcome for r in exposed),
            duplicates_exposed=sum(extra_copies.get(r.ref, 0) for r in exposed),
            recovery=backlog.recovery(fault.t, until) if fault.step in reverted else None))
    calls = journal.of(VendorCall)
    vendors = {name: _vendor_figures([c for c in calls if c.vendor == name],
                                     scenario.slas.get(name))
               for name in scenario.vendors}
    load = journal.first(LoadFinished)
    card = Scorecard(
        scenario=scenario.name,
        status=ended.status if ended else "unfinished",
        toxiproxy_version=toxiproxy.version if toxiproxy else "",
        started_at=_iso(started.t),
        ended_at=_iso(ended.t) if ended else None,
        owed=len(settled),
        unsettled=len(reminders) - len(settled),
        # No owed reminders means the run proved nothing: it must not pass a continuity gate.
        continuity=round(counts["on_time"] / len(settled), 6) if settled else 0.0,
        outcomes=counts,
        duplicates=duplicates,
        unmatched=unmatched,
        opted_out=len(opted_out),
        sent_to_opted_out=sent_to_opted_out,
        latency=Latency(p50=_percentile(latencies, 0.50), p95=_percentile(latencies, 0.95),
                        p99=_percentile(latencies, 0.99)),
        longest_blackout=backlog.longest_blackout(),
        alerts=len(alerts),
        faults=faults,
        vendors=vendors,
        sla_breaches=sum(1 for figures in vendors.values() if figures.sla_met is False),
        load=LoadFigures(exit_code=load.exit_code, requests=load.requests,
                         failures=load.failures) if load else None,
        gates=[],
        passed=False,
    )
    values = [card.metric(gate.metric) for gate in scenario.gates]
    gates = [GateResult(expr=gate.expr, value=value, passed=gate.holds(value))
             for gate, value in zip(scenario.gates, values, strict=True)]
    passed = card.status == "completed" and all(gate.passed for gate in gates)
    return card.model_copy(update={"gates": gates, "passed": passed})
