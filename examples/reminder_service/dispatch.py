"""Sends one claimed outbox row: checked against the ledger's primary record, then resilient
failover with retries (falling back to push, then e-mail, when SMS fails for good) or the naive
single shot; and settles sends whose answer never came by asking the vendor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .alerts import Alerter
from .breaker import Breaker, FailureStreak, QuietStreak
from .channels import ChannelResult, FallbackChannel, Verdict
from .errors import LookupFailed
from .outbox import Doubt, Fallback, InterruptedSend, Outbox, OutboxRow
from .primary import PrimaryCheck
from .reminder import Reminder, ReminderRecord
from .replies import e164
from .settings import Defect, Mode
from .vendors import Vendor

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 5.0

# A reminder whose SMS still failed this long after its remind_at falls back, whatever the
# reason: half of a 20 s SMS window, leaving push and e-mail theirs.
SMS_PATIENCE = 10.0
# A send whose answer was lost, at a vendor that cannot be asked about it, waits this long
# after its remind_at for that vendor to answer before being sent again elsewhere: an outage
# shorter than three quarters of a 20 s SMS window then costs no duplicate, and a longer one
# still leaves the other vendor 5 s.
DOUBT_PATIENCE = 15.0
# How often it is asked meanwhile: a lookup is cheap, and only the sends in flight when the
# vendor went away are in doubt.
DOUBT_ASK_EVERY = 1.0
# Temporary failures on a channel with another after it before moving on to that one; the
# last channel keeps retrying, as SMS does without fallbacks.
CHANNEL_TRIES = 3
# The id kept for a send that may have gone out but whose answer no one can give.
UNCONFIRMED = "unconfirmed"
# How long a carrier-filtered report that came before its send was marked is kept for it.
EARLY_REPORT_TTL = 60.0


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
        fallbacks: Sequence[FallbackChannel] = (),
    ) -> None:
        self._vendors = tuple(vendors)
        self._fallbacks = tuple(fallbacks)
        self._channel_streaks = {channel.name: FailureStreak() for channel in self._fallbacks}
        self._pause = QuietStreak()
        # Reports of a filtered message that overtook the send's own mark (message id: reason,
        # when), settled as soon as the send is marked.
        self._early_reports: dict[str, tuple[str, float]] = {}
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
        if row.doubt is not None and await self._settles_doubt(record, row.doubt):
            return
        reminder = self._outgoing(record)
        fallback = self._outbox.fallback(reminder.reminder_id)
        if fallback is None:
            failure = await self._by_sms(row, record, reminder)
            if failure is None:
                return
            if not self._gives_up_sms(record, reminder, failure):
                self._sms_failed(row, reminder, failure.error)
                return
            if failure.paused:
                self._paused(failure.error)
            fallback = Fallback(self._fallbacks[0].name, 0)
            reason = f"sms: {failure.error}"
            self._outbox.fall_back(reminder.reminder_id, fallback.channel, reason)
            log.warning("falling back %s to %s: %s", reminder.reminder_id, fallback.channel, reason)
        await self._by_fallbacks(record, reminder, fallback)

    async def _by_sms(
        self, row: OutboxRow, record: ReminderRecord, reminder: Reminder
    ) -> _SmsFailure | None:
        """Send through the vendors in turn; None when done for now (sent, suppressed, or in
        doubt and to be asked about again)."""
        errors: list[str] = []
        refusals: list[str] = []
        for vendor in self._route():
            # Checked before every attempt: a STOP can arrive while an earlier vendor times out.
            if self._opted_out(record, reminder.phone):
                self._suppress(reminder)
                return None
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
            if message_id is None and result.unknown and self._reconcile:
                # A timed-out send may still have gone out: failing over blindly would then
                # duplicate it. When the vendor cannot say either, it is asked again later,
                # until waiting would cost the reminder its window.
                try:
                    message_id = await vendor.find(reminder)
                except LookupFailed as exc:
                    if not self._past_doubt(record):
                        self._count_failure(vendor.name)
                        self._doubt(reminder, vendor, f"{result.error}; {exc}")
                        return None
                    log.warning(
                        "cannot ask %s about %s: %s", vendor.name, reminder.reminder_id, exc
                    )
            if message_id is not None:
                self._breakers[vendor.name].record_success()
                self._outbox.mark_sent(reminder.reminder_id, vendor.name, message_id)
                early = self._early_reports.pop(message_id, None)
                if early is not None:
                    self.carrier_filtered(message_id, early[0])
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
                return None
            errors.append(f"{vendor.name}: {result.error}")
            if result.refusal is not None:
                refusals.append(result.refusal)
            if result.refusal != "recipient":  # one borrower's number says nothing of the vendor
                self._count_failure(vendor.name)
        route = self._route()
        return _SmsFailure(
            error="; ".join(errors),
            refused=len(refusals) == len(route),
            paused=refusals.count("message") == len(route),
            down=all(self._breakers[vendor.name].streak.tripped for vendor in route),
        )

    async def _settles_doubt(self, record: ReminderRecord, doubt: Doubt) -> bool:
        """Ask the vendor about the send in doubt: True when that settles the row for now (the
        vendor has it, or still cannot say and there is time to ask again), False when the
        reminder is to be sent as if never tried."""
        vendor = next((v for v in self._vendors if v.name == doubt.vendor), None)
        if vendor is None:
            return False
        try:
            message_id = await vendor.find(doubt.message)
        except LookupFailed as exc:
            if self._past_doubt(record):
                log.warning(
                    "cannot ask %s about %s in time, sending it again: %s",
                    vendor.name,
                    record.reminder_id,
                    exc,
                )
                return False
            self._doubt(doubt.message, vendor, str(exc))
            return True
        if message_id is None:
            log.info("%s never sent %s: sending it", vendor.name, record.reminder_id)
            return False
        self._breakers[vendor.name].record_success()
        self._outbox.mark_sent(record.reminder_id, vendor.name, message_id)
        log.info(
            "in-doubt %s had been sent via %s id=%s", record.reminder_id, vendor.name, message_id
        )
        return True

    def _doubt(self, reminder: Reminder, vendor: Vendor, error: str) -> None:
        self._outbox.in_doubt(reminder.reminder_id, DOUBT_ASK_EVERY, f"{vendor.name}: {error}")
        log.warning(
            "in doubt %s: %s may have sent it and cannot say; asking again in %.1fs",
            reminder.reminder_id,
            vendor.name,
            DOUBT_ASK_EVERY,
        )

    @staticmethod
    def _past_doubt(record: ReminderRecord) -> bool:
        return time.time() - record.remind_at.timestamp() >= DOUBT_PATIENCE

    def _gives_up_sms(
        self, record: ReminderRecord, reminder: Reminder, failure: _SmsFailure
    ) -> bool:
        """Whether SMS is done with for this reminder: its vendors refuse it for good, are all
        down, or it is overdue; and another channel can reach the borrower."""
        if not any(channel.reaches(reminder) for channel in self._fallbacks):
            return False
        overdue = time.time() - record.remind_at.timestamp() >= SMS_PATIENCE
        return failure.refused or failure.down or overdue

    def _sms_failed(self, row: OutboxRow, reminder: Reminder, error: str) -> None:
        if self._mode is Mode.NAIVE:
            self._outbox.mark_failed(reminder.reminder_id, error)
            log.warning("failed %s, not retrying: %s", reminder.reminder_id, error)
            return
        delay = backoff(row.attempts)
        self._outbox.retry_later(reminder.reminder_id, delay, error)
        log.warning("retry %s in %.1fs: %s", reminder.reminder_id, delay, error)

    def _paused(self, error: str) -> None:
        """Every vendor refuses the message itself (its template, its signature): a compliance
        pause, alerted once per streak."""
        log.error("sms compliance pause: %s", error)
        if self._pause.record():
            self._alerter.fire(f"sms compliance pause: {error}", dependency="sms")

    async def _by_fallbacks(
        self, record: ReminderRecord, reminder: Reminder, fallback: Fallback
    ) -> None:
        """Send on the reminder's fallback channel, moving on to the next while one fails for
        good; one copy per channel at most, since a channel left is never tried again."""
        names = [channel.name for channel in self._fallbacks]
        if fallback.channel not in names:
            error = f"fell back to {fallback.channel}, which CHANNELS does not list"
            self._outbox.mark_failed(reminder.reminder_id, error)
            log.error("failed %s: %s", reminder.reminder_id, error)
            return
        start = names.index(fallback.channel)
        if not any(channel.reaches(reminder) for channel in self._fallbacks[start:]):
            # A carrier filtered its SMS, and no other channel reaches the borrower: SMS is
            # still the only way, once the filter lets it through.
            error = "no other channel reaches the borrower"
            self._outbox.back_to_sms(reminder.reminder_id, backoff(1), error)
            log.warning("back on sms %s: %s", reminder.reminder_id, error)
            return
        tries = fallback.tries
        errors: list[str] = []
        for channel in self._fallbacks[start:]:
            if errors:
                self._outbox.fall_back(reminder.reminder_id, channel.name, errors[-1])
                tries = 0
            if self._opted_out(record, reminder.phone):
                self._suppress(reminder)
                return
            if not channel.reaches(reminder):
                errors.append(f"{channel.name}: the borrower has none")
                continue
            self._outbox.mark_trying(reminder, channel.name)
            result = await channel.send(reminder)
            if result.verdict is Verdict.SENT:
                self._channel_streaks[channel.name].record_success()
                self._sent_on(channel.name, reminder, result)
                return
            error = f"{channel.name}: {result.detail}"
            if not result.recipient:
                self._count_channel_failure(channel.name)
            last = channel is self._fallbacks[-1]
            if result.verdict is Verdict.RETRY and (last or tries + 1 < CHANNEL_TRIES):
                delay = backoff(tries + 1)
                self._outbox.channel_failed(reminder.reminder_id, delay, error)
                log.warning("retry %s in %.1fs: %s", reminder.reminder_id, delay, error)
                return
            log.warning("giving up %s on %s: %s", reminder.reminder_id, channel.name, result.detail)
            errors.append(error)
        error = "; ".join(errors)
        self._outbox.mark_failed(reminder.reminder_id, error)
        log.error("failed %s on every channel: %s", reminder.reminder_id, error)

    def _sent_on(self, channel: str, reminder: Reminder, result: ChannelResult) -> None:
        message_id = result.message_id or UNCONFIRMED
        self._outbox.mark_sent(reminder.reminder_id, channel, message_id)
        log.info(
            "sent %s by %s to %s id=%s%s",
            reminder.reminder_id,
            channel,
            reminder.device_token if channel == "push" else reminder.email,
            message_id,
            f" ({result.detail})" if result.detail else "",
        )

    def _suppress(self, reminder: Reminder) -> None:
        self._outbox.mark_suppressed(reminder.reminder_id)
        log.info("suppressed %s: %s opted out", reminder.reminder_id, reminder.phone)

    def carrier_filtered(self, message_id: str, reason: str) -> None:
        """A vendor took the message, then its carrier filtered it (a delivery report says
        so): the vendor's failure counts as a refused send, and the reminder falls back now
        if there is another channel."""
        channel = self._fallbacks[0].name if self._fallbacks else None
        found = self._outbox.filtered(message_id, channel, reason)
        if found is None:
            # Perhaps the report overtook the send's own mark: kept a while for it.
            now = time.monotonic()
            self._early_reports = {
                mid: kept
                for mid, kept in self._early_reports.items()
                if now - kept[1] < EARLY_REPORT_TTL
            }
            self._early_reports[message_id] = (reason, now)
            return
        reminder_id, vendor = found
        if channel is not None:
            log.warning("falling back %s to %s: %s", reminder_id, channel, reason)
        if vendor in self._breakers:
            self._count_failure(vendor)

    async def recover(self) -> None:
        """Settle the rows a previous process left mid-send: sent if the vendor it was asking
        has the message, due again otherwise. The vendors are asked all at once."""
        await asyncio.gather(*(self._settle(send) for send in self._outbox.interrupted()))

    async def _settle(self, send: InterruptedSend) -> None:
        names = [channel.name for channel in self._fallbacks]
        if send.vendor in names:
            self._settle_fallback(send.reminder_id, names, send.vendor)
            return
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

    def _settle_fallback(self, reminder_id: str, names: list[str], channel: str) -> None:
        """Neither push nor SMTP can be asked about a message: one interrupted may have gone
        out, so it is not sent again on that channel (a second copy there counts against us).
        Moved on to the next one; on the last, counted as sent."""
        after = names[names.index(channel) + 1 :]
        if not after:
            self._outbox.mark_sent(reminder_id, channel, UNCONFIRMED)
            log.warning("interrupted %s on %s counted as sent", reminder_id, channel)
            return
        self._outbox.fall_back(reminder_id, after[0], f"{channel}: interrupted")
        self._outbox.requeue(reminder_id)
        log.warning("interrupted %s on %s requeued on %s", reminder_id, channel, after[0])

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
        if self._defect is Defect.LEAKS_PII:
            # The defect: the full national id and card number, and no opt-out notice.
            reminder = replace(
                reminder,
                card_tail=record.account or "",
                national_id=record.national_id,
                notice="",
            )
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

    def _count_channel_failure(self, channel: str) -> None:
        streak = self._channel_streaks[channel]
        if streak.record_failure():
            log.error("channel %s failing: %d consecutive failures", channel, streak.failures)
            self._alerter.fire(f"channel {channel} failing", dependency=channel)


@dataclass(frozen=True)
class _SmsFailure:
    """A pass over the SMS vendors that sent nothing."""

    error: str
    refused: bool
    """Every vendor refused the message for good."""
    paused: bool
    """Every vendor refused the message itself (template, signature, content)."""
    down: bool
    """Every vendor is failing, its breaker open."""


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
