"""Client for the ledger's pull API: the change feed and the primary record of one reminder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any
from urllib.parse import quote

import aiohttp

from .bank_calendar import WALL, Calendar
from .errors import describe
from .reminder import ReminderRecord
from .settings import Defect

# The contract's largest page: at 2000 reminders a second, a poll every half second reads two
# pages rather than ten.
PAGE_SIZE = 500


class LedgerError(Exception):
    """The ledger could not be reached or answered something unusable."""


class UnknownReminder(LedgerError):
    """The primary has no such reminder: the replica holds a record the source never made."""


@dataclass(frozen=True)
class FeedPage:
    entries: tuple[ReminderRecord, ...]
    next_cursor: int
    has_more: bool


class LedgerClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        feed_timeout: float,
        primary_timeout: float,
        defect: Defect | None = None,
        calendar: Calendar = WALL,
    ) -> None:
        self._session = session
        self._calendar = calendar
        self._base_url = f"{base_url}/v1/reminders"
        self._feed_timeout = _timeout(feed_timeout)
        self._primary_timeout = _timeout(primary_timeout)
        self._defect = defect
        self._first_phones: dict[str, str] = {}  # for Defect.CACHED_PHONES only

    async def changes(self, cursor: int) -> FeedPage:
        """The feed's page after `cursor`; LedgerError if any entry is off-contract, so that
        the same page is read again later rather than half of it now."""
        query = {"cursor": str(cursor), "limit": str(PAGE_SIZE)}
        body = await self._get(f"{self._base_url}/changes", self._feed_timeout, query)
        try:
            page = _parse_page(body, self._calendar)
        except ValueError as exc:
            raise LedgerError(f"malformed page: {exc}") from exc
        if self._defect is Defect.WRONG_TIMEZONE:
            # The defect: the offset dropped, remind_at's wall-clock time read as UTC.
            entries = tuple(
                replace(entry, remind_at=entry.remind_at.replace(tzinfo=UTC))
                for entry in page.entries
            )
            page = replace(page, entries=entries)
        return replace(page, entries=tuple(self._as_cached(entry) for entry in page.entries))

    async def primary(self, reminder_id: str) -> ReminderRecord:
        """The source's record of the reminder as it is now; UnknownReminder on a 404."""
        url = f"{self._base_url}/{quote(reminder_id, safe='')}"
        body = await self._get(url, self._primary_timeout, {}, unknown=404)
        try:
            record = ReminderRecord.from_ledger(body, self._calendar)
        except ValueError as exc:
            raise LedgerError(f"malformed primary record: {exc}") from exc
        return self._as_cached(record)

    def _as_cached(self, record: ReminderRecord) -> ReminderRecord:
        if self._defect is not Defect.CACHED_PHONES:
            return record
        # The defect: a borrower's phone is the first one ever seen for them, in the feed or
        # the primary, whatever the ledger says since.
        phone = self._first_phones.setdefault(record.borrower_id, record.phone)
        return replace(record, phone=phone)

    async def _get(
        self,
        url: str,
        timeout: aiohttp.ClientTimeout,
        query: dict[str, str],
        *,
        unknown: int | None = None,
    ) -> Any:
        try:
            async with self._session.get(url, params=query, timeout=timeout) as response:
                status = response.status
                body: Any = await response.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LedgerError(describe(exc)) from exc
        except ValueError as exc:
            raise LedgerError(f"answer is not JSON: {exc}") from exc
        if status == unknown:
            raise UnknownReminder(f"HTTP {status}")
        if status != 200:
            raise LedgerError(f"HTTP {status}")
        return body


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(1.0, seconds))


def _parse_page(body: Any, calendar: Calendar) -> FeedPage:
    if not isinstance(body, dict):
        raise ValueError("not an object")
    items = body.get("changes")
    next_cursor = body.get("next_cursor")
    has_more = body.get("has_more")
    if not isinstance(items, list):
        raise ValueError("'changes' is not an array")
    if not isinstance(next_cursor, int) or isinstance(next_cursor, bool):
        raise ValueError("'next_cursor' is not an integer")
    if not isinstance(has_more, bool):
        raise ValueError("'has_more' is not a boolean")
    return FeedPage(
        tuple(ReminderRecord.from_ledger(item, calendar) for item in items), next_cursor,
        has_more,
    )
