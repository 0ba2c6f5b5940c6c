"""The lean front on the ledger's port answers the pull API's plain GETs (the primary record, the
change feed) exactly as aiohttp's slow path answers them (status, headers, body, journal events),
and leaves every other request to aiohttp unchanged."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from harness.journal import JournalWriter
from mocks import ledger as ledger_mock
from mocks.bank import Changes
from mocks.control import LedgerFaults
from mocks.front import FrontSite
from mocks.manifest import MocksConfig
from mocks.server import _serve

TIMEOUT = 10.0
SLOW_FIRST = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Slow: 1\r\n\r\n"
"""A request the front declines: every request after it on its connection is aiohttp's."""


@dataclass
class Served:
    """The ledger mock served as `mocks.server` serves it (behind the front), in this process."""

    ledger: ledger_mock.Ledger
    site: FrontSite
    port: int
    journal: Path
    writer: JournalWriter

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.journal.read_bytes().splitlines()]


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Served]:
    config = MocksConfig(seed=7, journal_dir=str(tmp_path), vendors={}, changes=Changes())
    journal = JournalWriter(tmp_path, "mocks", group_commit=True)
    the_ledger = ledger_mock.Ledger(journal, config)
    runners: list[web.AppRunner] = []
    url = await _serve(ledger_mock.create_app(the_ledger), runners, "token", journal)
    site = next(iter(runners[0].sites))
    assert isinstance(site, FrontSite)
    try:
        yield Served(the_ledger, site, int(url.rsplit(":", 1)[1]), journal.path, journal)
    finally:
        await runners[0].cleanup()
        journal.close()


async def read_answer(reader: asyncio.StreamReader, *, bodiless: bool = False) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    if bodiless:  # the answer to a HEAD
        return head
    found = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    return head + await reader.readexactly(int(found.group(1)) if found else 0)


async def exchange(served: Served, request: bytes, *, slow: bool) -> bytes:
    """The answer to `request` on a new connection; `slow`: after a request the front declines,
    so that aiohttp answers it."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            writer.write((SLOW_FIRST if slow else b"") + request)
            await writer.drain()
            if slow:
                await read_answer(reader)
            return await read_answer(reader, bodiless=request.startswith(b"HEAD "))
        finally:
            writer.close()
            await writer.wait_closed()


def get(target: str, extra: str = "") -> bytes:
    """A GET as aiohttp's client writes one (no Content-Length)."""
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
            f"Accept-Encoding: gzip, deflate\r\nUser-Agent: Python/3.11 aiohttp/3\r\n{extra}"
            "\r\n").encode()


def comparable(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{key: value for key, value in event.items() if key not in ("t", "seq")}
            for event in events]


async def both_ways(served: Served, request: bytes) -> tuple[bytes, bytes, int]:
    """The front's answer, aiohttp's answer, how many the front answered itself; the journal's
    events of each way must agree."""
    await served.writer.committed()  # the ticks' and switches' events, before the count
    before, served_before = len(served.events()), served.site.served
    fast = await exchange(served, request, slow=False)
    middle, answered = len(served.events()), served.site.served - served_before
    slow = await exchange(served, request, slow=True)
    events = served.events()
    assert comparable(events[before:middle]) == comparable(events[middle:])
    return fast, slow, answered


