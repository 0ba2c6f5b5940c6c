"""Judging every reminder of a run: which sends correlate with it, what each copy was worth,
its outcome, whether it was owed, and the sends that were defects (docs/target-contract.md §4).

Rules:

- **Correlation then content.** A send correlates to a reminder by its client reference (with
  `correlate.client_ref`) or by the `ref` group of `correlate.body`; nothing else is needed.
  Its content is then checked: every check of `reminders.content` must be found in the body
  against some version of the truth accepted when the vendor accepted it (`CHANGE_GRACE`). A
  wrong amount is `wrong_content`, never missed and unmatched. Unmatched: arrived messages
  (inbox or spam folder) that correlate with no reminder and are no test data.
- **Channels.** A copy's channel is the send's (`sms`, `push`, `email`). Each channel the
  scenario allows (`Scenario.allowed`: SMS and those of `channels`) has its deadline: `send_by`
  for SMS, `remind_at` + the channel's window for the others; the reminder's window *closes*
  at the latest of them. A copy on a channel the scenario does not allow is still judged (it is
  a real message: it counts in duplicates, defects and compliance) against `send_by`, but it
  cannot decide the reminder's outcome nor stop it being owed.
- **A copy**, in order of vendor acceptance: `early` when accepted more than `EARLY_SLACK`
  before `remind_at`; else `wrong_recipient` when `to` is not the borrower's (by SMS a number
  they had then, by e-mail their address in any case, by push their app's token); else
  `wrong_content` when a check fails; else by the handset: the inbox is `on_time` (by its
  channel's deadline) or `late`, the spam folder `filtered`, a phone that was off
  `unreachable`, a vendor that dropped it `dropped`.
- **Outcome.** The correct copy on an allowed channel that reached the inbox first decides (on
  time or late), whatever its channel. Without one, by priority over the copies on allowed
  channels: wrong recipient or wrong content (whichever came first), filtered, early,
  unreachable, missed. `duplicates`: copies that arrived beyond the first on their channel,
  over every reminder, owed or not (a copy too many is a defect either way; one per channel is
  not).
- **Owed.** A reminder is owed unless it was cancelled (repaid, before its window closed) and
  the cancellation took effect before its first correct delivery, or its borrower was opted out
  (past the grace) at some moment of [remind_at, window closed] before its first correct
  delivery. So a reminder already due when its borrower replied STOP is owed only if it came
  first. Settled: owed, and delivered or its window closed before the run ended.
- **Defects.** `sent_after_repayment`: sends correlated to a reminder after its cancellation took
  effect. `sent_to_opted_out`: sends to an opted-out borrower (the correlated reminder's, or
  for an uncorrelated send whoever had that number, address or token), after their opt-out
  took effect.
  `sent_to_test_data`: sends, arrived or not, that carry the reference of a test-environment
  record the ledger leaked (client reference or the body's `ref`) or went to its number. They
  are counted there and not in `unmatched` as well, so that `unmatched` keeps meaning "sent
  for nothing we know of" and a leak is one figure, not two.
- **Compliance** (`harness.compliance` says what a text shows). `pii_exposed`: arrived messages,
  on any channel, correlated or not, that show a personal-data field of the borrower they are
  about (the correlated reminder's, else whoever had that number, address or token) beyond
  `compliance.visible`; each names the fields. `missing_optout_notice`: arrived copies of a
  reminder without `compliance.optout_notice` (none when the scenario asks for none).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.compliance import PersonalField, exposed, lacks_notice
from harness.journal import SendRecorded
from harness.scenario import CONTENT_FIELDS, Compliance, Correlation, content_pattern
from harness.scorecard import OUTCOMES, Outcome
from harness.truth import Borrower, ReminderTruth, Truth
from mocks.manifest import Channel

EARLY_SLACK = 0.05
"""A send accepted more than this many seconds before `remind_at` is early."""

CopyVerdict = Literal["on_time", "late", "early", "wrong_recipient", "wrong_content",
                      "filtered", "unreachable", "dropped"]

_PRIORITY: tuple[Outcome, ...] = ("filtered", "early", "unreachable")
_Sent = list[tuple[SendRecorded, tuple[PersonalField, ...]]]
"""A reminder's sends, each with the personal-data fields it exposed."""
_FIELD_ONLY = re.compile(r"\{(" + "|".join(CONTENT_FIELDS) + r")\}")


