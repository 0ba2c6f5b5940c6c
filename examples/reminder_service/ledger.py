"""Client for the ledger's pull API of due reminders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from .errors import describe
from .reminder import Reminder

PAGE_SIZE = 100


class LedgerError(Exception):
    """The ledger could not be reached or answered something unusable."""


@dataclass(frozen=True)
class LedgerPage:
    reminders: tuple[Reminder, ...]
    next_cursor: int
    has_more: bool


class LedgerClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self._session = session
        self._url = f"{base_url}/v1/reminders/due"
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(1.0, timeout))

    async def fetch(self, cursor: int) -> LedgerPage:
        query = {"cursor": str(cursor), "limit": str(PAGE_SIZE)}
        try:
            async with self._session.get(
                self._url, params=query, timeout=self._timeout
            ) as response:
                status = response.status
                body: Any = await response.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LedgerError(describe(exc)) from exc
        except ValueError as exc:
            raise LedgerError(f"page is not JSON: {exc}") from exc
        if status != 200:
            raise LedgerError(f"HTTP {status}")
        try:
            return _parse_page(body)
        except ValueError as exc:
            raise LedgerError(f"malformed page: {exc}") from exc


def _parse_page(body: Any) -> LedgerPage:
    if not isinstance(body, dict):
        raise ValueError("not an object")
    items = body.get("reminders")
    next_cursor = body.get("next_cursor")
    has_more = body.get("has_more")
    if not isinstance(items, list):
        raise ValueError("'reminders' is not an array")
    if not isinstance(next_cursor, int) or isinstance(next_cursor, bool):
        raise ValueError("'next_cursor' is not an integer")
    if not isinstance(has_more, bool):
        raise ValueError("'has_more' is not a boolean")
    return LedgerPage(tuple(Reminder.from_ledger(item) for item in items), next_cursor, has_more)
