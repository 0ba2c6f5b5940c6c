"""The ledger mock (core banking): installments fall due and notifiers pull the due reminders."""

from __future__ import annotations

import random
import string
import time
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.journal import JournalWriter, ReminderOwed


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


class Ledger:
    """The truth of which reminders are owed, in the order they fell due."""

    def __init__(self, journal: JournalWriter, window: float, seed: int) -> None:
        self._journal = journal
        self._window = window
        self._rng = random.Random(seed)
        self._refs: set[str] = set()
        self.owed: list[ReminderOwed] = []

    def _new_ref(self) -> str:
        while True:
            ref = "".join(self._rng.choices(string.ascii_uppercase + string.digits, k=8))
            if ref not in self._refs:
                self._refs.add(ref)
                return ref

    def fall_due(self, installment: NewInstallment) -> ReminderOwed:
        """Make the installment's reminder owed from now, journal it, and return it."""
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
        return reminder

    def due_page(self, cursor: int, limit: int) -> tuple[list[ReminderOwed], int, bool]:
        """Reminders after position `cursor` that are due now, at most `limit` of them."""
        now = time.time()
        due = [r for r in self.owed[cursor:cursor + limit] if r.remind_at <= now]
        next_cursor = cursor + len(due)
        return due, next_cursor, next_cursor < len(self.owed)


def _as_wire(reminder: ReminderOwed) -> dict[str, object]:
    return {
        "reminder_id": reminder.reminder_id,
        "ref": reminder.ref,
        "loan_ref": reminder.loan_ref,
        "borrower": {"name": reminder.name, "phone": reminder.phone},
        "installment": {"amount": reminder.amount, "currency": "CNY",
                        "due_date": reminder.due_date},
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
        return web.json_response({"reminders": [_as_wire(r) for r in page],
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
    return app
