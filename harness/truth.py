"""The ledger's truth over time, rebuilt from the journal: each borrower's phones and opt-outs,
each reminder's amounts and cancellation (docs/target-contract.md §3).

Rules:

- A change takes effect `CHANGE_GRACE` (1 s) after its journal time; during that second both
  the old and the new truth are accepted (a request already in flight was right when it left).
- A borrower's first appearance (`reminder.scheduled`) gives their truth since before the run;
  later ones and `borrower.changed` give changes at their time. National forms of a number
  (`+86…`, `0086…`, bare 11 digits) are one number. Their e-mail address, push token, national
  id and account come from their first appearance and do not change during a run.
- Opt-outs: `opted_out` of a borrower's first appearance, `borrower.changed` (the bank's record),
  and STOP replies (`borrower.opted_out`), which belong to the borrower who had that phone at the
  time; an opt-out made in the app (`vendor` "app") is journaled with the borrower's phone and
  counts exactly as a STOP. A later `reminder.scheduled` can add an opt-out the journal did not
  show, never remove one. A `borrower.changed` saying `opted_out: false` is an opt-in at the
  bank and ends a STOP too, unless it changes the phone (the ledger may not know of STOP
  replies; a new number does not undo a borrower's STOP).
- A reminder's amount changes with `reminder.changed partially_repaid`; `repaid` cancels it.
- Test data: the records of the test environment the ledger journaled as leaked into its feed
  (`fault.touched` of `test_leak`, `mocks.ledger.leaked_record`), by reference and by number;
  they are never reminders of the run.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, TypeVar

from harness.compliance import PersonalData
from harness.journal import (
    BorrowerChanged,
    BorrowerOptedOut,
    FaultTouched,
    Journal,
    ReminderChanged,
    ReminderScheduled,
    SendRecorded,
)
from mocks.ledger import leaked_record

CHANGE_GRACE = 1.0
"""Seconds after its journal time until a change of the truth takes effect; in between, the old
and the new truth are both accepted."""

T = TypeVar("T")
_NOT_DIGIT = re.compile(r"\D")


@functools.lru_cache(maxsize=1 << 16)
def national(phone: str) -> str:
    """A phone number's national digits: `+8613800000001`, `008613800000001` and `13800000001`
    are one number."""
    digits = _NOT_DIGIT.sub("", phone)
    if digits.startswith("0086"):
        return digits[4:]
    if digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    return digits


@dataclass(frozen=True)
class History(Generic[T]):
    """A value over time: `values[i]` holds from `starts[i]` until `starts[i + 1]` (the first one
    since before the run, `starts[0]` being -inf)."""

    starts: tuple[float, ...]
    values: tuple[T, ...]

    def end(self, index: int) -> float:
        """When `values[index]` stopped holding (inf if it still does)."""
        return self.starts[index + 1] if index + 1 < len(self.starts) else math.inf

    def accepted(self, t: float) -> list[int]:
        """Indexes of the values accepted at `t`, newest first: the one holding, and those
        replaced less than CHANGE_GRACE before."""
        index = bisect.bisect_right(self.starts, t) - 1
        found = [index] if index >= 0 else []
        while index > 0 and t < self.starts[index] + CHANGE_GRACE:
            index -= 1
            found.append(index)
        return found

    def current(self, t: float) -> T:
        """The value holding at `t` (the first one before any change)."""
        return self.values[max(0, bisect.bisect_right(self.starts, t) - 1)]


@dataclass(frozen=True)
class Borrower:
    """One borrower's truth over time: phone numbers, the intervals they were opted out, and
    what does not change during a run ("" when the journal does not say)."""

    borrower_id: str
    phones: History[str]
    opted_out: tuple[tuple[float, float], ...]
    """Intervals [start, end) during which the truth said "send nothing"."""
    email: str = ""
    device_token: str = ""
    national_id: str = ""
    account: str = ""

    def has_phone(self, phone: str, t: float) -> bool:
        """Whether `phone` is an accepted number of the borrower's at `t` (grace included)."""
        wanted = national(phone)
        return any(national(self.phones.values[i]) == wanted for i in self.phones.accepted(t))

    def reached_by(self, send: SendRecorded) -> bool:
        """Whether `send` went to this borrower: by SMS to a number of theirs then, by e-mail to
        their address (in any case), by push to their app's token."""
        if send.channel == "email":
            return bool(self.email) and send.to.lower() == self.email.lower()
        if send.channel == "push":
            return bool(self.device_token) and send.to == self.device_token
        return self.has_phone(send.to, send.t)

    @property
    def personal_data(self) -> PersonalData:
        """What no message may show beyond the scenario's allowance: every number they had."""
        return PersonalData(
            national_id=self.national_id, account=self.account,
            phones=tuple(dict.fromkeys(national(phone) for phone in self.phones.values)))

    def opted_out_at(self, t: float) -> bool:
        """Whether a send at `t` reaches a borrower who opted out (past the grace)."""
        return any(start + CHANGE_GRACE <= t < end for start, end in self.opted_out)

    def opted_out_during(self, start: float, end: float) -> bool:
        """Whether the borrower was opted out (past the grace) at some moment of [start, end]."""
        return any(since + CHANGE_GRACE <= end and until > start
                   for since, until in self.opted_out)


