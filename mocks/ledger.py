"""The ledger mock (core banking): schedules reminders as Locust ticks, changes the truth on
seeded timers, and serves the change feed (a replica, where data faults act) and the primary."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

from aiohttp import web

from harness.journal import (
    BorrowerChanged,
    FaultTouched,
    JournalWriter,
    MockFaultsChanged,
    ReminderChanged,
    ReminderScheduled,
)
from mocks.bank import BORROWER_CHANGES, Applied, Bank, PlannedChange, Record, ms_time
from mocks.control import LedgerFaults, fault_routes
from mocks.draws import draw
from mocks.guard import ControlStyle, Junk, guard, json_value
from mocks.manifest import MocksConfig


def wire_time(ms: int) -> str:
    """RFC 3339 in the bank's time zone with milliseconds: `2026-12-01T18:20:05.123+08:00`."""
    return ms_time(ms).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class _Row:
    """One entry of the replica's feed: a record as replicated, visible from when (ms)."""

    record: Record
    visible_ms: int


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
                         window=config.window, seed=config.seed)
        self._seed = config.seed
        self.faults = LedgerFaults()
        self._feed: list[_Row] = []

    def switch(self, faults: LedgerFaults) -> None:
        """Put data-sync faults in force now, and journal when they took effect."""
        self.faults = faults
        self._journal.write(MockFaultsChanged(
            mock="ledger", faults=faults.model_dump(mode="json", exclude_defaults=True)))

    def tick(self) -> Record:
        """Schedule the next reminder now, journal it, replicate it, and set its changes'
        timers (this must run on the event loop)."""
        scheduled = self.bank.schedule(time.time())
        record = scheduled.record
        borrower = record.borrower
        self._journal.write(ReminderScheduled(
            t=record.as_of_ms / 1000, reminder_id=record.reminder_id, ref=record.ref,
            loan_id=record.loan_id, borrower_id=borrower.borrower_id, name=borrower.name,
            phone=borrower.phone, opted_out=borrower.opted_out, amount=record.amount,
            due_date=record.due_date.isoformat(), remind_at=record.remind_at_ms / 1000,
            send_by=record.send_by_ms / 1000))
        self._replicate(record)
        loop = asyncio.get_running_loop()
        for change in scheduled.changes:
            loop.call_later(max(0.0, change.at_ms / 1000 - time.time()), self._happen, change)
        return record

    def _happen(self, change: PlannedChange) -> None:
        applied = self.bank.apply(change, time.time())
        if applied is None:
            return
        self._journal.write(self._change_event(applied))
        for record in applied.records:
            self._replicate(record)

    @staticmethod
    def _change_event(applied: Applied) -> ReminderChanged | BorrowerChanged:
        # The journal's time is the new versions' as_of: the moment the truth changed.
        t = applied.records[0].as_of_ms / 1000
        if applied.change.kind in BORROWER_CHANGES:
            borrower = applied.borrower
            return BorrowerChanged(t=t, borrower_id=borrower.borrower_id, phone=borrower.phone,
                                   opted_out=borrower.opted_out)
        [record] = applied.records
        change: Literal["repaid", "partially_repaid"] = (
            "repaid" if applied.change.kind == "repaid" else "partially_repaid")
        return ReminderChanged(t=t, reminder_id=record.reminder_id, change=change,
                               amount=record.amount)

    def _touched(self, switch: str, subject: str, **detail: object) -> None:
        self._journal.write(FaultTouched(mock="ledger", switch=switch, subject=subject,
                                         detail=detail))

    def _replicate(self, record: Record) -> None:
        faults = self.faults
        subject, version = record.reminder_id, record.version
        # Keyed by the record's version, not drawn in turn: timers and ticks interleave
        # differently in every run, and each fault's draw is its own.
        dropped, drifted, doubled = (draw(self._seed, "replica", switch, subject, version)
                                     for switch in ("drop", "drift", "duplicate"))
        if dropped < faults.drop:
            self._touched("drop", subject, version=version)
            return
        if drifted < faults.drift:
            record = self._drifted(record, faults.drift_field)
        if faults.lag:
            self._touched("lag", subject, version=version, lag=faults.lag)
        row = _Row(record, record.as_of_ms + round(faults.lag * 1000))
        self._feed.append(row)
        if doubled < faults.duplicate:
            self._touched("duplicate", subject, version=version)
            self._feed.append(row)

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
                     "phone": borrower.phone, "opted_out": borrower.opted_out},
        "installment": {"number": record.installment, "amount": record.amount,
                        "currency": "CNY",
                        "dueDate" if schema == "renamed_field" else "due_date": due_date},
        "remind_at": wire_time(record.remind_at_ms),
        "send_by": wire_time(record.send_by_ms),
        "as_of": wire_time(record.as_of_ms),
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def create_app(ledger: Ledger) -> web.Application:
    """The pull API of the target contract (§3), plus the admin API Locust drives."""

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

    async def tick(request: web.Request) -> web.Response:
        # Whatever a body would set (a due date, a borrower) is the bank's to draw, never the
        # caller's: anything but nothing or {} is refused, never kept to fail a page later.
        body = (await request.read()).strip()
        try:
            empty = not body or json_value(body) == {}
        except Junk:
            empty = False
        if not empty:
            return _error(400, "a tick takes no body (or {})")
        record = ledger.tick()
        return web.json_response({"reminder_id": record.reminder_id, "ref": record.ref},
                                 status=201)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(middlewares=[guard(ControlStyle())])
    app.router.add_get("/v1/reminders/changes", changes)
    app.router.add_get("/v1/reminders/{reminder_id}", primary)
    app.router.add_post("/admin/ticks", tick)
    app.router.add_get("/healthz", healthz)
    app.router.add_routes(fault_routes(LedgerFaults, lambda: ledger.faults, ledger.switch))
    return app
