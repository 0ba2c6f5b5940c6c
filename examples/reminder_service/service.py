"""The running notifier: the ledger feed's poll filling the outbox, and the workers sending each
row when it falls due."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from .alerts import Alerter
from .breaker import FailureStreak
from .dispatch import Dispatcher
from .ledger import LedgerClient, LedgerError
from .outbox import Outbox

log = logging.getLogger(__name__)

# An idle worker sleeps until the earliest pending row falls due, but never longer than this:
# the poll wakes workers only for rows it stores, not for retries whose backoff ends.
IDLE_RECHECK = 0.2
SHUTDOWN_GRACE = 2.0


class ReminderService:
    def __init__(
        self,
        ledger: LedgerClient,
        outbox: Outbox,
        dispatcher: Dispatcher,
        alerter: Alerter,
        *,
        poll_interval: float,
        workers: int,
    ) -> None:
        self._ledger = ledger
        self._outbox = outbox
        self._dispatcher = dispatcher
        self._alerter = alerter
        self._poll_interval = poll_interval
        self._worker_count = workers
        self._wake = asyncio.Event()
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; a crashed poller or worker is re-raised."""
        poller = asyncio.create_task(self._poll(), name="ledger-poll")
        workers = [
            asyncio.create_task(self._work(), name=f"worker-{n}") for n in range(self._worker_count)
        ]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(
            [stopped, poller, *workers], return_when=asyncio.FIRST_COMPLETED
        )
        stopped.cancel()
        log.info("stopping: in-flight sends get %.0fs to finish", SHUTDOWN_GRACE)
        self._stopping = True
        self._wake.set()
        poller.cancel()
        _, late = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE)
        for task in late:
            task.cancel()
        await asyncio.gather(stopped, poller, *workers, return_exceptions=True)
        for task in (poller, *workers):
            if task in done:
                task.result()

    async def _poll(self) -> None:
        streak = FailureStreak()
        while True:
            try:
                await self._pull()
            except LedgerError as exc:
                log.warning("ledger poll failed: %s", exc)
                if streak.record_failure():
                    log.error("ledger failing: %d consecutive polls", streak.failures)
                    self._alerter.fire("ledger poll failing", dependency="ledger")
            else:
                streak.record_success()
            await asyncio.sleep(self._poll_interval)

    async def _pull(self) -> None:
        cursor = self._outbox.cursor()
        while True:
            page = await self._ledger.changes(cursor)
            stored = self._outbox.add(page.entries, page.next_cursor)
            if stored:
                log.info("stored %d feed entries, cursor %d", stored, page.next_cursor)
                self._wake.set()
            if not page.has_more or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    async def _work(self) -> None:
        while not self._stopping:
            self._wake.clear()
            row = self._outbox.claim()
            if row is None:
                await self._idle()
                continue
            await self._dispatcher.deliver(row)

    async def _idle(self) -> None:
        due = self._outbox.next_due()
        wait = IDLE_RECHECK if due is None else min(IDLE_RECHECK, max(0.0, due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)