@dataclass(frozen=True)
class Copy:
    """One send correlated to a reminder, and what it was worth."""

    send: SendRecorded
    verdict: CopyVerdict
    missing: tuple[str, ...] = ()
    """The content checks not found in the body (wrong content)."""
    exposed: tuple[PersonalField, ...] = ()
    """The personal-data fields its body showed beyond the scenario's allowance, if it
    arrived."""

    @property
    def arrived(self) -> bool:
        """Whether a person could see it (inbox or spam folder)."""
        return _arrived(self.send)

    @property
    def channel(self) -> Channel:
        return self.send.channel


@dataclass(frozen=True)
class Judged:
    """One scheduled reminder, judged."""

    truth: ReminderTruth
    copies: tuple[Copy, ...]
    outcome: Outcome
    decisive: Copy | None
    """The correct copy on an allowed channel that reached the inbox first, if any."""
    owed: bool
    cancelled: bool
    settled: bool
    deadlines: Mapping[Channel, float]
    """Each allowed channel's deadline: a copy on it in the inbox by then is on time."""

    @property
    def reminder_id(self) -> str:
        return self.truth.scheduled.reminder_id

    @property
    def scheduled_t(self) -> float:
        """When the ledger scheduled it (journal time)."""
        return self.truth.scheduled.t

    @property
    def remind_at(self) -> float:
        return self.truth.scheduled.remind_at

    @property
    def send_by(self) -> float:
        """The SMS deadline, as the ledger scheduled it."""
        return self.truth.scheduled.send_by

    @property
    def closes(self) -> float:
        """When the window of its last allowed channel closes."""
        return max(self.deadlines.values())

    @property
    def channel(self) -> Channel | None:
        """The channel of the deciding copy, if one decided."""
        return None if self.decisive is None else self.decisive.channel

    @property
    def delivered_at(self) -> float | None:
        """When the deciding copy reached the inbox."""
        return None if self.decisive is None else self.decisive.send.inbox_at

    @property
    def latency(self) -> float | None:
        """Seconds from `remind_at` to the inbox, for a reminder delivered correctly."""
        arrived = self.delivered_at
        return None if arrived is None else arrived - self.remind_at

    @property
    def state(self) -> str:
        """Its outcome once owed and settled, else `cancelled`, `unsettled` (owed, its window
        still open at the run's end) or `not owed`: what two runs' reminders are compared by."""
        if self.settled:
            return self.outcome
        if self.cancelled:
            return "cancelled"
        return "unsettled" if self.owed else "not owed"

    @property
    def extra_copies(self) -> int:
        """Copies that arrived beyond the first on their channel."""
        arrived = Counter(copy.channel for copy in self.copies if copy.arrived)
        return sum(count - 1 for count in arrived.values())

    @property
    def waited_until(self) -> float:
        """The end of its wait: its correct delivery, or the close of its window."""
        arrived = self.delivered_at
        return self.closes if arrived is None else arrived


@dataclass(frozen=True)
class Defect:
    """A send that should not have been made, and the reminder it carried (if it correlated)."""

    send: SendRecorded
    reminder_id: str | None


@dataclass(frozen=True)
class Exposure(Defect):
    """A message that showed personal data, and which fields."""

    fields: tuple[PersonalField, ...]


