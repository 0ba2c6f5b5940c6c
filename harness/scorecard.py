"""The scorecard: the typed verdict of one run, and the registry of figures gates may name.

`harness.continuity.score` makes it from a journal; the console summary, `scorecard.json`,
JUnit, the HTML report, the gate parser and the README table all read the figures from
`FIGURES`, so adding a figure touches this one place (and the scorer that measures it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

Outcome = Literal["on_time", "late", "missed", "early", "filtered", "unreachable",
                  "wrong_content", "wrong_recipient"]
OUTCOMES: tuple[Outcome, ...] = ("on_time", "late", "missed", "early", "filtered", "unreachable",
                                 "wrong_content", "wrong_recipient")

Verdict = Literal["passed", "failed", "inconclusive", "failed_as_expected", "not_judged"]
"""passed: every gate held and every fault was seen to act; failed: a gate failed (or, with
`fail_on_sla_breach`, a vendor broke its SLA); inconclusive: the gates held but a fault touched
nothing or no reminder was exposed to it, so the run cannot tell; failed_as_expected: a
demonstration scenario failed exactly the gates it says it fails; not_judged: the run did not
complete (interrupted, or the harness failed)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Latency(_Model):
    """Seconds from `remind_at` to the inbox, over reminders that arrived correctly."""

    p50: float | None
    p95: float | None
    p99: float | None


class FaultFigures(_Model):
    """One applied step: when (seconds from the start of load), what it measurably touched,
    how soon the notifier alerted about it, and what became of the reminders exposed to it.

    `outcomes_exposed` has every outcome, so the row adds up to `exposed`.
    """

    step: int
    fault: str
    link: str
    applied_at: float
    reverted_at: float | None
    touched: int
    effect: str
    expect_alert: bool
    detection: float | None
    exposed: int
    outcomes_exposed: dict[Outcome, int]
    duplicates_exposed: int
    recovery: float | None
    channels_exposed: dict[str, int] = {}
    """Of the reminders exposed, how many were delivered correctly by each channel."""


class UpgradeFigures(_Model):
    """One upgrade step: when version A's stop began (seconds from the start of load), how it
    ended (`outcome` as journaled: upgraded, migration_failed, not_ready, interrupted; or
    never_ran, when the journal has no end of it) and why,
    the migration's exit code (None: timed out, or none given) and seconds, and the cut-over gap
    (stop began to version B healthy; None when B never was)."""

    step: int
    at: float
    outcome: str
    reason: str
    migration_exit: int | None
    migration_seconds: float | None
    cut_over_gap: float | None

    @property
    def failed(self) -> bool:
        """Whether the cut-over did not reach a healthy version B (rolled back, interrupted, or
        never carried out)."""
        return self.outcome != "upgraded"

    def describe(self) -> str:
        """`step 2 upgrade at 20.0s: upgraded; migration exit 0 in 0.8s; cut-over gap 2.7s`,
        or how it failed and why."""
        head = f"step {self.step} upgrade at {self.at:.1f}s"
        if self.failed:
            return f"{head}: {self.outcome.replace('_', ' ')}: {self.reason}"
        migration = ("no migration" if self.migration_seconds is None
                     else f"migration exit {self.migration_exit} in {self.migration_seconds:.1f}s")
        gap = "-" if self.cut_over_gap is None else f"{self.cut_over_gap:.1f}s"
        return f"{head}: upgraded; {migration}; cut-over gap {gap}"


class AppFigures(_Model):
    """The borrower app's view of the next installment, as borrowers opening it met it:
    `answered` opens got a 200 with a view, `correct` ones showed the truth of that moment
    (the installment due next, its amount and due date). `*_in_faults` count the opens made
    while a fault step was in force."""

    opens: int
    answered: int
    correct: int
    opens_in_faults: int
    answered_in_faults: int
    availability: float | None
    correctness: float | None
    availability_in_faults: float | None


class LoadFigures(_Model):
    """What the load generator did."""

    exit_code: int | None
    requests: int
    failures: int


class VendorFigures(_Model):
    """One vendor's API as the notifier met it. Availability and latency are over the calls
    that send (`sends`); lookups of past sends (`reads`) are counted apart."""

    sends: int
    accepted: int
    rejected: int
    refused: int
    lost: int
    reads: int
    availability: float | None
    p95_latency: float | None


class SlaResult(_Model):
    """One term of a vendor's SLA: a verdict about the vendor, kept apart from the gates."""

    vendor: str
    term: str
    value: float | None
    met: bool


class GateResult(_Model):
    """One gate's verdict, with the reminders that prove a failure (at most a few)."""

    expr: str
    value: float | None
    passed: bool
    witnesses: list[str] = []


class Attempt(_Model):
    """One send of a reminder as the vendor mock saw it (times from the start of load)."""

    t: float
    vendor: str
    channel: str = "sms"
    to: str
    handset: str
    inbox_at: float | None
    message_id: str
    faults: list[str]
    verdict: str
    exposed: list[str] = []
    """The personal-data fields its body showed beyond what the scenario allows."""


