"""The check just before a send: the ledger's primary record of the reminder, and a replica that
differs from it noticed and alerted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .alerts import Alerter
from .breaker import Breaker, QuietStreak
from .ledger import LedgerClient, LedgerError, UnknownReminder
from .reminder import ReminderRecord

log = logging.getLogger(__name__)

# How long after the source made a version the replica may still lack it: the feed is polled
# every half second, and a change reaches it a moment after the source.
REPLICA_GRACE = 2.0

_COMPARED = ("phone", "amount", "due_date")


class PrimaryCheck:
    def __init__(
        self,
        ledger: LedgerClient,
        alerter: Alerter,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._alerter = alerter
        self._wall_clock = wall_clock
        # A primary that keeps failing is skipped for a cool-down, so that a slow ledger link
        # does not hold up every send by the primary's timeout.
        self._breaker = Breaker(clock=clock)
        self._differences = QuietStreak(clock=clock)

    async def current(self, feed: ReminderRecord) -> ReminderRecord | None:
        """The primary's record of this reminder; the feed's when the primary cannot answer,
        since a missed reminder is the greater harm; None when the source has no such
        reminder, which is then no one's to send."""
        if not self._breaker.allow():
            return feed
        try:
            primary = await self._ledger.primary(feed.reminder_id)
        except UnknownReminder:
            self._breaker.record_success()
            self._differ(feed.reminder_id, "the primary has no such reminder")
            return None
        except LedgerError as exc:
            self._breaker.record_failure()
            log.warning(
                "primary record of %s unavailable, sending the feed's: %s", feed.reminder_id, exc
            )
            return feed
        self._breaker.record_success()
        difference = self._difference(feed, primary)
        if difference is not None:
            self._differ(feed.reminder_id, difference)
        return primary

    def _differ(self, reminder_id: str, difference: str) -> None:
        log.warning("ledger replica differs from primary on %s: %s", reminder_id, difference)
        if self._differences.record():
            self._alerter.fire("ledger replica differs from primary", dependency="ledger")

    def _difference(self, feed: ReminderRecord, primary: ReminderRecord) -> str | None:
        if primary.version == feed.version:
            fields = [
                f"{name} {getattr(feed, name)!r} (primary {getattr(primary, name)!r})"
                for name in _COMPARED
                if getattr(feed, name) != getattr(primary, name)
            ]
            return f"version {feed.version} has {', '.join(fields)}" if fields else None
        age = (self._wall_clock() - primary.as_of).total_seconds()
        if primary.version > feed.version and age > REPLICA_GRACE:
            return (
                f"replica at version {feed.version}, primary at {primary.version} since {age:.1f}s"
            )
        return None
