"""The worst reminders' stories for the report: every attempt as the mocks saw it (on which
channel), the faults in force, what each copy was worth and which personal data it showed, and
in words why the reminder ended as it did.

The worst come first by outcome (missed, wrong recipient, wrong content, late, early,
filtered, unreachable, then on time), within each those with a copy that showed personal data
(so that a failed `pii_exposed` gate's witnesses have their traces), then the slowest; at most
`WORST` of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.fault_rows import StepRun
from harness.journal import SendRecorded
from harness.judging import Copy, Judged
from harness.scorecard import Attempt, Outcome, ReminderTrace
from harness.truth import Borrower, Truth, national

WORST = 20

WORST_FIRST: tuple[Outcome, ...] = ("missed", "wrong_recipient", "wrong_content", "late",
                                     "early", "filtered", "unreachable", "on_time")
_RANK = {outcome: rank for rank, outcome in enumerate(WORST_FIRST)}


def worst(settled: Sequence[Judged], truth: Truth, runs: Sequence[StepRun], t0: float
          ) -> list[ReminderTrace]:
    """Traces of the worst settled owed reminders."""
    ranked = sorted(settled, key=lambda j: (_RANK[j.outcome],
                                            not any(copy.exposed for copy in j.copies),
                                            -(j.latency or 0.0), j.remind_at, j.reminder_id))
    return [_trace(judged, truth, runs, t0) for judged in ranked[:WORST]]


def _trace(judged: Judged, truth: Truth, runs: Sequence[StepRun], t0: float) -> ReminderTrace:
    scheduled = judged.truth.scheduled
    borrower = truth.borrowers[scheduled.borrower_id]
    return ReminderTrace(
        reminder_id=judged.reminder_id, ref=scheduled.ref, borrower_id=scheduled.borrower_id,
        outcome=judged.outcome, why=_why(judged, borrower, t0),
        remind_at=round(judged.remind_at - t0, 3), send_by=round(judged.send_by - t0, 3),
        attempts=[_attempt(judged, copy, borrower, runs, t0) for copy in judged.copies])


def _attempt(judged: Judged, copy: Copy, borrower: Borrower, runs: Sequence[StepRun],
             t0: float) -> Attempt:
    send = copy.send
    return Attempt(
        t=round(send.t - t0, 3), vendor=send.vendor, channel=send.channel, to=send.to,
        handset=send.handset,
        inbox_at=None if send.inbox_at is None else round(send.inbox_at - t0, 3),
        message_id=send.message_id,
        faults=[run.label for run in runs if run.active(send.t)],
        verdict=_copy_verdict(judged, copy, borrower), exposed=list(copy.exposed))


def _copy_verdict(judged: Judged, copy: Copy, borrower: Borrower) -> str:
    """Why this copy did or did not count."""
    send = copy.send
    if copy is judged.decisive:
        text = "on time" if copy.verdict == "on_time" else (
            f"late: arrived {_after(send.inbox_at, judged.deadlines[copy.channel])} after "
            f"{_deadline(copy)}")
    elif copy.verdict in ("on_time", "late"):
        text = ("duplicate: another copy had arrived first"
                if _first_on(judged, copy.channel) is not copy
                else f"also delivered by {copy.channel}: one copy per channel is no duplicate"
                if copy.channel in judged.deadlines else "arrived correctly")
    else:
        text = {
            "early": f"early: accepted {judged.remind_at - send.t:.2f} s before remind_at",
            "wrong_recipient": f"wrong recipient: {_not_theirs(send, borrower)}",
            "wrong_content": f"wrong content: {', '.join(copy.missing)} not found",
            "filtered": "spam folder",
            "unreachable": "the phone was off",
            "dropped": "dropped by the vendor",
        }[copy.verdict]
    if copy.channel not in judged.deadlines:
        text += f"; {copy.channel} is no channel of the scenario: it decides nothing"
    if copy.exposed:
        text += f"; showed {', '.join(copy.exposed)}"
    if judged.truth.cancelled_by(send.t):
        text += "; sent after repayment"
    if borrower.opted_out_at(send.t):
        text += "; sent after opt-out"
    return text


def _deadline(copy: Copy) -> str:
    """What a late copy missed: `send_by`, or its channel's window."""
    return "send_by" if copy.channel == "sms" else f"its {copy.channel} window"


