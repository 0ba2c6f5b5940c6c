"""The reference notifier's sender (examples/reminder_service/service.py) with stand-ins for the
outbox, the ledger and the dispatcher: one claimer hands due rows to at most WORKERS sends at a
time, claims each row once, and a failed send stops the service with its error."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from examples.reminder_service.ledger import FeedPage
from examples.reminder_service.service import ReminderService

TIMEOUT = 10.0


class Outbox:
    """Rows due now, claimed once each, in order."""

    def __init__(self, rows: int) -> None:
        self.due = [f"r{n}" for n in range(rows)]
        self.claims = 0

    def cursor(self) -> int:
        return 0

    def add(self, records: object, cursor: int) -> int:
        return 0

    def claim(self) -> Any:
        self.claims += 1
        return self.due.pop(0) if self.due else None

    def claim_due(self, limit: int) -> list[Any]:
        self.claims += 1
        taken, self.due = self.due[:limit], self.due[limit:]
        return taken

    def next_due(self) -> float | None:
        return None


class Ledger:
    async def changes(self, cursor: int) -> FeedPage:
        return FeedPage((), cursor, False)


class Dispatcher:
    """Sends that take a moment each, counting how many were in flight at once."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.sent: list[str] = []
        self.in_flight = 0
        self.most = 0
        self.fail_on = fail_on

    async def deliver(self, row: str) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if row == self.fail_on:
                raise RuntimeError(f"send of {row} failed")
            self.sent.append(row)
        finally:
            self.in_flight -= 1


def service(outbox: Outbox, dispatcher: Dispatcher, workers: int) -> ReminderService:
    return ReminderService(cast(Any, Ledger()), cast(Any, outbox), cast(Any, dispatcher),
                           cast(Any, object()), poll_interval=0.05, workers=workers)


def test_the_sender_keeps_at_most_workers_sends_in_flight_and_sends_each_row_once() -> None:
    async def run() -> None:
        outbox, dispatcher = Outbox(40), Dispatcher()
        stop = asyncio.Event()
        running = asyncio.create_task(service(outbox, dispatcher, workers=3).run(stop))
        async with asyncio.timeout(TIMEOUT):
            while len(dispatcher.sent) < 40:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(running, TIMEOUT)
        assert sorted(dispatcher.sent) == sorted(f"r{n}" for n in range(40))
        assert dispatcher.most == 3

    asyncio.run(run())


def test_a_failed_send_stops_the_service_with_its_error_once_the_others_ended() -> None:
    async def run() -> None:
        outbox, dispatcher = Outbox(10), Dispatcher(fail_on="r4")
        with pytest.raises(RuntimeError, match="send of r4 failed"):
            await asyncio.wait_for(
                service(outbox, dispatcher, workers=2).run(asyncio.Event()), TIMEOUT)
        assert dispatcher.in_flight == 0
        assert "r4" not in dispatcher.sent

    asyncio.run(run())
