"""The record of every send a vendor mock accepted, duplicates included, kept in the journal."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from aiohttp import web

from harness.journal import JournalWriter, SendRecorded, read_journal


async def raw_request(request: web.Request) -> dict[str, object]:
    """The request as it came over the wire, for the record."""
    return {
        "method": request.method,
        "path": request.path,
        "query": request.rel_url.raw_query_string,
        "headers": dict(request.headers),
        "body": (await request.read()).decode("utf-8", "replace"),
    }


class SendRecord:
    """Appends accepted sends to the journal (flushed per send), the one copy of the record.

    No vendor de-duplicates sends, so neither does the record.
    """

    def __init__(self, journal: JournalWriter) -> None:
        self._journal = journal

    def add(self, *, vendor: str, message_id: str, to: str, body: str,
            client_ref: str | None, request: dict[str, object],
            handset: Literal["delivered", "spam", "absent", "dropped"] = "delivered",
            ) -> SendRecorded:
        """Record one accepted message; if the handset got it, it arrived now. The send comes
        back without its raw request, which only the journal keeps: a long run holds many."""
        now = time.time()
        arrived = handset in ("delivered", "spam")
        send = self._journal.write(SendRecorded(
            t=now, vendor=vendor, message_id=message_id, to=to, body=body,
            client_ref=client_ref, handset=handset, inbox_at=now if arrived else None,
            request=request))
        return send.model_copy(update={"request": {}})

    def routes(self, vendor: str) -> list[web.RouteDef]:
        """`GET /__notifychaos/sends`: this vendor's record, for humans and tests."""

        async def listing(_: web.Request) -> web.Response:
            # Off the event loop: a long run's journal takes a while to read.
            journal = await asyncio.to_thread(read_journal, self._journal.path.parent)
            sends = journal.of(SendRecorded)
            mine = [s.model_dump(exclude={"request"}) for s in sends if s.vendor == vendor]
            return web.json_response({"vendor": vendor, "sends": mine})

        return [web.get("/__notifychaos/sends", listing)]