def _first_on(judged: Judged, channel: str) -> Copy | None:
    """The copy on `channel` that is no duplicate: the deciding one, or the first to arrive."""
    decisive = judged.decisive
    if decisive is not None and decisive.channel == channel:
        return decisive
    return min((copy for copy in judged.copies if copy.channel == channel and copy.arrived),
               key=lambda copy: copy.send.inbox_at or math.inf, default=None)


def _not_theirs(send: SendRecorded, borrower: Borrower) -> str:
    """`not the borrower's number then (theirs: +86…)`, or their address or push token."""
    if send.channel == "email":
        return f"not the borrower's address (theirs: {borrower.email or 'none'})"
    if send.channel == "push":
        return f"not the borrower's push token (theirs: {borrower.device_token or 'none'})"
    return f"not the borrower's number then (theirs: {borrower.phones.current(send.t)})"


def _after(later: float | None, earlier: float) -> str:
    return "?" if later is None else f"{later - earlier:.2f} s"


def _why(judged: Judged, borrower: Borrower, t0: float) -> str:
    """The reminder's outcome in words."""
    outcome = judged.outcome
    first = {copy.verdict: copy for copy in reversed(judged.copies)
             if copy.channel in judged.deadlines}
    decisive = judged.decisive
    if decisive is not None:
        deadline = judged.deadlines[decisive.channel]
        window = "window" if decisive.channel == "sms" else f"{decisive.channel} window"
        if outcome == "on_time":
            return (f"arrived {judged.latency or 0.0:.2f} s after remind_at, within its "
                    f"{deadline - judged.remind_at:g} s {window}")
        return (f"arrived {judged.latency or 0.0:.2f} s after remind_at, "
                f"{_after(judged.delivered_at, deadline)} after its {window} closed")
    if outcome == "wrong_recipient":
        return _wrong_number(first["wrong_recipient"], borrower, t0)
    if outcome == "wrong_content":
        return _wrong_content(judged, first["wrong_content"])
    if outcome == "early":
        copy = first["early"]
        return f"sent only too early: {judged.remind_at - copy.send.t:.2f} s before remind_at"
    if outcome == "filtered":
        return "every copy that arrived landed in the spam folder"
    if outcome == "unreachable":
        return "sent correctly, but the borrower's phone was off"
    if judged.copies:
        return f"{len(judged.copies)} sent, all dropped by the vendor: none arrived"
    return "nothing was sent"


def _wrong_number(copy: Copy, borrower: Borrower, t0: float) -> str:
    send, phones = copy.send, borrower.phones
    if send.channel != "sms":
        return f"sent to {send.to}, {_not_theirs(send, borrower)}"
    now = phones.current(send.t)
    for index, phone in enumerate(phones.values):
        if national(phone) != national(send.to):
            continue
        if phones.starts[index] > send.t:
            return (f"sent to {send.to}, the borrower's number only from "
                    f"{phones.starts[index] - t0:.1f} s (then {now})")
        return (f"sent to {send.to}, the borrower's number until "
                f"{phones.end(index) - t0:.1f} s (now {now})")
    return f"sent to {send.to}, never the borrower's number (theirs: {now})"


def _wrong_content(judged: Judged, copy: Copy) -> str:
    truths = judged.truth.content_truths(copy.send.t)
    expected = ", ".join(f"{name} {truths[0][name]}" for name in ("amount", "due_date"))
    return (f"the text {copy.send.body!r} lacks {', '.join(copy.missing)} (the truth then: "
            f"{expected})")