class ReminderTrace(_Model):
    """A reminder's story: the truth, every attempt, and why it ended as it did."""

    reminder_id: str
    ref: str
    borrower_id: str
    outcome: Outcome
    why: str
    remind_at: float
    send_by: float
    attempts: list[Attempt]


class Sample(_Model):
    """The run at one moment (seconds from the start of load): reminders fallen due so far,
    delivered on time so far, and the backlog (due, deliverable, not yet delivered)."""

    t: float
    due: int
    on_time: int
    backlog: int


class Bucket(_Model):
    """Reminders that fell due from `start` until `end` (seconds from the start of load):
    one calendar day of a compressed month (`label` its date, such as "Dec 29"), or a few
    seconds of a run without one."""

    start: float
    end: float
    owed: int
    label: str = ""


class Calendar(_Model):
    """The compressed month of a run with `reminders.month`: the calendar time at the start of
    load and how many calendar seconds pass each second."""

    start: datetime
    speed: float

    def at(self, t: float) -> datetime:
        """The calendar time `t` seconds after the start of load."""
        return self.start + timedelta(seconds=t * self.speed)


VERSIONED = ("notifychaos", "toxiproxy", "locust", "python")
"""What a scorecard names the version of, in this order."""


class Scorecard(_Model):
    """Everything a run is judged on; `scorecard.json` is this model."""

    scenario: str
    status: str
    verdict: Verdict
    status_reason: str = ""
    """Why a run that did not complete ended (its `run.ended` reason: the error, or the
    interruption); empty for a completed run."""
    toxiproxy_version: str
    seed: int = 0
    versions: dict[str, str] = {}
    """The versions the run recorded (see VERSIONED); a run from before they were recorded
    has none."""
    started_at: str
    ended_at: str | None
    owed: int
    unsettled: int
    cancelled: int
    continuity: float
    outcomes: dict[Outcome, int]
    duplicates: int
    unmatched: int
    opted_out: int
    sent_to_opted_out: int
    sent_after_repayment: int
    sent_to_test_data: int = 0
    """0 in a scorecard from before test data was counted (no run could leak it then)."""
    pii_exposed: int = 0
    missing_optout_notice: int = 0
    """Both 0 in a scorecard from before messages were checked for them."""
    channel_mix: dict[str, int] = {}
    """Reminders delivered correctly, by the channel of the copy that decided."""
    sms_share: float | None = None
    push_share: float | None = None
    email_share: float | None = None
    """Of the reminders delivered correctly and exposed to no fault, the share each channel
    delivered (None when there were none)."""
    app: AppFigures | None = None
    """None when no borrower opened the app."""
    latency: Latency
    longest_blackout: float
    max_recovery: float | None
    alerts: int
    undetected_faults: int
    detection_time: float | None
    faults: list[FaultFigures]
    delivered_after_maintenance: float | None = None
    """None without a maintenance window that exposed a reminder (and from before they
    existed)."""
    upgrades: list[UpgradeFigures] = []
    """The upgrade steps (a scorecard from before upgrades existed has none)."""
    cut_over_gap: float | None = None
    failed_upgrades: int = 0
    inconclusive: list[str]
    vendors: dict[str, VendorFigures]
    slas: list[SlaResult]
    sla_breaches: int
    load: LoadFigures | None
    gates: list[GateResult]
    series: list[Sample]
    owed_over_time: list[Bucket] = []
    """Owed reminders per calendar day (with a month) or per few seconds, by when they fell due
    (a scorecard from before they were counted has none)."""
    calendar: Calendar | None = None
    """The run's compressed month, if it had one."""
    worst: list[ReminderTrace]
    passed: bool

    def metric(self, name: str) -> float | None:
        """The figure a gate names (see FIGURES)."""
        return FIGURES[name].value(self)

    @property
    def error(self) -> str:
        """What ended a failed run; empty for any other (an interruption's reason only
        restates its status)."""
        return self.status_reason if self.status == "failed" else ""

    def provenance(self) -> str:
        """What a rerun must match to give the same fates: `seed 42, notifychaos 0.1.0,
        toxiproxy 2.12.0, locust 2.47.0, python 3.11.7` (unknown versions left out)."""
        known = [f"{name} {self.versions[name]}" for name in VERSIONED if self.versions.get(name)]
        return ", ".join([f"seed {self.seed}", *known])


@dataclass(frozen=True)
class Figure:
    """A scorecard figure a gate may name: what it means and how to read it off a scorecard."""

    name: str
    about: str
    value: Callable[[Scorecard], float | None]
    better: Literal["higher", "lower"] | None = "lower"
    """Which way is better, for `notifychaos compare`; None for a figure that is neither (how
    many reminders were owed)."""
    unit: Literal["share", "count", "seconds"] = "count"


