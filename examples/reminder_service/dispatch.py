"""Sends one claimed outbox row: checked against the ledger's primary record, then resilient
failover with retries or the naive single shot; and settles sends whose answer never came by
asking the vendor."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from .alerts import Alerter
from .breaker import Breaker
from .errors import LookupFailed
from .outbox import InterruptedSend, Outbox, OutboxRow
from .primary import PrimaryCheck
from .reminder import Reminder, ReminderRecord
from .replies import e164
from .settings import Defect, Mode
from .vendors import Vendor

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 5.0


def backoff(attempts: int) -> float:
    return min(BACKOFF_FIRST * 2.0 ** (attempts - 1), BACKOFF_MAX)


class Dispatcher:
    def __init__(
        self,
        vendors: Sequence[Vendor],
        mode: Mode,
        outbox: Outbox,
        alerter: Alerter,
        primary: PrimaryCheck,
        *,
        reconcile: bool = True,
        defect: Defect | None = None,
    ) -> None:
        self._vendors = tuple(vendors)
        self._mode = mode
        self._reconcile = reconcile
        self._outbox = outbox
        self._alerter = alerter
        self._primary = primary
        self._defect = defect
        # Naive mode never skips a vendor but still counts failures, to alert.
        self._breakers = {vendor.name: Breaker() for vendor in self._vendors}
        self._slow_drain = _OnePerSecond() if defect is Defect.SLOW_DRAIN else None

    async def deliver(self, row: OutboxRow) -> None:
        if self._slow_drain is not None:
            await self._slow_drain.turn()
        record = await self._primary.current(row.record)
        if record is None:
            self._outbox.mark_unknown(row.record.reminder_id)
            log.info("withheld %s: unknown to the primary", row.record.reminder_id)
            return
        if self._cancelled(record):
            self._outbox.mark_cancelled(record.reminder_id)
            log.info("cancelled %s: repaid", record.reminder_id)
            return
        reminder = self._outgoing(record)
        errors: list[str] = []
        for vendor in self._route():
            # Checked before every attempt: a STOP can arrive while an earlier vendor times out.
            if self._opted_out(record, reminder.phone):
                self._outbox.mark_suppressed(reminder.reminder_id)
                log.info("suppressed %s: %s opted out", reminder.reminder_id, reminder.phone)
                return
            if self._mode is Mode.RESILIENT and not self._breakers[vendor.name].allow():
                errors.append(f"{vendor.name}: circuit open")
                continue
            if errors:
                log.info(
                    "failover %s to %s after %s", reminder.reminder_id, vendor.name, errors[-1]
                )
            self._outbox.mark_trying(reminder, vendor.name)
            result = await vendor.send(reminder)
            message_id = result.message_id
            if message_id is None and result.unknown:
                # A timed-out send may still have gone out. Failing over blindly would then
                # duplicate it; when the vendor cannot say either, that is the lesser harm
                # next to a missed reminder.
                message_id = await self._find(vendor, reminder)
            if message_id is not None:
                self._breakers[vendor.name].record_success()
                self._outbox.mark_sent(reminder.reminder_id, vendor.name, message_id)
                log.info(
                    "sent %s v%d to %s via %s id=%s attempt=%d%s",
                    reminder.reminder_id,
                    record.version,
                    reminder.phone,
                    vendor.name,
                    message_id,
                    row.attempts,
                    "" if result.ok else f" (found after {result.error})",
                )
                return
            errors.append(f"{vendor.name}: {result.error}")
            self._count_failure(vendor.name)
        error = "; ".join(errors)
        if self._mode is Mode.NAIVE:
            self._outbox.mark_failed(reminder.reminder_id, error)
            log.warning("failed %s, not retrying: %s", reminder.reminder_id, error)
            return
        delay = backoff(row.attempts)
        self._outbox.retry_later(reminder.reminder_id, delay, error)
        log.warning("retry %s in %.1fs: %s", reminder.reminder_id, delay, error)

    async def recover(self) -> None:
        """Settle the rows a previous process left mid-send: sent if the vendor it was asking
        has the message, due again otherwise. The vendors are asked all at once."""
        await asyncio.gather(*(self._settle(send) for send in self._outbox.interrupted()))

    async def _settle(self, send: InterruptedSend) -> None:
        vendor = next((v for v in self._vendors if v.name == send.vendor), None)
        message_id = None
        if vendor is not None and send.message is not None:
            message_id = await self._find(vendor, send.message)
        if vendor is not None and message_id is not None:
            self._outbox.mark_sent(send.reminder_id, vendor.name, message_id)
            log.warning("interrupted %s had been sent via %s", send.reminder_id, vendor.name)
        else:
            self._outbox.requeue(send.reminder_id)
            log.warning("interrupted %s requeued", send.reminder_id)

    async def _find(self, vendor: Vendor, reminder: Reminder) -> str | None:
        if not self._reconcile:
            return None
        try:
            return await vendor.find(reminder)
        except LookupFailed as exc:
            log.warning("cannot ask %s about %s: %s", vendor.name, reminder.reminder_id, exc)
            return None

    def _cancelled(self, record: ReminderRecord) -> bool:
        if self._defect is Defect.IGNORES_REPAYMENTS:
            return False  # the defect: a repaid installment is reminded anyway
        return record.cancelled

    def _opted_out(self, record: ReminderRecord, phone: str) -> bool:
        if self._defect is Defect.IGNORES_OPT_OUTS:
            return False  # the defect: neither the bank's opt-out nor a STOP reply holds it back
        if record.opted_out:
            return True
        normalised = e164(phone)
        return normalised is not None and self._outbox.is_opted_out(normalised)

    def _outgoing(self, record: ReminderRecord) -> Reminder:
        """The message for this record."""
        reminder = record.message()
        if self._defect is Defect.WRONG_AMOUNT_FORMAT:
            # The defect: the amount without its decimals, 5234 for 5234.00.
            reminder = replace(reminder, amount=reminder.amount.partition(".")[0])
        return reminder

    def _route(self) -> tuple[Vendor, ...]:
        return self._vendors if self._mode is Mode.RESILIENT else self._vendors[:1]

    def _count_failure(self, vendor: str) -> None:
        if self._slow_drain is not None:
            self._slow_drain.engaged = True
        breaker = self._breakers[vendor]
        if breaker.record_failure():
            log.error("vendor %s failing: %d consecutive failures", vendor, breaker.streak.failures)
            self._alerter.fire(f"vendor {vendor} failing", dependency=vendor)


class _OnePerSecond:
    """Defect.SLOW_DRAIN: once a send has failed, the service sends as a single-threaded retry
    queue would, one send a second in all, whatever WORKERS says."""

    def __init__(self) -> None:
        self.engaged = False
        self._lock = asyncio.Lock()
        self._next = 0.0

    async def turn(self) -> None:
        if not self.engaged:
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = loop.time() + 1.0