@dataclass(frozen=True)
class Judgement:
    """Every scheduled reminder judged, and the sends that were defects."""

    reminders: tuple[Judged, ...]
    unmatched: int
    sent_to_opted_out: tuple[Defect, ...]
    sent_after_repayment: tuple[Defect, ...]
    sent_to_test_data: tuple[Defect, ...]
    """Each with the test record's reminder id."""
    pii_exposed: tuple[Exposure, ...]
    missing_optout_notice: tuple[Defect, ...]

    @property
    def settled(self) -> list[Judged]:
        """The owed reminders whose outcome is decided: the ones the scorecard counts."""
        return [judged for judged in self.reminders if judged.settled]


def count_outcomes(reminders: Iterable[Judged]) -> dict[Outcome, int]:
    """How many of `reminders` ended in each outcome (every outcome present)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for judged in reminders:
        counts[judged.outcome] += 1
    return counts


class ContentChecks:
    """The scenario's content checks, applied to a body against one version of the truth."""

    def __init__(self, checks: dict[str, str]) -> None:
        # Most checks are one bare field: a substring test spares compiling a pattern per
        # reminder.
        self._checks = [(name, template, bare.group(1) if bare else None)
                        for name, template in checks.items()
                        for bare in [_FIELD_ONLY.fullmatch(template)]]

    def missing(self, body: str, truth: dict[str, str]) -> tuple[str, ...]:
        """The names of the checks not found in `body`, in the scenario's order."""
        return tuple(name for name, template, bare in self._checks
                     if (truth[bare] not in body if bare is not None
                         else re.search(content_pattern(template, truth), body) is None))


class Correlator:
    """Finds the reminder a send carries, by client reference or by the body's `ref`."""

    def __init__(self, rule: Correlation, by_ref: dict[str, str]) -> None:
        self._client_ref = rule.client_ref
        self._body = re.compile(rule.body) if rule.body else None
        self._by_ref = by_ref

    def refs(self, send: SendRecorded) -> list[str]:
        """The references `send` carries: its client reference (with `client_ref`), then the
        body's `ref`."""
        found = [send.client_ref] if self._client_ref and send.client_ref else []
        match = self._body.search(send.body) if self._body else None
        return found if match is None else [*found, match.group("ref")]

    def reminder_of(self, send: SendRecorded) -> str | None:
        """The id of the reminder `send` carries, or None."""
        return next((self._by_ref[ref] for ref in self.refs(send) if ref in self._by_ref),
                    None)


def judge(truth: Truth, sends: Sequence[SendRecorded], correlator: Correlator,
          checks: ContentChecks, end: float, windows: Mapping[Channel, float],
          compliance: Compliance) -> Judgement:
    """Judge every scheduled reminder of the run, given every send; `end` is the run's end,
    `windows` the window of each allowed channel (SMS's included, though `send_by` decides)."""
    copies: dict[str, _Sent] = defaultdict(list)
    uncorrelated: list[SendRecorded] = []
    test_data: list[Defect] = []
    pii: list[Exposure] = []
    for send in sorted(sends, key=lambda s: s.t):
        found = correlator.reminder_of(send)
        test = truth.test_record(correlator.refs(send), send.to if send.channel == "sms" else "")
        if test is not None:
            test_data.append(Defect(send, test))
        about = (truth.recipient(send) if found is None
                 else truth.borrowers[truth.reminders[found].scheduled.borrower_id])
        fields = (exposed(send.body, about.personal_data, compliance.visible)
                  if about is not None and _arrived(send) else ())
        if fields:
            pii.append(Exposure(send, found, fields))
        if found is not None:
            copies[found].append((send, fields))
        elif test is None:
            uncorrelated.append(send)
    reminders = tuple(
        _judge_one(reminder, truth.borrowers[reminder.scheduled.borrower_id],
                   copies.get(rid, []), checks, end, windows)
        for rid, reminder in truth.reminders.items())
    notice = compliance.optout_notice
    return Judgement(
        reminders=reminders,
        unmatched=sum(1 for send in uncorrelated if _arrived(send)),
        sent_to_opted_out=tuple(_to_opted_out(truth, copies, uncorrelated)),
        sent_after_repayment=tuple(
            Defect(send, rid) for rid, sent in copies.items() for send, _ in sent
            if truth.reminders[rid].cancelled_by(send.t)),
        sent_to_test_data=tuple(test_data),
        pii_exposed=tuple(pii),
        missing_optout_notice=() if notice is None else tuple(
            Defect(send, rid) for rid, sent in copies.items() for send, _ in sent
            if _arrived(send) and lacks_notice(send.body, notice)))


