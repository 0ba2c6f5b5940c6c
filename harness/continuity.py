"""The scorer: a pure function from a run's journal to its reminder-continuity scorecard.

It rebuilds the truth over time (`harness.truth`), judges every reminder and message against
it (`harness.judging`, with `harness.compliance` for what a text shows), measures the timing
(`harness.timing`), each fault step (`harness.fault_rows`), the app (`harness.app_figures`),
the channel mix (`harness.channel_figures`), each upgrade (`harness.upgrade_figures`) and each
vendor (`harness.vendor_figures`), and gives the verdict (`harness.verdict`); each of those
modules states its rules. Continuity = on-time reminders / owed settled reminders, 0.0 when none is
owed (a run that proved nothing must not pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from harness.app_figures import app_figures
from harness.channel_figures import channel_shares
from harness.clock import run_calendar
from harness.errors import JournalError
from harness.fault_rows import (
    StepRun,
    delivered_after_maintenance,
    exposures,
    fault_rows,
    maintenance,
    step_runs,
)
from harness.fold import Fold, Folded
from harness.journal import (
    AlertReceived,
    ComponentReady,
    Journal,
    LoadFinished,
    LoadStarted,
    RunEnded,
    RunStarted,
    SendRecorded,
    VendorCall,
)
from harness.judging import (
    ContentChecks,
    Correlator,
    Judgement,
    judge,
)
from harness.scenario import Scenario
from harness.scorecard import LoadFigures, ReminderTrace, Scorecard, VendorFigures
from harness.timing import Backlog, latency, longest_blackout, owed_over_time, series
from harness.traces import worst
from harness.truth import Truth, rebuild
from harness.upgrade_figures import longest_cut_over, upgrade_rows
from harness.vendor_figures import sla_results, vendor_figures
from harness.verdict import gate_results, inconclusive_reasons, verdict


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _max_recovery(recoveries: list[float | None]) -> float | None:
    """The longest recovery over the steps that ended; None if one never recovered or none
    ended."""
    if not recoveries or any(r is None for r in recoveries):
        return None
    return max(r for r in recoveries if r is not None)


def _started(journal: Journal) -> RunStarted:
    started = journal.first(RunStarted)
    if started is None:
        raise JournalError("the journal has no run.started event: nothing to score")
    return started


def _end(journal: Journal) -> float:
    ended = journal.first(RunEnded)
    return ended.t if ended else max(event.t for event in journal.events)


def judge_sends(truth: Truth, sends: Sequence[SendRecorded], scenario: Scenario, end: float
                ) -> Judgement:
    """Judge every reminder of `truth` given `sends` (in journal order), by the scenario's
    rules: the one call both the pure scorer and the engine (`harness.engine`) make."""
    return judge(truth, sends, Correlator(scenario.reminders.correlate, truth.by_ref),
                 ContentChecks(scenario.reminders.content), end,
                 {channel: scenario.window_of(channel) for channel in scenario.allowed},
                 scenario.compliance)


def _judge(journal: Journal, scenario: Scenario, truth: Truth, end: float) -> Judgement:
    return judge_sends(truth, journal.of(SendRecorded), scenario, end)


def judge_run(journal: Journal) -> Judgement:
    """Every reminder of a run judged exactly as `score` judges it (its truth, copies,
    outcome, whether it was owed and settled): for what looks at reminders one by one, as
    `notifychaos compare` does."""
    return _judge(journal, _started(journal).scenario, rebuild(journal), _end(journal))


def score(journal: Journal) -> Scorecard:
    """Score a run from its journal alone; the scenario comes from its `run.started` event."""
    return scored(journal)[0]


def scored(journal: Journal) -> tuple[Scorecard, Judgement]:
    """The run's scorecard and the judgement it was made from, judged once (for what needs
    both, as `notifychaos compare` does)."""
    started = _started(journal)
    scenario = started.scenario
    end = _end(journal)
    truth = rebuild(journal)
    judgement = _judge(journal, scenario, truth, end)
    settled = judgement.settled
    runs = step_runs(journal, scenario, end)
    load_started = journal.first(LoadStarted)
    fold = fold_for(journal, scenario, runs)
    for order, judged in enumerate(judgement.reminders):
        fold.add(judged, order)
    facts = Facts(
        end=end, folded=fold.done(), judgement=judgement,
        unsettled=sum(1 for judged in judgement.reminders if judged.owed and not judged.settled),
        cancelled=sum(1 for judged in judgement.reminders if judged.cancelled),
        duplicates=sum(judged.extra_copies for judged in judgement.reminders),
        unmatched=judgement.unmatched,
        opted_out=len(truth.opted_out_in_run),
        sent_to_opted_out=len(judgement.sent_to_opted_out),
        sent_after_repayment=len(judgement.sent_after_repayment),
        sent_to_test_data=len(judgement.sent_to_test_data),
        pii_exposed=len(judgement.pii_exposed),
        missing_optout_notice=len(judgement.missing_optout_notice),
        # The push service and the mail server are met as the vendors are: their calls too.
        vendors=vendor_figures(journal.of(VendorCall), [*scenario.vendors, *scenario.channels]),
        worst=worst(settled, truth, runs, load_started.t if load_started else started.t))
    return card(journal, facts), judgement


def fold_for(journal: Journal, scenario: Scenario, runs: Sequence[StepRun]) -> Fold:
    """An empty fold of the reminders judged for the run of `journal` (its fault steps'
    `runs`): what the figures are made from."""
    return Fold(exposures(runs, journal), maintenance(runs), scenario.allowed)


@dataclass(frozen=True)
class Facts:
    """What a scorecard needs from the reminders and sends, however they were judged: the
    reminders folded (`harness.fold`), the defects a gate may name, the counts, the vendors'
    figures and the worst reminders' traces."""

    end: float
    """The run's end: `run.ended`, else its last event."""
    folded: Folded
    judgement: Judgement
    """The defects in judging order (the engine keeps only the first ones); its reminders
    are not read (the fold's witnesses are)."""
    unsettled: int
    cancelled: int
    duplicates: int
    unmatched: int
    opted_out: int
    sent_to_opted_out: int
    sent_after_repayment: int
    sent_to_test_data: int
    pii_exposed: int
    missing_optout_notice: int
    vendors: dict[str, VendorFigures]
    worst: list[ReminderTrace]


