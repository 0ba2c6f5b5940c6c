"""What every vendor mock shares: its identity, faults switched at run time, handsets, reports.

A vendor module (twilio.py, aliyun.py, ...) speaks one wire format. It asks `VendorMock` what
happens to each request (`admit`), to each send its rules may no longer allow (`reject`) and to
each recipient (`fate`), records accepted sends with `accept` (where the carrier's content rule
acts), and hands delivery reports to its `ReportQueue` (made by `report_queue`). Whenever a
fault switch acts on something, this shared machinery journals a `FaultTouched`, so no vendor
module has to.

Every fate is a keyed draw (`mocks.draws`): a send's is keyed by the vendor, the recipient, the
body and its attempt number (earlier sends of that body to that recipient through this vendor),
so a rerun with the same seed gives each message the same fate whatever order it arrives in.
`rng` is only for the ids vendor modules make up, never for a fate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from aiohttp import web

from harness.journal import (
    BorrowerOptedOut,
    FaultTouched,
    JournalWriter,
    MockFaultsChanged,
    SendRecorded,
    VendorCall,
)
from mocks.catalogue import secret_keys
from mocks.control import Rule, VendorFaults, fault_routes
from mocks.draws import Attempts, draw
from mocks.handsets import Handsets
from mocks.manifest import VendorConfig
from mocks.paths import is_own
from mocks.sends import Secrets, SendRecord
from mocks.webhooks import Webhooks

log = logging.getLogger("mocks.vendor")

T = TypeVar("T")

Fate = Literal["ok", "invalid", "barred", "failed"]
"""What the vendor API says of one recipient: accepted, or which kind of refusal."""


class Style(Protocol):
    """The vendor's own way of saying it is down, throttling, or refusing a send by its rules."""

    def outage(self, status: int) -> web.Response: ...

    def throttled(self) -> web.Response: ...

    def rejected(self, rule: Rule) -> web.Response | None:
        """The refusal of a send that `rule` no longer allows; None when this vendor accepts
        such a send and its carriers filter it (`accept` then drops it as filtered)."""
        ...


class Touch(Protocol):
    """Journals that fault switch `switch` acted on `subject` (see `VendorMock.touched`)."""

    def __call__(self, switch: str, subject: str = "", **detail: Any) -> None: ...


SendKey = tuple[str, str, str, int]
"""What a send's draws are keyed by: vendor, recipient, body, attempt number."""


class Draw(Protocol):
    """A keyed draw in [0, 1) of this vendor's seed for fault switch `switch`."""

    def __call__(self, switch: str, *key: object) -> float: ...


class ResponseLost(Exception):
    """The send was recorded but the answer must never reach the client."""


@dataclass
class _Call:
    """What happened during one API call, noted by `admit` and `accept`."""

    sends: list[tuple[str, str, SendKey]] = field(default_factory=list)  # (id, to, key) accepted
    asked: list[str] = field(default_factory=list)  # recipients whose fate was asked
    read: bool = False
    refused: bool = False
    passed: Rule | None = None  # the rule the vendor let through for its carriers to filter
    filtered: set[str] = field(default_factory=set)  # message ids the carrier filtered


_CALL: ContextVar[_Call] = ContextVar("vendor_call")


def _call() -> _Call:
    """The call in progress (a throwaway one outside a call), made only when there is none:
    `_CALL.get(_Call())` made one on every look, four times a send."""
    call = _CALL.get(None)
    return _Call() if call is None else call


FILTERED = "filtered"
"""A report's status when the carrier filtered the message (it never reached the handset)."""


@dataclass(frozen=True)
class Report:
    """A delivery report to send: the record it is about, the handset's final status (or
    FILTERED), and where it goes (the message's own callback URL, or the vendor's configured
    one)."""

    send: SendRecorded
    delivered: bool
    status: str
    sender: str
    callback: str


IN_FLIGHT = 16
"""Per-message reports a vendor posts at once (each its callbacks in order): enough to keep up
with the sends when each takes a round trip to a busy receiver."""

Deliver = Callable[[list[Report]], Awaitable[None]]
Forward = Callable[[str, str, str], Awaitable[None]]
"""Forwards a borrower's reply (url, from the borrower's number, to the sender) vendor-style."""


