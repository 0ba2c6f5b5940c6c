"""The running notifier: the ledger feed's poll filling the outbox, and the sender claiming each
row when it falls due and handing it to one of its workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from .alerts import Alerter
from .breaker import FailureStreak
from .dispatch import Dispatcher
from .ledger import LedgerClient, LedgerError
from .outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

# The idle sender sleeps until the earliest pending row falls due, but never longer than this:
# the poll wakes it only for rows it stores, not for retries whose backoff ends.
IDLE_RECHECK = 0.2
# Rows claimed in one outbox transaction at the most: one row a transaction cost 160 µs of
# CPU, 16 cost 50 µs a row; a larger batch would hold the event loop for longer.
CLAIM_BATCH = 16
SHUTDOWN_GRACE = 2.0


class ReminderService:
    """One sender claims the due rows, as many at a time as workers are free (CLAIM_BATCH at
    the most), and starts a send for each. A single claimer, rather than every idle worker
    polling the outbox, is what lets many workers wait cheaply: when every idle worker woke
    up for each row falling due, all but one claimed nothing, each in a write transaction of
    its own."""

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
        self._workers = workers
        self._in_flight = 0
        self._freed = asyncio.Event()  # set when a send ends
        self._sends: set[asyncio.Task[None]] = set()
        self._failure: Exception | None = None
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; a crashed poller or send is re-raised."""
        poller = asyncio.create_task(self._poll(), name="ledger-poll")
        sender = asyncio.create_task(self._claim(), name="sender")
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([stopped, poller, sender], return_when=asyncio.FIRST_COMPLETED)
        # The failed send that stopped the sender, if one did; one failing in the grace
        # below is not re-raised, as before.
        failure = self._failure
        stopped.cancel()
        log.info("stopping: in-flight sends get %.0fs to finish", SHUTDOWN_GRACE)
        poller.cancel()
        sender.cancel()
        await asyncio.gather(stopped, poller, sender, return_exceptions=True)
        sends = set(self._sends)
        if sends:
            _, late = await asyncio.wait(sends, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
        for task in (poller, sender):
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
        if failure is not None:
            raise failure

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

    async def _claim(self) -> None:
        """Claim due rows while a worker is free; ends, for run to re-raise, when a send
        failed (a fenced write found the lease gone, or a bug)."""
        while self._failure is None:
            free = min(self._workers - self._in_flight, CLAIM_BATCH)
            if free <= 0:
                self._freed.clear()
                await self._freed.wait()
                continue
            self._wake.clear()
            rows = self._outbox.claim_due(free)
            if not rows:
                await self._idle()
                continue
            for row in rows:
                self._in_flight += 1
                send = asyncio.create_task(self._send(row))
                self._sends.add(send)
                send.add_done_callback(self._sends.discard)

    async def _send(self, row: OutboxRow) -> None:
        try:
            await self._dispatcher.deliver(row)
        except Exception as exc:
            # Kept for run to re-raise once the other sends had their grace; the sender stops.
            if self._failure is None:
                self._failure = exc
            self._wake.set()
        finally:
            # Not woken for a row put back for later: the idle sender's next look is at most
            # IDLE_RECHECK away, and the backoffs are longer (0.5 s and more).
            self._in_flight -= 1
            self._freed.set()

    async def _idle(self) -> None:
        due = self._outbox.next_due()
        wait = IDLE_RECHECK if due is None else min(IDLE_RECHECK, max(0.0, due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)