def card(journal: Journal, facts: Facts) -> Scorecard:
    """The scorecard from `facts` and the run's other events in `journal` (`run.*`, `load.*`,
    faults, alerts, upgrades, components, app opens and the truth of who opened the app)."""
    started = _started(journal)
    scenario = started.scenario
    ended = journal.first(RunEnded)
    end = facts.end
    load_started = journal.first(LoadStarted)
    t0 = load_started.t if load_started else started.t
    toxiproxy = next((c for c in journal.of(ComponentReady) if c.component == "toxiproxy"), None)
    folded = facts.folded
    counts = folded.outcomes
    backlog = Backlog(folded.due, folded.waited)
    runs = step_runs(journal, scenario, end)
    faults = fault_rows(runs, journal, folded.exposed, backlog, t0)
    shares = channel_shares(folded.outside, scenario.allowed)
    upgrades = upgrade_rows(journal, scenario, t0)
    expected = [row for row in faults if row.expect_alert]
    detections = [row.detection for row in expected if row.detection is not None]
    vendors = facts.vendors
    slas = sla_results(scenario.slas, vendors)
    load = journal.first(LoadFinished)
    made = Scorecard(
        scenario=scenario.name,
        status=ended.status if ended else "unfinished",
        verdict="not_judged",
        status_reason=ended.reason if ended else "",
        toxiproxy_version=toxiproxy.version if toxiproxy else "",
        seed=scenario.seed,
        versions={**started.versions, "toxiproxy": toxiproxy.version if toxiproxy else ""},
        started_at=_iso(started.t),
        ended_at=_iso(ended.t) if ended else None,
        owed=folded.owed,
        unsettled=facts.unsettled,
        cancelled=facts.cancelled,
        continuity=round(counts["on_time"] / folded.owed, 6) if folded.owed else 0.0,
        outcomes=counts,
        duplicates=facts.duplicates,
        unmatched=facts.unmatched,
        opted_out=facts.opted_out,
        sent_to_opted_out=facts.sent_to_opted_out,
        sent_after_repayment=facts.sent_after_repayment,
        sent_to_test_data=facts.sent_to_test_data,
        pii_exposed=facts.pii_exposed,
        missing_optout_notice=facts.missing_optout_notice,
        channel_mix=folded.mix,
        sms_share=shares["sms"],
        push_share=shares["push"],
        email_share=shares["email"],
        latency=latency(folded.latencies),
        longest_blackout=longest_blackout(folded.due, folded.on_time, folded.expired),
        max_recovery=_max_recovery([row.recovery for row, run in zip(faults, runs, strict=True)
                                    if run.ended]),
        alerts=len(journal.of(AlertReceived)),
        undetected_faults=len(expected) - len(detections),
        detection_time=max(detections) if detections else None,
        faults=faults,
        delivered_after_maintenance=delivered_after_maintenance(
            folded.maintained, folded.maintained_delivered),
        upgrades=upgrades,
        cut_over_gap=longest_cut_over(upgrades),
        failed_upgrades=sum(1 for row in upgrades if row.failed),
        inconclusive=inconclusive_reasons(faults),
        app=app_figures(journal, [(run.applied.t, run.until) for run in runs]),
        vendors=vendors,
        slas=slas,
        sla_breaches=len({term.vendor for term in slas if not term.met}),
        load=LoadFigures(exit_code=load.exit_code, requests=load.requests,
                         failures=load.failures) if load else None,
        gates=[],
        series=series(folded.remind_at, folded.on_time, backlog, t0, end),
        owed_over_time=owed_over_time(folded.remind_at, t0, end, run_calendar(scenario)),
        calendar=run_calendar(scenario),
        worst=facts.worst,
        passed=False,
    )
    witnesses = replace(facts.judgement, reminders=folded.witnesses)
    judged = made.model_copy(update={"gates": gate_results(scenario.gates, made, witnesses)})
    final = verdict(judged, scenario)
    return judged.model_copy(update={"verdict": final, "passed": final in (
        "passed", "failed_as_expected")})