@dataclass(frozen=True)
class ReminderTruth:
    """One reminder as scheduled, its amount over time, and when it was cancelled (repaid)."""

    scheduled: ReminderScheduled
    amounts: History[str]
    cancelled_at: float | None

    def content_truths(self, t: float) -> list[dict[str, str]]:
        """The truth a message accepted at `t` may carry (each version accepted then), as the
        fields of `harness.scenario.CONTENT_FIELDS`."""
        return [self._fields(self.amounts.values[i]) for i in self.amounts.accepted(t)]

    def _fields(self, amount: str) -> dict[str, str]:
        year, month, day = self.scheduled.due_date.split("-")
        return {"amount": amount, "amount_grouped": f"{Decimal(amount):,.2f}",
                "due_date": self.scheduled.due_date, "due_year": year, "due_month": month,
                "due_day": day, "name": self.scheduled.name, "ref": self.scheduled.ref}

    def cancelled_by(self, t: float) -> bool:
        """Whether a send at `t` is for a reminder already cancelled (past the grace)."""
        return self.cancelled_at is not None and t >= self.cancelled_at + CHANGE_GRACE


@dataclass(frozen=True)
class _Owner:
    start: float
    end: float
    borrower_id: str


@dataclass(frozen=True)
class Truth:
    """Every reminder and borrower of a run, over time."""

    reminders: dict[str, ReminderTruth]
    """By reminder id, in the order they were scheduled."""
    by_ref: dict[str, str]
    """Reminder id by reference."""
    borrowers: dict[str, Borrower]
    owners: dict[str, tuple[_Owner, ...]]
    """Who had each (national) number when."""
    opted_out_in_run: frozenset[str]
    """Borrowers who opted out during the run (STOP or at the bank)."""
    test_refs: dict[str, str]
    """The reminder id of each test-environment record that leaked, by reference."""
    test_phones: dict[str, str]
    """The same, by (national) number."""
    addresses: dict[str, str]
    """The borrower id of each e-mail address (lower case) and push token."""

    def owner(self, phone: str, t: float) -> Borrower | None:
        """The borrower whose number `phone` was at `t` (or until less than the grace before)."""
        found = _owner_id(self.owners, phone, t)
        return None if found is None else self.borrowers[found]

    def recipient(self, send: SendRecorded) -> Borrower | None:
        """The borrower `send` went to: who had its number then (SMS), whose address (e-mail)
        or push token it was."""
        if send.channel == "sms":
            return self.owner(send.to, send.t)
        found = self.addresses.get(send.to.lower() if send.channel == "email" else send.to)
        return None if found is None else self.borrowers[found]

    def test_record(self, refs: Iterable[str], phone: str) -> str | None:
        """The leaked test record a message carries (one of `refs`) or went to (`phone`)."""
        return next((self.test_refs[ref] for ref in refs if ref in self.test_refs),
                    self.test_phones.get(national(phone)))


def _owner_id(owners: dict[str, tuple[_Owner, ...]], phone: str, t: float) -> str | None:
    candidates = owners.get(national(phone), ())
    holding = [o for o in candidates if o.start <= t < o.end]
    recent = [o for o in candidates if o.start <= t < o.end + CHANGE_GRACE]
    found = holding or recent
    return found[-1].borrower_id if found else None


def rebuild(journal: Journal) -> Truth:
    """The truth of the run, from its `reminder.*`, `borrower.*` events."""
    scheduled = journal.of(ReminderScheduled)
    observed = [e for e in journal.events if isinstance(e, ReminderScheduled | BorrowerChanged)]
    phones = _phones(observed)
    owners = _owners(phones)
    stops = [(reply.t, bid) for reply in journal.of(BorrowerOptedOut)
             if (bid := _owner_id(owners, reply.phone, reply.t)) is not None]
    opt_outs, in_run = _opt_outs(observed, stops)
    first: dict[str, ReminderScheduled] = {}
    for event in scheduled:
        first.setdefault(event.borrower_id, event)
    borrowers = {bid: _borrower(bid, history, tuple(opt_outs.get(bid, ())), first.get(bid))
                 for bid, history in phones.items()}
    reminders = _reminders(scheduled, journal.of(ReminderChanged))
    leaked = [found for event in journal.of(FaultTouched)
              if (found := leaked_record(event)) is not None]
    return Truth(reminders=reminders,
                 by_ref={truth.scheduled.ref: rid for rid, truth in reminders.items()},
                 borrowers=borrowers, owners=owners, opted_out_in_run=frozenset(in_run),
                 test_refs={record.ref: record.reminder_id for record in leaked},
                 test_phones={national(record.phone): record.reminder_id for record in leaked},
                 addresses={address: bid for bid, event in first.items()
                            for address in (event.email.lower(), event.device_token)
                            if address})


