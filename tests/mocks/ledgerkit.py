"""The real Ledger and its app in this process (aiohttp's test client), journaling to a folder:
for tests of the data faults that need to switch them at a chosen moment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp.test_utils import TestClient, TestServer

from harness.journal import FaultTouched, Journal, JournalWriter, read_journal
from mocks.bank import Changes, Population
from mocks.ledger import Ledger, create_app
from mocks.manifest import MocksConfig

T = TypeVar("T")
LEAD = 2.0
"""Seconds from scheduling to remind_at, unless told: changes happen 0.4 to 1.2 s after
scheduling (20 % to 60 % of the lead)."""


@dataclass(frozen=True)
class Served:
    """A ledger under test: the object, a client of its app, and its journal's folder."""

    ledger: Ledger
    client: TestClient[Any, Any]
    journal_dir: Path

    def journal(self) -> Journal:
        return read_journal(self.journal_dir)

    def touched(self, switch: str) -> list[FaultTouched]:
        return [e for e in self.journal().of(FaultTouched) if e.switch == switch]

    async def feed(self) -> list[dict[str, Any]]:
        """Every entry the change feed shows now, page after page."""
        entries: list[dict[str, Any]] = []
        cursor = 0
        while True:
            response = await self.client.get("/v1/reminders/changes",
                                             params={"cursor": cursor, "limit": 500})
            assert response.status == 200, await response.text()
            body = await response.json()
            entries += body["changes"]
            cursor = body["next_cursor"]
            if not body["has_more"]:
                return entries

    async def primary(self, reminder_id: str) -> tuple[int, dict[str, Any]]:
        """The primary's status and body for one reminder."""
        response = await self.client.get(f"/v1/reminders/{reminder_id}")
        return response.status, await response.json()


@asynccontextmanager
async def served_ledger(folder: Path, *, changes: Changes | None = None,
                        population: Population | None = None, seed: int = 7,
                        lead: float = LEAD, window: float = 20.0) -> AsyncIterator[Served]:
    """A Ledger made from a MocksConfig as the mock process makes it, its app served."""
    journal_dir = folder / "journal"
    config = MocksConfig(seed=seed, window=window, lead=lead, journal_dir=str(journal_dir),
                         population=population or Population(), changes=changes or Changes(),
                         vendors={})
    writer = JournalWriter(journal_dir, "mocks")
    ledger = Ledger(writer, config)
    try:
        async with TestClient(TestServer(create_app(ledger))) as client:
            yield Served(ledger, client, journal_dir)
    finally:
        writer.close()


async def until(probe: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    """Await `probe` returning something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.02)
    return found
