"""Posts alerts to the alert sink in the background so no sender waits on it."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from .errors import describe
from .settings import Defect

log = logging.getLogger(__name__)

SOURCE = "reminder-service"


class Alerter:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, defect: Defect | None = None
    ) -> None:
        self._session = session
        self._url = url
        self._defect = defect
        self._timeout = aiohttp.ClientTimeout(total=2.0)
        self._pending: set[asyncio.Task[None]] = set()

    def fire(self, summary: str, *, dependency: str) -> None:
        """Post a critical alert about `dependency` (a vendor's name, or `ledger`)."""
        if self._defect is Defect.NEVER_ALERTS:
            # The defect: trouble is logged and nobody is told.
            log.warning("alert not posted (DEFECT=never-alerts): %s", summary)
            return
        payload = {
            "severity": "critical",
            "summary": summary,
            "source": SOURCE,
            "dependency": dependency,
        }
        task = asyncio.create_task(self._post(payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout: float) -> None:
        """Give alerts still in flight up to `timeout` seconds, then drop them."""
        if not self._pending:
            return
        _, late = await asyncio.wait(self._pending, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _post(self, payload: dict[str, str]) -> None:
        try:
            async with self._session.post(
                self._url, json=payload, timeout=self._timeout
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alert not delivered (%s): %s", payload["summary"], describe(exc))
            return
        if response.status >= 300:
            log.warning("alert rejected (%s): HTTP %d", payload["summary"], response.status)
        else:
            log.info("alert posted: %s", payload["summary"])