def _arrived(send: SendRecorded) -> bool:
    return send.handset in ("delivered", "spam")


def _judge_one(reminder: ReminderTruth, borrower: Borrower, sends: _Sent,
               checks: ContentChecks, end: float, windows: Mapping[Channel, float]) -> Judged:
    scheduled = reminder.scheduled
    deadlines = {channel: scheduled.send_by if channel == "sms"
                 else scheduled.remind_at + window for channel, window in windows.items()}
    copies = tuple(_copy(send, reminder, borrower, checks,
                         deadlines.get(send.channel, scheduled.send_by), fields)
                   for send, fields in sends)
    allowed = [copy for copy in copies if copy.channel in deadlines]
    correct = [copy for copy in allowed if copy.verdict in ("on_time", "late")]
    decisive = min(correct, key=lambda c: c.send.inbox_at or math.inf, default=None)
    first_correct = math.inf if decisive is None else decisive.send.t
    closes = max(deadlines.values())
    cancelled = (reminder.cancelled_at is not None and reminder.cancelled_at < closes
                 and reminder.cancelled_by(first_correct))
    opted_out = borrower.opted_out_during(scheduled.remind_at, min(closes, first_correct))
    owed = not cancelled and not opted_out
    return Judged(truth=reminder, copies=copies, outcome=_outcome(allowed, decisive),
                  decisive=decisive, owed=owed, cancelled=cancelled,
                  settled=owed and (decisive is not None or closes <= end),
                  deadlines=deadlines)


def _copy(send: SendRecorded, reminder: ReminderTruth, borrower: Borrower,
          checks: ContentChecks, deadline: float, fields: tuple[PersonalField, ...]) -> Copy:
    scheduled = reminder.scheduled
    if send.t < scheduled.remind_at - EARLY_SLACK:
        return Copy(send, "early", exposed=fields)
    if not borrower.reached_by(send):
        return Copy(send, "wrong_recipient", exposed=fields)
    misses = [checks.missing(send.body, truth) for truth in reminder.content_truths(send.t)]
    if all(misses):
        return Copy(send, "wrong_content", min(misses, key=len), fields)
    if send.handset == "delivered":
        on_time = send.inbox_at is not None and send.inbox_at <= deadline
        return Copy(send, "on_time" if on_time else "late", exposed=fields)
    if send.handset == "spam":
        return Copy(send, "filtered", exposed=fields)
    return Copy(send, "unreachable" if send.handset == "absent" else "dropped")


def _outcome(copies: Sequence[Copy], decisive: Copy | None) -> Outcome:
    if decisive is not None:
        return "on_time" if decisive.verdict == "on_time" else "late"
    verdicts = [copy.verdict for copy in copies]
    for verdict in verdicts:
        if verdict == "wrong_recipient":
            return "wrong_recipient"
        if verdict == "wrong_content":
            return "wrong_content"
    return next((outcome for outcome in _PRIORITY if outcome in verdicts), "missed")


def _to_opted_out(truth: Truth, copies: dict[str, _Sent],
                  uncorrelated: Iterable[SendRecorded]) -> Iterable[Defect]:
    for rid, sent in copies.items():
        borrower = truth.borrowers[truth.reminders[rid].scheduled.borrower_id]
        yield from (Defect(send, rid) for send, _ in sent if borrower.opted_out_at(send.t))
    for send in uncorrelated:
        owner = truth.recipient(send)
        if owner is not None and owner.opted_out_at(send.t):
            yield Defect(send, None)
