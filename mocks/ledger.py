"""The ledger mock (core banking): schedules reminders as Locust ticks, changes the truth on
seeded timers, and serves the change feed (a replica, where data faults act) and the primary.

The core system's own upgrade, as the incident had it, is two data faults of the replica:

- `snapshot_age` (data.snapshot): the replica was restored from a snapshot taken that long
  before the switch (time S), and it is cut off from the source while the switch is on. A
  notifier reading the change feed sees what a restored replica shows: the log is not rewound
  (its positions, and the notifier's cursor, stay valid), but the restored replica re-publishes
  its rows, so every reminder whose record changed in [S, switch) gets a new entry holding it as
  the snapshot held it: the version it had at S (older number, status, amount, phone, consent).
  A notifier that takes the latest entry as the truth un-cancels a repaid reminder; one that
  keeps the highest version ignores it. An installment is in the bank's schedule long before
  its reminder falls due, so one scheduled (fallen due) after S was in the snapshot too: as its
  first version with its borrower's contact and consent as of S. While the switch is on,
  changes of the truth (repayments, phone changes, opt-outs and opt-ins) never reach the feed,
  not even once it is off (a replica re-synced later does not replay them), and reminders
  scheduled then reach it as the snapshot holds them (their borrower's contact and consent as
  of S). Each record so re-served, withheld or given an old contact is journaled
  (`fault.touched`, switch `snapshot_age`, `action` restored / withheld / stale_contact,
  `forgot`: each field the replica shows otherwise, with the truth's value). Re-served rows do
  not meet the other faults' draws.
- `test_leak` (data.test_leak): for a keyed fraction of feed entries, test-environment data:
  with `borrowers`, a test record joins the feed after the entry (`Bank.test_record`: a test
  borrower with a number of the test range, a reminder id and reference the primary answers
  404 for), journaled with its reference and number so that the scorer knows a send of it;
  with `amounts`, the entry is replicated with a test amount.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from json.encoder import encode_basestring_ascii as _json
from typing import Literal

from aiohttp import web

from harness.journal import (
    BorrowerChanged,
    BorrowerOptedOut,
    FaultTouched,
    JournalWriter,
    MockFaultsChanged,
    ReminderChanged,
    ReminderScheduled,
)
from harness.ticking import MAX_BATCH
from mocks.bank import (
    BORROWER_CHANGES,
    Applied,
    Bank,
    Borrower,
    ClockUnset,
    PlannedChange,
    Record,
    ms_time,
)
from mocks.control import LedgerFaults, fault_routes
from mocks.draws import draw
from mocks.front import FAST_PATH, FastAnswer, PlainRequest
from mocks.guard import ControlStyle, Junk, guard, json_value
from mocks.manifest import MocksConfig


def wire_time(ms: int) -> str:
    """RFC 3339 in the bank's time zone with milliseconds: `2026-12-01T18:20:05.123+08:00`.

    The same text as `ms_time(ms).isoformat(timespec="milliseconds")`, built from the second's
    text (cached: a record's three times, and the records of one second, share seconds), since
    making the datetime is most of serving a record."""
    seconds, millis = divmod(ms, 1000)
    return f"{_wire_second(seconds)}.{millis:03d}{_OFFSET}"


_OFFSET = ms_time(0).isoformat()[-6:]
"""The bank's UTC offset as RFC 3339 writes it (`+08:00`: it keeps no daylight saving)."""


@functools.lru_cache(maxsize=4096)
def _wire_second(seconds: int) -> str:
    return ms_time(seconds * 1000).isoformat(timespec="seconds")[:-len(_OFFSET)]


@dataclass(frozen=True, slots=True)
class _Row:
    """One entry of the replica's feed: a record as replicated, visible from when (ms)."""

    record: Record
    visible_ms: int


@dataclass(frozen=True, slots=True)
class LeakedRecord:
    """A test-environment record that joined the feed, as its `test_leak` touch journals it."""

    reminder_id: str
    ref: str
    phone: str


_LEAK = "test_leak"
_SNAPSHOT = "snapshot_age"


def leaked_record(event: FaultTouched) -> LeakedRecord | None:
    """The test record a ledger touch says joined the feed, if it says one did."""
    detail = event.detail
    if (event.mock, event.switch, detail.get("records")) != ("ledger", _LEAK, "borrowers"):
        return None
    return LeakedRecord(event.subject, str(detail["ref"]), str(detail["phone"]))


def _forgot(replica: Record, truth: Record) -> dict[str, object]:
    """The fields `replica` shows differently from `truth`, with the truth's values."""
    fields: dict[str, tuple[object, object]] = {
        "status": (replica.status, truth.status), "amount": (replica.amount, truth.amount),
        "phone": (replica.borrower.phone, truth.borrower.phone),
        "opted_out": (replica.borrower.opted_out, truth.borrower.opted_out)}
    return {name: true for name, (shown, true) in fields.items() if shown != true}


@dataclass(frozen=True, slots=True)
class Page:
    """A page of the change feed."""

    records: tuple[Record, ...]
    next_cursor: int
    has_more: bool


class Ledger:
    """The bank's truth, journaled as it changes, and the replica the change feed serves.

    Data faults distort only the replica, and journal each record (or page) they touch; the
    truth in the journal and the primary record stay as they are.
    """

    def __init__(self, journal: JournalWriter, config: MocksConfig) -> None:
        self._journal = journal
        self.bank = Bank(config.population, config.changes, lead=config.lead,
                         window=config.window, seed=config.seed, staging=config.staging)
        self._seed = config.seed
        self.serves_app = config.app
        self.faults = LedgerFaults()
        self._feed: list[_Row] = []
        # The truth's history, for a restore: every version of each reminder, and each
        # borrower's contact and consent since when (ms; their first since 0).
        self._versions: dict[str, list[Record]] = {}
        self._contacts: dict[str, list[tuple[int, Borrower]]] = {}
        self._snapshot_ms: int | None = None
        """When the snapshot the replica was restored from was taken, while it is in force."""

    def switch(self, faults: LedgerFaults) -> None:
        """Put data-sync faults in force now, and journal when they took effect; a new
        `snapshot_age` restores the replica from a snapshot that old."""
        before, self.faults = self.faults, faults
        self._journal.write(MockFaultsChanged(
            mock="ledger", faults=faults.model_dump(mode="json", exclude_defaults=True)))
        if not faults.snapshot_age:
            self._snapshot_ms = None
        elif faults.snapshot_age != before.snapshot_age:
            now_ms = round(time.time() * 1000)
            self._snapshot_ms = now_ms - round(faults.snapshot_age * 1000)
            self._restore(self._snapshot_ms, now_ms)

    def _restore(self, taken_ms: int, now_ms: int) -> None:
        """Re-publish, as the snapshot taken at `taken_ms` holds them, the reminders whose
        record is not what it was then."""
        visible_ms = now_ms + round(self.faults.lag * 1000)
        for versions in self._versions.values():
            latest = versions[-1]
            if latest.as_of_ms < taken_ms:
                continue
            held = self._held(versions, taken_ms)
            forgot = _forgot(held, latest)
            if not forgot:
                continue
            self._feed.append(_Row(held, visible_ms))
            self._touched(_SNAPSHOT, latest.reminder_id, action="restored",
                          version=latest.version, served=held.version, forgot=forgot)

    def _held(self, versions: list[Record], taken_ms: int) -> Record:
        """A reminder as the snapshot taken at `taken_ms` holds it: its latest version from
        before; if it fell due since, its first, with its borrower's contact as of then."""
        standing = [record for record in versions if record.as_of_ms < taken_ms]
        if standing:
            return standing[-1]
        first = versions[0]
        # The borrower's first contact holds since 0, before any snapshot: one is always known.
        known = [borrower for since, borrower in self._contacts[first.borrower.borrower_id]
                 if since < taken_ms]
        return replace(first, borrower=known[-1])

    def ticks(self, count: int) -> tuple[Record, ...]:
        """Schedule the next `count` reminders now, in turn, as `count` ticks would (the n-th
        reminder is drawn from the seed by its number, however the ticks are batched)."""
        now = time.time()
        return tuple(self.tick(now) for _ in range(count))

    def tick(self, now: float | None = None) -> Record:
        """Schedule the next installment's reminders at `now` (default: now), journal and
        replicate each, and set their changes' timers (this must run on the event loop);
        returns the first (a staged installment has one reminder per stage). ClockUnset from
        a staged bank not yet told the epoch."""
        scheduled = self.bank.schedule(time.time() if now is None else now)
        for record in scheduled.records:
            borrower = record.borrower
            # `append`: the same line as `write`, without the stamped copy nobody reads here.
            # A staged reminder's remind_at is the truth the notifier must work out itself.
            self._journal.append(ReminderScheduled(
                t=record.as_of_ms / 1000, reminder_id=record.reminder_id, ref=record.ref,
                loan_id=record.loan_id, borrower_id=borrower.borrower_id, name=borrower.name,
                phone=borrower.phone, email=borrower.email, device_token=borrower.device_token,
                national_id=borrower.national_id, account=borrower.account,
                opted_out=borrower.opted_out, amount=record.amount,
                due_date=record.due_date.isoformat(), remind_at=record.remind_at_ms / 1000,
                send_by=record.send_by_ms / 1000))
            self._versions[record.reminder_id] = [record]
            self._contacts.setdefault(borrower.borrower_id, [(0, borrower)])
            self._replicate(record)
        loop = asyncio.get_running_loop()
        for change in scheduled.changes:
            loop.call_later(max(0.0, change.at_ms / 1000 - time.time()), self._happen, change)
        return scheduled.records[0]

    def _happen(self, change: PlannedChange) -> None:
        applied = self.bank.apply(change, time.time())
        if applied is not None:
            self._changed(applied)

    def choose(self, borrower_id: str, reminders: bool) -> None:
        """The borrower switches reminders off (or on) in the bank's app: a change of the truth,
        journaled and replicated as the bank's own; off is also journaled as an opt-out the
        notifier hears of (`BorrowerOptedOut`, vendor "app"), as a STOP reply is."""
        applied = self.bank.consent(borrower_id, not reminders, time.time())
        if applied is None:
            return
        self._changed(applied)
        if not reminders:
            self._journal.write(BorrowerOptedOut(t=applied.records[0].as_of_ms / 1000,
                                                 phone=applied.borrower.phone, vendor="app"))

    def _changed(self, applied: Applied) -> None:
        """Journal a change of the truth, keep it in the history and replicate its records."""
        for event in self._change_events(applied):
            self._journal.write(event)
        if applied.change.kind in BORROWER_CHANGES:
            self._contacts[applied.borrower.borrower_id].append(
                (applied.records[0].as_of_ms, applied.borrower))
        for record in applied.records:
            self._versions[record.reminder_id].append(record)
            self._replicate(record)

    @staticmethod
    def _change_events(applied: Applied) -> list[ReminderChanged | BorrowerChanged]:
        # The journal's time is the new versions' as_of: the moment the truth changed.
        t = applied.records[0].as_of_ms / 1000
        if applied.change.kind in BORROWER_CHANGES:
            borrower = applied.borrower
            return [BorrowerChanged(t=t, borrower_id=borrower.borrower_id,
                                    phone=borrower.phone, opted_out=borrower.opted_out)]
        # A repayment changes each reminder of the installment (one per stage).
        change: Literal["repaid", "partially_repaid"] = (
            "repaid" if applied.change.kind == "repaid" else "partially_repaid")
        return [ReminderChanged(t=t, reminder_id=record.reminder_id, change=change,
                                amount=record.amount) for record in applied.records]

    def _touched(self, switch: str, subject: str, **detail: object) -> None:
        self._journal.write(FaultTouched(mock="ledger", switch=switch, subject=subject,
                                         detail=detail))

    def _replicate(self, record: Record) -> None:
        faults = self.faults
        subject, version = record.reminder_id, record.version
        if self._snapshot_ms is not None:
            restored = self._as_restored(record, self._snapshot_ms)
            if restored is None:
                return
            record = restored
        if faults.drop and self._draw("drop", subject, version) < faults.drop:
            self._touched("drop", subject, version=version)
            return
        if faults.drift and self._draw("drift", subject, version) < faults.drift:
            record = self._drifted(record, faults.drift_field)
        leaks = bool(faults.test_leak) and self._draw(_LEAK, subject, version) < faults.test_leak
        if leaks and faults.test_leak_records == "amounts":
            tested = self.bank.test_amount(record)
            self._touched(_LEAK, subject, records="amounts", version=version,
                          truth=record.amount, replica=tested.amount)
            record = tested
        if faults.lag:
            self._touched("lag", subject, version=version, lag=faults.lag)
        row = _Row(record, record.as_of_ms + round(faults.lag * 1000))
        self._feed.append(row)
        if faults.duplicate and self._draw("duplicate", subject, version) < faults.duplicate:
            self._touched("duplicate", subject, version=version)
            self._feed.append(row)
        if leaks and faults.test_leak_records == "borrowers":
            test = self.bank.test_record(record, record.as_of_ms)
            self._touched(_LEAK, test.reminder_id, records="borrowers", ref=test.ref,
                          phone=test.borrower.phone, joined=subject)
            self._feed.append(_Row(test, row.visible_ms))

    def _draw(self, switch: str, subject: str, version: int) -> float:
        # Keyed by the record's version, not drawn in turn: timers and ticks interleave
        # differently in every run, and each fault's draw is its own. A fault that is off is
        # not drawn for at all (a draw is in [0, 1): it could not fall under 0); the four
        # draws were a third of a tick's CPU in a run without faults.
        return draw(self._seed, "replica", switch, subject, version)

    def _as_restored(self, record: Record, taken_ms: int) -> Record | None:
        """What the replica restored from the snapshot taken at `taken_ms` replicates of
        `record`: nothing of a change, a new reminder as the snapshot holds it."""
        versions = self._versions[record.reminder_id]
        if record.version > 1:
            self._touched(_SNAPSHOT, record.reminder_id, action="withheld",
                          version=record.version, forgot=_forgot(versions[-2], record))
            return None
        held = self._held(versions, taken_ms)
        if held != record:
            self._touched(_SNAPSHOT, record.reminder_id, action="stale_contact", version=1,
                          forgot=_forgot(held, record))
        return held

    def _drifted(self, record: Record, field: str) -> Record:
        """The record with one field changed, as a replica that missed an update has it; the
        version stays the truth's (the replica is wrong, not newer)."""
        if field == "phone":
            phone = self.bank.unused_phone(record.reminder_id, record.version)
            drifted = replace(record, borrower=replace(record.borrower, phone=phone))
            truth, replica = record.borrower.phone, drifted.borrower.phone
        elif field == "amount":
            drifted = replace(record, amount_cents=record.amount_cents + 10_000)
            truth, replica = record.amount, drifted.amount
        else:
            drifted = replace(record, due_date=record.due_date + timedelta(days=1))
            truth, replica = record.due_date.isoformat(), drifted.due_date.isoformat()
        self._touched("drift", record.reminder_id, version=record.version, field=field,
                      truth=truth, replica=replica)
        return drifted

    def page(self, cursor: int, limit: int) -> Page:
        """Feed entries after position `cursor` that the replica shows now, at most `limit`,
        oldest first; a lagging entry holds back the ones after it, as in a log."""
        now_ms = round(time.time() * 1000)
        records: list[Record] = []
        position = cursor
        end = min(len(self._feed), cursor + limit)
        while position < end and self._feed[position].visible_ms <= now_ms:
            records.append(self._feed[position].record)
            position += 1
        has_more = position < len(self._feed) and self._feed[position].visible_ms <= now_ms
        if records and self.faults.schema_change:
            self._touched("schema_change", "", change=self.faults.schema_change,
                          entries=len(records))
        return Page(tuple(records), position, has_more)

    def primary(self, reminder_id: str) -> Record | None:
        """The reminder's record as it is now in the source."""
        record = self.bank.record(reminder_id)
        if record is not None and self.faults.schema_change:
            self._touched("schema_change", reminder_id, change=self.faults.schema_change)
        return record


def as_wire(record: Record, schema: str | None) -> dict[str, object]:
    """The record as the contract's JSON object, in the wire format `schema` changes it to."""
    due_date = record.due_date.isoformat()
    if schema == "date_format":
        due_date = record.due_date.strftime("%d/%m/%Y")
    borrower = record.borrower
    return {
        "reminder_id": record.reminder_id,
        "ref": record.ref,
        "version": record.version,
        "status": record.status,
        "loan_id": record.loan_id,
        "borrower": {"borrower_id": borrower.borrower_id, "name": borrower.name,
                     "phone": borrower.phone, "email": borrower.email or None,
                     "device_token": borrower.device_token or None,
                     "national_id": borrower.national_id, "account": borrower.account or None,
                     "opted_out": borrower.opted_out},
        "installment": {"number": record.installment, "amount": record.amount,
                        "currency": "CNY",
                        "dueDate" if schema == "renamed_field" else "due_date": due_date},
        **_when(record),
        "as_of": wire_time(record.as_of_ms),
    }


def wire_json(record: Record, schema: str | None) -> str:
    """`json.dumps(as_wire(record, schema))`, written out for the plain wire format (no
    `schema_change`): every feed entry and every primary is one, and the values are all that
    varies. Other formats go the long way."""
    if schema is not None:
        return json.dumps(as_wire(record, schema))
    borrower = record.borrower
    stage = record.stage
    when = (f'"remind_at": {_json(wire_time(record.remind_at_ms))}, '
            f'"send_by": {_json(wire_time(record.send_by_ms))}' if stage is None
            else f'"remind_at": null, "send_by": null, "stage": {{"days_before": '
                 f'{stage.days_before}, "at": {_json(stage.at)}}}')
    return (f'{{"reminder_id": {_json(record.reminder_id)}, "ref": {_json(record.ref)}, '
            f'"version": {record.version}, "status": {_json(record.status)}, '
            f'"loan_id": {_json(record.loan_id)}, "borrower": {{"borrower_id": '
            f'{_json(borrower.borrower_id)}, "name": {_json(borrower.name)}, "phone": '
            f'{_json(borrower.phone)}, "email": {_optional(borrower.email)}, "device_token": '
            f'{_optional(borrower.device_token)}, "national_id": {_json(borrower.national_id)}, '
            f'"account": {_optional(borrower.account)}, "opted_out": '
            f'{"true" if borrower.opted_out else "false"}}}, "installment": {{"number": '
            f'{record.installment}, "amount": {_json(record.amount)}, "currency": '
            f'"CNY", "due_date": {_json(record.due_date.isoformat())}}}, {when}, '
            f'"as_of": {_json(wire_time(record.as_of_ms))}}}')


def _optional(text: str) -> str:
    """A contact field as `as_wire` gives it: null when empty."""
    return _json(text) if text else "null"


def _when(record: Record) -> dict[str, object]:
    """When the bank wants the reminder sent: its times, or a staged reminder's stage (no
    times: the notifier computes them from the due date and the compressed clock)."""
    stage = record.stage
    if stage is None:
        return {"remind_at": wire_time(record.remind_at_ms),
                "send_by": wire_time(record.send_by_ms)}
    return {"remind_at": None, "send_by": None,
            "stage": {"days_before": stage.days_before, "at": stage.at}}


@dataclass(frozen=True, slots=True)
class TickAsk:
    """What a tick request asks for: `count` reminders, answered as a list of records (`listed`,
    the batched form) or, for today's single tick, as the one record itself."""

    count: int
    listed: bool


def tick_ask(body: bytes) -> TickAsk | None:
    """A tick request's body read: no body or {} is one tick answered as its record,
    {"count": N} with N from 1 to MAX_BATCH is N ticks answered as a list; None for anything
    else."""
    try:
        value = json_value(body) if body else {}
    except Junk:
        return None
    if value == {}:
        return TickAsk(1, listed=False)
    if not isinstance(value, dict) or value.keys() != {"count"}:
        return None
    count = value["count"]
    # bool is an int to Python, not a count to anyone.
    if type(count) is not int or not 1 <= count <= MAX_BATCH:
        return None
    return TickAsk(count, listed=True)


_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]+")
"""A reminder id in a target as aiohttp's router hands it to `primary` (no escapes, no dots)."""
_PULL_QUERY = re.compile(r"cursor=(?P<cursor>\d{1,9})(?:&limit=(?P<limit>\d{1,9}))?")
"""A feed poll's query as the fast path reads it (`cursor=N&limit=M`, digits only, as aiohttp's
client writes `params`); any other query is aiohttp's to read."""


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def create_app(ledger: Ledger) -> web.Application:
    """The pull API of the target contract (§3), the admin API Locust drives and, with
    `MocksConfig.app`, the borrower app's API (public: borrowers use it, no token)."""

    async def changes(request: web.Request) -> web.Response:
        try:
            cursor = int(request.query.get("cursor", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _error(400, "cursor and limit must be integers")
        if cursor < 0 or not 1 <= limit <= 500:
            return _error(400, "cursor must be >= 0 and limit from 1 to 500")
        page = ledger.page(cursor, limit)
        schema = ledger.faults.schema_change
        return web.json_response({"changes": [as_wire(r, schema) for r in page.records],
                                  "next_cursor": page.next_cursor, "has_more": page.has_more})

    async def primary(request: web.Request) -> web.Response:
        reminder_id = request.match_info["reminder_id"]
        record = ledger.primary(reminder_id)
        if record is None:
            return _error(404, f"no reminder {reminder_id!r}")
        return web.json_response(as_wire(record, ledger.faults.schema_change))

    def tick_answer(body: bytes) -> tuple[dict[str, object], int]:
        """A tick request's answer (its JSON and status) once what its `body` asks for is
        scheduled. Whatever a body would set (a due date, a borrower) is the bank's to draw,
        never the caller's: anything but a count of ticks is refused, never kept to fail a
        page later."""
        ask = tick_ask(body.strip())
        if ask is None:
            return {"error": 'a tick takes no body, {} or {"count": N} with N from 1 to '
                             f"{MAX_BATCH}"}, 400
        try:
            records = ledger.ticks(ask.count)
        except ClockUnset as exc:
            return {"error": f"{exc}: PUT /admin/clock first"}, 409
        if not ask.listed:
            return {"reminder_id": records[0].reminder_id, "ref": records[0].ref}, 201
        return {"ticks": [{"reminder_id": record.reminder_id, "ref": record.ref}
                          for record in records]}, 201

    async def tick(request: web.Request) -> web.Response:
        payload, status = tick_answer(await request.read())
        return web.json_response(payload, status=status)

    async def clock(request: web.Request) -> web.Response:
        # The run fixes the month's epoch after the mocks start (as it starts the target).
        try:
            body = json_value(await request.read())
        except Junk:
            body = None
        epoch = body.get("epoch") if isinstance(body, dict) and len(body) == 1 else None
        if ledger.bank.staging is None:
            return _error(409, "the bank schedules no stages: it keeps no calendar")
        # bool is an int to Python, not a time to anyone.
        if isinstance(epoch, bool) or not isinstance(epoch, int | float) or not (
                0 < epoch < 2**32):
            return _error(400, 'clock: expected {"epoch": <Unix seconds>}')
        ledger.bank.clock(float(epoch))
        return web.json_response({"epoch": epoch})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def installment(request: web.Request) -> web.Response:
        # The truth (the primary), as the seed's app shows it: "users can look up their
        # repayment at any time", and the replica's faults are no excuse.
        borrower_id = request.match_info["borrower_id"]
        records = ledger.bank.reminders_of(borrower_id)
        if records is None:
            return _error(404, f"no borrower {borrower_id!r}")
        due = [record for record in records if record.status == "scheduled"]
        if not due:
            return web.json_response({"borrower_id": borrower_id, "installment": None})
        return web.json_response({
            "borrower_id": borrower_id, "reminder_id": due[-1].reminder_id,
            "amount": due[-1].amount, "due_date": due[-1].due_date.isoformat(),
            "currency": "CNY"})

    async def preferences(request: web.Request) -> web.Response:
        borrower_id = request.match_info["borrower_id"]
        if ledger.bank.reminders_of(borrower_id) is None:
            return _error(404, f"no borrower {borrower_id!r}")
        try:
            body = json_value(await request.read())
        except Junk:
            body = None
        reminders = body.get("reminders") if isinstance(body, dict) and len(body) == 1 else None
        if not isinstance(reminders, bool):
            return _error(400, 'preferences: expected {"reminders": true} or {"reminders": false}')
        ledger.choose(borrower_id, reminders)
        return web.json_response({"borrower_id": borrower_id, "reminders": reminders})

    def fast(request: PlainRequest) -> FastAnswer | None:
        """`changes`', `primary`'s or `tick`'s answer to a plain GET of the pull API whose
        target needs no decoding, or to Locust's plain POST of ticks (which the front lets
        through only with the run's token: `mocks.front`), from the same functions; None, with
        no effect, to any other request (a query off the form below, an id with escapes, a
        400 to give a GET).

        Both GETs, not the primary alone: a client's pooled connection carries either, and
        one the front hands to aiohttp (for a feed poll) stays aiohttp's for good."""
        head = request.head
        if head.method == "POST" and head.target == "/admin/ticks":
            payload, status = tick_answer(request.body)
            return FastAnswer(status, json.dumps(payload).encode())
        if head.method != "GET":
            return None
        target = head.target
        if target.startswith("/v1/reminders/changes?"):
            query = _PULL_QUERY.fullmatch(target, len("/v1/reminders/changes?"))
            if query is None:
                return None
            cursor, limit = int(query["cursor"]), int(query["limit"] or "100")
            if not 1 <= limit <= 500:
                return None
            page = ledger.page(cursor, limit)
            schema = ledger.faults.schema_change
            # `json.dumps` of what `changes` answers, each entry written out (`wire_json`).
            entries = ", ".join(wire_json(record, schema) for record in page.records)
            return FastAnswer(200, (
                f'{{"changes": [{entries}], "next_cursor": {page.next_cursor}, '
                f'"has_more": {"true" if page.has_more else "false"}}}').encode())
        plain_id = _PLAIN_ID.fullmatch(target, len("/v1/reminders/"))
        if not target.startswith("/v1/reminders/") or plain_id is None or (
                plain_id[0] == "changes"):
            return None
        reminder_id = plain_id[0]
        record = ledger.primary(reminder_id)
        if record is None:
            return FastAnswer(404, json.dumps({"error": f"no reminder {reminder_id!r}"}).encode())
        return FastAnswer(200, wire_json(record, ledger.faults.schema_change).encode())

    app = web.Application(middlewares=[guard(ControlStyle())])
    app[FAST_PATH] = fast
    app.router.add_get("/v1/reminders/changes", changes)
    app.router.add_get("/v1/reminders/{reminder_id}", primary)
    app.router.add_post("/admin/ticks", tick)
    app.router.add_put("/admin/clock", clock)
    app.router.add_get("/healthz", healthz)
    if ledger.serves_app:
        app.router.add_get("/v1/app/borrowers/{borrower_id}/installment", installment)
        app.router.add_put("/v1/app/borrowers/{borrower_id}/preferences", preferences)
    app.router.add_routes(fault_routes(LedgerFaults, lambda: ledger.faults, ledger.switch))
    return app