def undated(answer: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: *", answer)


def test_the_pull_apis_plain_gets_are_answered_by_the_front_as_aiohttp_answers_them(
        tmp_path: Path) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            records = served.ledger.ticks(3)
            known = records[1].reminder_id
            targets = [f"/v1/reminders/{known}", "/v1/reminders/ML-999999-1",
                       "/v1/reminders/changes?cursor=0&limit=500",
                       "/v1/reminders/changes?cursor=1&limit=1", "/v1/reminders/changes?cursor=2",
                       "/v1/reminders/changes?cursor=99&limit=10"]
            for schema in (None, "date_format", "renamed_field"):
                served.ledger.switch(LedgerFaults(schema_change=schema))
                for target in targets:
                    fast, slow, answered = await both_ways(served, get(target))
                    assert answered == 1, target
                    assert undated(fast) == undated(slow), (schema, target)
                    assert fast.startswith((b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 404 Not Found\r\n"))
            served.ledger.switch(LedgerFaults())
            with_body = (f"GET /v1/reminders/{known} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 2\r\n\r\n{}").encode()
            fast, slow, answered = await both_ways(served, with_body)
            assert (answered, undated(fast)) == (1, undated(slow))

    asyncio.run(run())


def test_other_requests_to_the_ledger_reach_aiohttp_and_are_answered_as_before(
        tmp_path: Path) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            known = served.ledger.ticks(1)[0].reminder_id
            requests = [
                get("/v1/reminders/changes?limit=5&cursor=0"),
                get("/v1/reminders/changes?cursor=0&limit=501"),
                get("/v1/reminders/changes?cursor=-1"), get("/v1/reminders/changes"),
                get(f"/v1/reminders/{known.replace('-', '%2D')}"),
                get(f"/v1/reminders/{known}?x=1"), get("/v1/reminders/a.b"),
                get(f"/v1/reminders/{known}/more"),
                get(f"/v1/reminders/{known}").replace(b"GET", b"HEAD", 1),
                get("/healthz"), get("/admin/ticks"),
            ]
            for request in requests:
                fast, slow, answered = await both_ways(served, request)
                assert answered == 0, request
                assert undated(fast) == undated(slow), request

    asyncio.run(run())


def test_a_pooled_client_gets_its_primaries_and_pages_from_the_front(tmp_path: Path) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            records = served.ledger.ticks(5)
            base = f"http://127.0.0.1:{served.port}/v1/reminders"
            timeout = aiohttp.ClientTimeout(total=TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(f"{base}/changes",
                                       params={"cursor": "0", "limit": "500"}) as response:
                    page = await response.json()
                for record in records:
                    async with session.get(f"{base}/{record.reminder_id}") as response:
                        assert response.status == 200
                        assert (await response.json())["ref"] == record.ref
            assert [entry["reminder_id"] for entry in page["changes"]] == [
                record.reminder_id for record in records]
            assert served.site.served == 6

    asyncio.run(run())


def tick(body: bytes, token: str | None = "token") -> bytes:
    """Locust's POST of ticks, with the run's token (or a wrong one, or none)."""
    auth = "" if token is None else f"X-Notifychaos-Token: {token}\r\n"
    head = (f"POST /admin/ticks HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: locust\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def untimed(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """Events without what differs between two runs of the same seed (the times)."""
    return [{key: value for key, value in event.items()
             if key not in ("t", "seq", "remind_at", "send_by")} for event in events]


def test_locusts_ticks_are_answered_by_the_front_only_with_the_token_and_as_aiohttp_answers(
        tmp_path: Path) -> None:
    async def run() -> None:
        # Two ledgers of one seed, one answered by the front, the other by aiohttp: each tick
        # schedules the same reminders in both.
        async with (serving(tmp_path / "fast") as fast_way,
                    serving(tmp_path / "slow") as slow_way):
            cases = [(tick(b'{"count": 3}'), 1), (tick(b""), 1), (tick(b" {} "), 1),
                     (tick(b'{"count": 0}'), 1), (tick(b'{"count": true}'), 1),
                     (tick(b"nope"), 1), (tick(b'{"count": 2}', token=None), 0),
                     (tick(b'{"count": 2}', token="wrong"), 0),
                     (tick(b'{"count": 2}').replace(b"/admin/ticks", b"/admin/%74icks"), 0)]
            for request, front_answers in cases:
                before = fast_way.site.served
                fast = await exchange(fast_way, request, slow=False)
                slow = await exchange(slow_way, request, slow=True)
                assert fast_way.site.served - before == front_answers, request
                assert undated(fast) == undated(slow), request
            await fast_way.writer.committed()
            await slow_way.writer.committed()
            assert untimed(fast_way.events()) == untimed(slow_way.events())
            # 3 + 1 + 1 from the front, 2 from aiohttp (the escaped path, with the token)
            assert len(fast_way.events()) == 7

    asyncio.run(run())