def _borrower(bid: str, phones: History[str], opted_out: tuple[tuple[float, float], ...],
              first: ReminderScheduled | None) -> Borrower:
    if first is None:  # known from a change alone: nothing but their number
        return Borrower(bid, phones, opted_out)
    return Borrower(bid, phones, opted_out, email=first.email, device_token=first.device_token,
                    national_id=first.national_id, account=first.account)


def _phones(observed: Iterable[ReminderScheduled | BorrowerChanged]) -> dict[str, History[str]]:
    starts: dict[str, list[float]] = defaultdict(list)
    values: dict[str, list[str]] = defaultdict(list)
    for event in observed:
        known = values[event.borrower_id]
        if known and national(known[-1]) == national(event.phone):
            continue
        starts[event.borrower_id].append(event.t if known else -math.inf)
        known.append(event.phone)
    return {bid: History(tuple(starts[bid]), tuple(values[bid])) for bid in values}


def _owners(phones: dict[str, History[str]]) -> dict[str, tuple[_Owner, ...]]:
    owners: dict[str, list[_Owner]] = defaultdict(list)
    for bid, history in phones.items():
        for index, phone in enumerate(history.values):
            owners[national(phone)].append(_Owner(history.starts[index], history.end(index), bid))
    return {phone: tuple(sorted(found, key=lambda o: o.start)) for phone, found in owners.items()}


@dataclass
class _OptOutState:
    """One borrower's opt-out while replaying the journal (local to `_opt_outs`)."""

    bank: bool = False
    stop: bool = False
    since: float = -math.inf
    seen: bool = False
    phone: str = ""
    intervals: list[tuple[float, float]] = field(default_factory=list)

    @property
    def out(self) -> bool:
        return self.bank or self.stop

    def become(self, t: float, bank: bool, stop: bool) -> bool:
        """Move to the new state at `t`; True when this is an opt-out."""
        was = self.out
        self.bank, self.stop = bank, stop
        if was and not self.out:
            self.intervals.append((self.since, t))
        if not was and self.out:
            self.since = t
            return True
        return False


def _opt_outs(observed: Iterable[ReminderScheduled | BorrowerChanged],
              stops: list[tuple[float, str]]
              ) -> tuple[dict[str, list[tuple[float, float]]], set[str]]:
    """Each borrower's opted-out intervals, and who opted out during the run."""
    events: list[tuple[float, int, ReminderScheduled | BorrowerChanged | str]] = [
        (e.t, 0, e) for e in observed]
    events += [(t, 1, bid) for t, bid in stops]
    states: dict[str, _OptOutState] = defaultdict(_OptOutState)
    in_run: set[str] = set()
    for t, _, event in sorted(events, key=lambda item: (item[0], item[1])):
        if isinstance(event, str):
            state = states[event]
            if state.become(t, state.bank, True):
                in_run.add(event)
            continue
        state = states[event.borrower_id]
        if isinstance(event, ReminderScheduled) and not state.seen:
            # The borrower's truth since before the run (a STOP replayed first stays).
            state.become(-math.inf, event.opted_out, state.stop)
        elif isinstance(event, ReminderScheduled):
            if state.become(t, state.bank or event.opted_out, state.stop):
                in_run.add(event.borrower_id)
        else:
            phone_changed = state.seen and national(state.phone) != national(event.phone)
            stop = state.stop and (event.opted_out or phone_changed)
            if state.become(t, event.opted_out, stop):
                in_run.add(event.borrower_id)
        state.seen, state.phone = True, event.phone
    return ({bid: [*s.intervals, (s.since, math.inf)] if s.out else s.intervals
             for bid, s in states.items()}, in_run)


def _reminders(scheduled: Iterable[ReminderScheduled], changes: Iterable[ReminderChanged]
               ) -> dict[str, ReminderTruth]:
    amounts: dict[str, tuple[list[float], list[str]]] = {}
    cancelled: dict[str, float] = {}
    first: dict[str, ReminderScheduled] = {}
    for event in scheduled:
        # A replica repeating a schedule is not news: the first one is the truth.
        if event.reminder_id not in first:
            first[event.reminder_id] = event
            amounts[event.reminder_id] = ([-math.inf], [event.amount])
    for change in changes:
        if change.reminder_id not in first:
            continue
        if change.change == "repaid":
            cancelled.setdefault(change.reminder_id, change.t)
        else:
            starts, values = amounts[change.reminder_id]
            starts.append(change.t)
            values.append(change.amount)
    return {rid: ReminderTruth(event, History(tuple(amounts[rid][0]), tuple(amounts[rid][1])),
                               cancelled.get(rid))
            for rid, event in first.items()}