def _outcome(name: Outcome, about: str, better: Literal["higher", "lower"] = "lower") -> Figure:
    return Figure(name, about, lambda card: float(card.outcomes[name]), better)


def _field(name: str, about: str, better: Literal["higher", "lower"] | None = "lower",
           unit: Literal["share", "count", "seconds"] = "count") -> Figure:
    def value(card: Scorecard) -> float | None:
        raw = getattr(card, name)
        return None if raw is None else float(raw)

    return Figure(name, about, value, better, unit)


def _latency(which: Literal["p50", "p95", "p99"], about: str) -> Figure:
    def value(card: Scorecard) -> float | None:
        raw: float | None = getattr(card.latency, which)
        return raw

    return Figure(f"{which}_latency", about, value, "lower", "seconds")


def _app(name: str, about: str, which: Literal["availability", "correctness",
                                                "availability_in_faults"]) -> Figure:
    def value(card: Scorecard) -> float | None:
        raw: float | None = None if card.app is None else getattr(card.app, which)
        return raw

    return Figure(name, about, value, "higher", "share")


FIGURES: dict[str, Figure] = {figure.name: figure for figure in (
    _field("continuity", "on-time reminders / owed reminders (0..1)", "higher", "share"),
    _field("owed", "reminders owed and settled during the run", None),
    _outcome("on_time", "reminders that reached the inbox within their window, right number "
             "and content", "higher"),
    _outcome("late", "reminders that arrived correctly, but after their window"),
    _outcome("missed", "reminders of which nothing correct arrived"),
    _outcome("early", "reminders that arrived only before the bank's remind_at"),
    _outcome("filtered", "reminders that reached only the spam folder"),
    _outcome("unreachable", "reminders sent correctly whose every copy met a phone that was off"),
    _outcome("wrong_content", "reminders delivered only with a wrong amount, due date or name"),
    _outcome("wrong_recipient", "reminders delivered only to a number that is not the "
             "borrower's (a stale or wrong one)"),
    _field("duplicates", "extra copies of a reminder on one channel that reached a borrower "
           "(one copy per channel is none)"),
    _field("unmatched", "messages that correlate with no reminder and carry no leaked test "
           "data"),
    _field("cancelled", "reminders cancelled by a repayment before they were delivered", None),
    _field("opted_out", "borrowers who opted out (STOP reply or at the bank) during the run",
           None),
    _field("sent_to_opted_out", "messages sent to a borrower after they opted out"),
    _field("sent_after_repayment", "messages sent for a reminder after its installment was "
           "repaid"),
    _field("sent_to_test_data", "messages sent for a test-environment record leaked into the "
           "feed (to a test number or with a test reference)"),
    _latency("p50", "median seconds from remind_at to the inbox"),
    _latency("p95", "95th percentile seconds from remind_at to the inbox"),
    _latency("p99", "99th percentile seconds from remind_at to the inbox"),
    _field("longest_blackout", "longest seconds during which reminders were owed and none was "
           "delivered on time", unit="seconds"),
    _field("max_recovery", "longest seconds after a fault ended until the backlog was back to "
           "its pre-fault level (none if it never was)", unit="seconds"),
    _field("alerts", "alerts the notifier sent to the alert sink", None),
    _field("undetected_faults", "fault steps the notifier should have alerted about and did "
           "not (while active or within the grace after)"),
    _field("detection_time", "longest seconds from a fault's start to the notifier's first "
           "alert about it, over the faults it should alert about", unit="seconds"),
    _field("delivered_after_maintenance", "share of the reminders owed during a maintenance "
           "window (process.stop) that were delivered correctly, on time or late (none when no "
           "window exposed any)", "higher", "share"),
    _field("cut_over_gap", "longest seconds of an upgrade from stopping version A to version B "
           "healthy (0 when the scenario upgrades nothing; none when version B never got "
           "ready)",
           unit="seconds"),
    _field("pii_exposed", "messages (any channel) that showed a borrower's national id, "
           "account number or phone beyond what compliance.visible allows"),
    _field("missing_optout_notice", "messages (any channel) for a reminder without the opt-out "
           "notice compliance.optout_notice asks for (0 when it asks none)"),
    _field("sms_share", "of the reminders delivered correctly outside every fault, the share "
           "delivered by SMS", "higher", "share"),
    _field("push_share", "of the reminders delivered correctly outside every fault, the share "
           "delivered by push", None, "share"),
    _field("email_share", "of the reminders delivered correctly outside every fault, the share "
           "delivered by e-mail", None, "share"),
    _app("app_availability", "share of the borrowers' app opens answered with their next "
         "installment", "availability"),
    _app("app_correctness", "share of the app's answers that showed the truth of that moment",
         "correctness"),
    _app("app_availability_in_faults", "share of the app opens made while a fault was in force "
         "that were answered", "availability_in_faults"),
    _field("failed_upgrades", "upgrade steps rolled back to version A: the migration failed or "
           "version B never got ready (any fails the run)"),
)}
