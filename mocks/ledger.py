"""The ledger mock (core banking): installments fall due and notifiers pull the due reminders."""

from __future__ import annotations

import itertools
import random
import string
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.journal import JournalWriter, MockFaultsChanged, ReminderOwed
from mocks.control import LedgerFaults, fault_routes


class NewInstallment(BaseModel):
    """The admin API's body: an installment whose reminder falls due now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loan_ref: str = Field(min_length=1)
    name: str = Field(min_length=1)
    phone: str = Field(pattern=r"^\+\d{8,15}$")
    amount: str = Field(pattern=r"^\d+\.\d{2}$")
    due_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


def rfc3339(epoch: float) -> str:
    """UTC time with milliseconds and a Z, as the pull API writes every time."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class _Row:
    """One row of the replica the pull API reads: a reminder as replicated, visible from when."""

    reminder: ReminderOwed
    visible_at: float


def _drifted(reminder: ReminderOwed, field: str, rng: random.Random) -> ReminderOwed:
    """The reminder with one field changed, as a replica that missed an update would have it."""
    if field == "phone":
        changed = {"phone": reminder.phone[:-4] + f"{rng.randrange(10_000):04d}"}
    elif field == "amount":
        changed = {"amount": f"{float(reminder.amount) + 100:.2f}"}
    else:
        due = date.fromisoformat(reminder.due_date) + timedelta(days=1)
        changed = {"due_date": due.isoformat()}
    return reminder.model_copy(update=changed)


class Ledger:
    """The truth of which reminders are owed, and the replica the pull API serves from it.

    The truth is journaled as it happens; data-sync faults distort only the replica, so the
    scorer always knows both.
    """

    def __init__(self, journal: JournalWriter, window: float, seed: int) -> None:
        self._journal = journal
        self._window = window
        self._rng = random.Random(seed)
        self._replica_rng = random.Random(f"{seed}:replica")
        self._refs: set[str] = set()
        self.faults = LedgerFaults()
        self.owed: list[ReminderOwed] = []
        self._replica: list[_Row] = []

    def switch(self, faults: LedgerFaults) -> None:
        """Put data-sync faults in force now, and journal when they took effect."""
        self.faults = faults
        self._journal.write(MockFaultsChanged(
            mock="ledger", faults=faults.model_dump(mode="json", exclude_defaults=True)))

    def _new_ref(self) -> str:
        while True:
            ref = "".join(self._rng.choices(string.ascii_uppercase + string.digits, k=8))
            if ref not in self._refs:
                self._refs.add(ref)
                return ref

    def fall_due(self, installment: NewInstallment) -> ReminderOwed:
        """Make the installment's reminder owed from now, journal it, and replicate it."""
        now = time.time()
        reminder = self._journal.write(ReminderOwed(
            t=now,
            reminder_id=f"rem-{len(self.owed) + 1:06d}",
            ref=self._new_ref(),
            remind_at=now,
            send_by=now + self._window,
            **installment.model_dump(),
        ))
        self.owed.append(reminder)
        self._replicate(reminder)
        return reminder

    def _replicate(self, reminder: ReminderOwed) -> None:
        faults, rng = self.faults, self._replica_rng
        if rng.random() < faults.drop:
            return
        if rng.random() < faults.drift:
            reminder = _drifted(reminder, faults.drift_field, rng)
        copies = 2 if rng.random() < faults.duplicate else 1
        self._replica += [_Row(reminder, reminder.remind_at + faults.lag)] * copies

    def due_page(self, cursor: int, limit: int) -> tuple[list[ReminderOwed], int, bool]:
        """Replica rows after position `cursor` that are visible now, at most `limit`, in order."""
        now = time.time()
        rows = itertools.takewhile(lambda row: row.visible_at <= now,
                                   self._replica[cursor:cursor + limit])
        page = [row.reminder for row in rows]
        next_cursor = cursor + len(page)
        return page, next_cursor, next_cursor < len(self._replica)


def _as_wire(reminder: ReminderOwed, schema: str | None) -> dict[str, object]:
    due_date: str = reminder.due_date
    if schema == "date_format":
        due_date = date.fromisoformat(due_date).strftime("%d/%m/%Y")
    installment = {"amount": reminder.amount, "currency": "CNY",
                   "dueDate" if schema == "renamed_field" else "due_date": due_date}
    return {
        "reminder_id": reminder.reminder_id,
        "ref": reminder.ref,
        "loan_ref": reminder.loan_ref,
        "borrower": {"name": reminder.name, "phone": reminder.phone},
        "installment": installment,
        "remind_at": rfc3339(reminder.remind_at),
        "send_by": rfc3339(reminder.send_by),
    }


def create_app(ledger: Ledger) -> web.Application:
    """The pull API of the target contract, plus the admin API Locust drives."""

    async def due(request: web.Request) -> web.Response:
        try:
            cursor = int(request.query.get("cursor", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return web.json_response({"error": "cursor and limit must be integers"}, status=400)
        if cursor < 0 or not 1 <= limit <= 500:
            return web.json_response(
                {"error": "cursor must be >= 0 and limit from 1 to 500"}, status=400)
        page, next_cursor, has_more = ledger.due_page(cursor, limit)
        schema = ledger.faults.schema_change
        return web.json_response({"reminders": [_as_wire(r, schema) for r in page],
                                  "next_cursor": next_cursor, "has_more": has_more})

    async def new_installment(request: web.Request) -> web.Response:
        try:
            installment = NewInstallment.model_validate_json(await request.read())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return web.json_response({"error": f"{where}: {first['msg']}"}, status=400)
        reminder = ledger.fall_due(installment)
        return web.json_response(
            {"reminder_id": reminder.reminder_id, "ref": reminder.ref}, status=201)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/v1/reminders/due", due)
    app.router.add_post("/admin/installments", new_installment)
    app.router.add_get("/healthz", healthz)
    app.router.add_routes(fault_routes(LedgerFaults, lambda: ledger.faults, ledger.switch))
    return app