@dataclass
class ReportQueue:
    """Delivery reports with their faults (delay, loss, duplication, reordering).

    `deliver` posts a batch in the vendor's format: per-message vendors get batches of one.
    `filtered`: whether the vendor reports a message its carrier filtered (Twilio does, as
    undelivered); the others say nothing of it.
    """

    deliver: Deliver
    batch: bool
    draw: Draw
    faults: Callable[[], VendorFaults]
    touched: Touch
    interval: float = 0.5
    filtered: bool = False
    _pending: list[tuple[float, tuple[object, ...], Report]] = field(default_factory=list)
    _reports: Attempts = field(default_factory=Attempts)

    def put(self, report: Report) -> None:
        """Queue one report, applying the loss, duplication and delay faults in force now.

        Its draws are keyed by its message's recipient and body and how many reports of that
        message were queued before (message ids are made up afresh in every run)."""
        faults, send = self.faults(), report.send
        subject = send.message_id
        key = (send.to, send.body, self._reports.next((send.to, send.body)))
        # A draw is in [0, 1): a fault that is off is not drawn for (two draws a send).
        if faults.dlr_loss > 0 and self.draw("dlr_loss", *key) < faults.dlr_loss:
            self.touched("dlr_loss", subject)
            return
        if faults.dlr_delay:
            self.touched("dlr_delay", subject, seconds=faults.dlr_delay)
        due = time.time() + faults.dlr_delay
        copies = 2 if (faults.dlr_duplicate > 0
                       and self.draw("dlr_duplicate", *key) < faults.dlr_duplicate) else 1
        if copies == 2:
            self.touched("dlr_duplicate", subject)
        self._pending.extend((due, (*key, copy), report) for copy in range(copies))

    async def run(self) -> None:
        """Send what is due every `interval`, until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            now = time.time()
            ready = [(key, report) for when, key, report in self._pending if when <= now]
            if not ready:
                continue
            self._pending = [entry for entry in self._pending if entry[0] > now]
            if self.faults().dlr_reorder and len(ready) > 1:  # one report has no order to lose
                # Ordered by a draw per report: a shuffle that the same reports repeat.
                ready.sort(key=lambda entry: self.draw("dlr_reorder", *entry[0]))
                self.touched("dlr_reorder", reports=len(ready))
            due = [report for _, report in ready]
            if self.batch:
                await self._deliver(due)
                continue
            # Per-message reports, started in their order, at most IN_FLIGHT at a time: one at
            # a time, they fell ever further behind the sends (a round trip each). A reordering
            # fault's order is the order they arrive in, so under it they go one at a time.
            chunks = iter([[report] for report in due])
            senders = 1 if self.faults().dlr_reorder else min(IN_FLIGHT, len(due))
            await asyncio.gather(*(self._deliver_each(chunks) for _ in range(senders)))

    async def _deliver_each(self, chunks: Iterator[list[Report]]) -> None:
        for chunk in chunks:  # shared between the senders: each takes the next one not taken
            await self._deliver(chunk)

    async def _deliver(self, chunk: list[Report]) -> None:
        try:
            await self.deliver(chunk)
        except Exception as exc:  # a receiver's failure must not stop the others
            log.info("delivery report failed: %s", exc)


class VendorMock:
    """One vendor of the fleet: the shared machinery its wire-format module builds on."""

    def __init__(self, name: str, config: VendorConfig, credentials: dict[str, str],
                 record: SendRecord, journal: JournalWriter, handsets: Handsets,
                 seed: int) -> None:
        self.name = name
        self.config = config
        self.credentials = credentials
        self._secrets = Secrets.of(credentials, secret_keys(config.kind))
        self.record = record
        self.handsets = handsets
        self.faults = VendorFaults()
        self.quiet = True  # no fault switched on: what a fast path may rely on (`mocks.front`)
        self.seed = seed
        self.rng = random.Random(f"{seed}:{name}")  # ids only; fates are keyed draws
        self._sends = Attempts()  # (to, body) -> attempt number
        self._asks = Attempts()  # (to, body) -> multi-recipient asks so far
        self._sendless = Attempts()  # a call that accepted nothing -> its repeats so far
        self.forward_reply: Forward | None = None
        self.webhooks = Webhooks(name)  # reports and replies, over kept connections
        self._journal = journal
        self._replies: set[asyncio.Task[None]] = set()
        self._stopped: set[tuple[str, str]] = set()  # (borrower, sender) of each STOP reply

    def switch(self, faults: VendorFaults) -> None:
        """Put `faults` in force now, and journal when they took effect."""
        self.faults = faults
        self.quiet = faults == VendorFaults()
        self._journal.write(MockFaultsChanged(
            mock=self.name, faults=faults.model_dump(mode="json", exclude_defaults=True)))

    def touched(self, switch: str, subject: str = "", **detail: Any) -> None:
        """Journal that fault switch `switch` (a VendorFaults field) acted on `subject` (a
        message id; empty when a whole call or no send is concerned)."""
        self._journal.write(FaultTouched(mock=self.name, switch=switch, subject=subject,
                                         detail=detail))

    def draw(self, switch: str, *key: object) -> float:
        """The keyed draw of fault switch `switch` for `key`, from this vendor's seed."""
        return draw(self.seed, self.name, switch, *key)

    def report_queue(self, deliver: Deliver, *, batch: bool, interval: float = 0.5,
                     filtered: bool = False) -> ReportQueue:
        """A report queue under this vendor's faults, drawing from it, journaling what they do."""
        return ReportQueue(deliver, batch=batch, draw=self.draw, faults=lambda: self.faults,
                           touched=self.touched, interval=interval, filtered=filtered)

    async def admit(self, style: Style) -> web.Response | None:
        """Apply latency, then outage or throttling: a response to send instead, or None."""
        if self.faults.latency:
            self.touched("latency", seconds=self.faults.latency)
            await asyncio.sleep(self.faults.latency)
        faults = self.faults  # as in force once the delay is over
        if faults.outage is None and not faults.throttle:
            return None
        _call().refused = True
        if faults.outage is not None:
            self.touched("outage", status=faults.outage)
            return style.outage(faults.outage)
        self.touched("throttle")
        return style.throttled()

    def reject(self, style: Style) -> web.Response | None:
        """The vendor's refusal of this send under the `rejects` fault (journaled as touching
        the call), or None. A vendor whose style lets such a send through has `accept` drop it
        as its carrier's filtering (journaled as touching the message)."""
        rule = self.faults.rejects
        if rule is None:
            return None
        response = style.rejected(rule)
        if response is None:
            _call().passed = rule
        else:
            self.touched("rejects", rejects=rule)
        return response

    def stopped(self, phone: str, sender: str) -> bool:
        """Whether the borrower at `phone` has replied STOP to `sender`."""
        return (phone, sender) in self._stopped

    def filtered(self, message_id: str) -> bool:
        """Whether the carrier filtered `message_id`, a send this call accepted."""
        return message_id in _call().filtered

    def fate(self, number: str, body: str, recipients: int = 1) -> Fate:
        """What the API says of one recipient of `body`: invalid, barred, failed (partial) or
        ok. Ask once per recipient: each refusal is journaled as the fault touching it. The
        partial draw is keyed like a send's: by the recipient, the body, and how many
        multi-recipient calls to this vendor asked of that message before."""
        faults = self.faults
        _call().asked.append(number)
        if number in faults.invalid_numbers:
            self.touched("invalid_numbers", to=number)
            return "invalid"
        if number in faults.barred_numbers:
            self.touched("barred_numbers", to=number)
            return "barred"
        if recipients > 1 and self.draw("partial", number, body,
                                        self._asks.next((number, body))) < faults.partial:
            self.touched("partial", to=number, recipients=recipients)
            return "failed"
        return "ok"

    def accept(self, *, message_id: str, to: str, sender: str, body: str,
               client_ref: str | None, request: dict[str, object],
               reports: ReportQueue | None, callback: str | None = None) -> SendRecorded:
        """Record an accepted send, let the handset decide its delivery, queue its report.
        The call's raw request is journaled with its first send only, with this vendor's
        secrets masked wherever they are in it."""
        key: SendKey = (self.name, to, body, self._sends.next((to, body)))
        call = _call()
        first = call.sends[0][0] if call.sends else None
        if first is None:
            request = self._secrets.mask(request)
        call.sends.append((message_id, to, key))
        drop = self.faults.drop  # a draw is pure: with no chance, it need not be made
        dropped = drop > 0 and self.draw("drop", *key[1:]) < drop
        if dropped:
            self.touched("drop", message_id, to=to)
        carrier = None if dropped else self._carrier(call, message_id, body)
        outcome: Literal["delivered", "spam", "absent", "dropped"] = (
            "dropped" if dropped or carrier == "drop"
            else self.handsets.receive(to, sender, body, key))
        if carrier == "spam" and outcome == "delivered":
            outcome = "spam"
        send = self.record.add(vendor=self.name, message_id=message_id, to=to, body=body,
                               client_ref=client_ref, request=request, handset=outcome,
                               request_of=first)
        callback = callback or self.config.report_url
        if reports is not None and callback and not dropped:
            if carrier == "drop":
                if reports.filtered:
                    reports.put(Report(send, False, FILTERED, sender, callback))
            else:
                delivered = outcome in ("delivered", "spam")
                reports.put(Report(send, delivered, outcome, sender, callback))
        if outcome == "delivered" and self.handsets.replies_stop(to):
            self._opt_out(to, sender)
        return send

    def _carrier(self, call: _Call, message_id: str, body: str) -> Literal["drop", "spam"] | None:
        """What the carrier does with an accepted message: drop it (a rule the vendor let
        through, or the content filter's drop), divert it to the spam folder, or nothing."""
        if call.passed is not None:
            self.touched("rejects", message_id, rejects=call.passed)
            call.filtered.add(message_id)
            return "drop"
        faults = self.faults
        found = None if faults.content_filter is None else re.search(faults.content_filter, body)
        if found is None:
            return None
        self.touched("content_filter", message_id, action=faults.content_action,
                     matched=found.group())
        if faults.content_action == "drop":
            call.filtered.add(message_id)
        return faults.content_action

    def _opt_out(self, phone: str, sender: str) -> None:
        """The borrower will reply STOP once they have read the message: from then the truth
        says they opted out, and the reply goes to the notifier."""
        task = asyncio.create_task(self._reply_stop(phone, sender))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _reply_stop(self, phone: str, sender: str) -> None:
        await asyncio.sleep(self.handsets.stop_after)
        self._journal.write(BorrowerOptedOut(phone=phone, vendor=self.name))
        self._stopped.add((phone, sender))
        url = self.config.inbound_url
        if not url or self.forward_reply is None:
            return
        try:
            await self.forward_reply(url, phone, sender)
        except Exception as exc:  # the receiver's failure is the notifier's problem to notice
            log.info("forwarding a STOP reply to %s failed: %s", url, exc)

    def read(self) -> None:
        """Note that this call was answered with the record of past sends (a lookup)."""
        _call().read = True

    def lose_response(self) -> bool:
        """Whether this send's answer is to be lost (the record is kept); each send of the call
        is journaled as touched (the call itself when it accepted none). The draw is keyed by
        the call's sends (else the recipients it asked about, else how many such calls came
        before)."""
        call = _call()
        sends = call.sends
        key: tuple[object, ...] = (tuple(send[2][1:] for send in sends) if sends
                                   else ("asked", *call.asked) if call.asked else ("call",))
        if not sends:  # a repeated call that accepted nothing is keyed by its repetition
            key = (*key, self._sendless.next(key))
        lost = self.faults.response_lost
        if lost <= 0 or self.draw("response_lost", *key) >= lost:
            return False
        for message_id, to, _ in sends:
            self.touched("response_lost", message_id, to=to)
        if not sends:
            self.touched("response_lost")
        return True

    def control_routes(self) -> list[web.RouteDef]:
        """The fault switch and the record of sends of this vendor."""
        return [*fault_routes(VendorFaults, lambda: self.faults, self.switch),
                *self.record.routes(self.name)]

    @web.middleware
    async def _journal_calls(self, request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                             ) -> web.StreamResponse:
        """Journal every API call with its outcome and latency; the mocks' own endpoints (the
        control API, LocalStack's record) are not vendor calls."""
        if is_own(request.path):
            return await handler(request)
        call, began = _Call(), time.monotonic()
        _CALL.set(call)
        try:
            response = await handler(request)
        except ResponseLost:
            self._journal.write(VendorCall(vendor=self.name, status=None, outcome="lost",
                                           latency=time.monotonic() - began))
            self._journal.commit()  # the send is in the file before the client sees the cut
            # The send is recorded; the client sees the connection close with no answer,
            # which is what makes SDKs and notifiers send it again.
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError from None
        self._journal_call(call, response.status, began)
        return response

    def _journal_call(self, call: _Call, status: int, began: float) -> None:
        outcome: Literal["accepted", "read", "rejected", "refused"] = (
            "refused" if call.refused else "accepted" if call.sends
            else "read" if call.read else "rejected")
        self._journal.append(VendorCall(vendor=self.name, status=status, outcome=outcome,
                                        latency=time.monotonic() - began))

    def fast_call(self, handle: Callable[[], T | None], status: int) -> T | None:
        """Run `handle`, the whole (synchronous) handling of one API call by a fast path, as
        `_journal_calls` runs a handler: journaled as a call answered with `status`, unless it
        declined (None: it must then have had no effect, and the slow path answers)."""
        call, began = _Call(), time.monotonic()
        scope = _CALL.set(call)
        try:
            handled = handle()
        finally:
            _CALL.reset(scope)
        if handled is not None:
            self._journal_call(call, status, began)
        return handled

    def application(self, reports: ReportQueue | None = None) -> web.Application:
        """A fresh aiohttp app with the control routes, the report queue's lifetime and the
        webhooks' session, closed when the app stops."""
        app = web.Application(middlewares=[self._journal_calls])
        app.router.add_routes(self.control_routes())

        async def close_webhooks(_: web.Application) -> AsyncIterator[None]:
            yield
            await self.webhooks.close()

        app.cleanup_ctx.append(close_webhooks)  # first in, last out: after the reports stop
        if reports is not None:

            async def run_reports(_: web.Application) -> AsyncIterator[None]:
                task = asyncio.create_task(reports.run())
                yield
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            app.cleanup_ctx.append(run_reports)
        return app
