"""Read timeouts: a half-sent request never holds a handler (its body has a deadline, its
headers the connection's), and stopping the mocks does not wait for what is in flight."""

from __future__ import annotations

import asyncio
import base64
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from aiohttp import web
from mockkit import CONTROL, Mocks, wait_until

from harness.journal import FaultTouched, JournalWriter, read_journal
from mocks import alerts, ledger
from mocks.catalogue import vendor_module
from mocks.deadlines import READ_TIMEOUT_KEY
from mocks.handsets import HandsetConfig, Handsets
from mocks.manifest import MocksConfig, VendorConfig
from mocks.sends import SendRecord
from mocks.server import make_runner
from mocks.vendor import VendorMock

SHORT = 0.5
"""The deadline these tests give (the mocks' own are 30 s)."""

DEADLINE = 5.0
"""How long a test waits for the mock to act on its deadline before calling it a hang."""


@asynccontextmanager
async def serving(app: web.Application, idle_timeout: float = 30.0) -> AsyncIterator[int]:
    """Serve `app` on a loopback port with the mocks' own runner; yields the port."""
    runner = make_runner(app, idle_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def exchange(port: int, half: bytes) -> tuple[bytes, float]:
    """Send `half` a request and read until the mock closes: what came back and after how long."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = time.monotonic()
    writer.write(half)
    await writer.drain()
    try:
        async with asyncio.timeout(DEADLINE):
            answer = await reader.read()
    except TimeoutError:
        raise AssertionError(f"the mock held a half-sent request past {DEADLINE} s") from None
    finally:
        writer.close()
    return answer, time.monotonic() - began


def half_sent(tmp_path: Path, make_app: Callable[[JournalWriter], web.Application],
              half: bytes, idle_timeout: float = 30.0) -> tuple[bytes, float]:
    """Serve the app `make_app` builds (its body deadline `SHORT`), send it `half` a request:
    what came back and after how long."""

    async def scenario() -> tuple[bytes, float]:
        journal = JournalWriter(tmp_path, "mocks")
        try:
            app = make_app(journal)
            app[READ_TIMEOUT_KEY] = SHORT
            async with serving(app, idle_timeout) as port:
                return await exchange(port, half)
        finally:
            journal.close()

    return asyncio.run(scenario())


def vendor_app(kind: str, credentials: dict[str, str]
               ) -> Callable[[JournalWriter], web.Application]:
    """Builds vendor `kind`'s mock app over a journal."""

    def make(journal: JournalWriter) -> web.Application:
        vendor = VendorMock(kind, VendorConfig(kind=kind), credentials, SendRecord(journal),
                            journal, Handsets(HandsetConfig(), 7), 7)
        app: web.Application = vendor_module(kind).create_app(vendor)
        return app

    return make


def test_a_half_sent_body_is_answered_408_in_twilio_style_and_closed(tmp_path: Path) -> None:
    credentials = {"account_sid": "AC1", "auth_token": "t", "from": "+15005550001"}
    basic = base64.b64encode(b"AC1:t")

    answer, elapsed = half_sent(tmp_path, vendor_app("twilio", credentials), (
        b"POST /2010-04-01/Accounts/AC1/Messages.json HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Basic " + basic + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100\r\n\r\nTo=%2B150055"))

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b'"code": 20001' in body and b"did not arrive within 0.5 s" in body, body
    assert SHORT * 0.8 <= elapsed < DEADLINE


def test_a_half_sent_multipart_body_is_answered_408_in_alibaba_style_and_closed(
        tmp_path: Path) -> None:
    credentials = {"access_key_id": "LTAI1", "access_key_secret": "s"}

    answer, elapsed = half_sent(tmp_path, vendor_app("aliyun", credentials), (
        b"POST / HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 400\r\n\r\n"
        b'--b\r\nContent-Disposition: form-data; name="Action"\r\n\r\nSend'))

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b'"Code": "RequestTimeout"' in body and b"did not arrive within 0.5 s" in body, body
    assert SHORT * 0.8 <= elapsed < DEADLINE


def test_a_half_sent_canary_probe_is_answered_408_and_closed(tmp_path: Path) -> None:
    config = MocksConfig(journal_dir=str(tmp_path), vendors={})

    answer, elapsed = half_sent(
        tmp_path, lambda journal: ledger.create_app(ledger.Ledger(journal, config)),
        b"POST /__notifychaos/canary HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n....")

    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert SHORT * 0.8 <= elapsed < DEADLINE


def test_half_sent_headers_are_dropped_after_the_idle_timeout(tmp_path: Path) -> None:
    answer, elapsed = half_sent(tmp_path, alerts.create_app,
                                b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Le",
                                idle_timeout=SHORT)

    assert answer == b""  # closed: no request to answer
    assert SHORT * 0.8 <= elapsed < DEADLINE


def _half_send(url: str, data: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
    sock.sendall(data)
    return sock


def test_the_mocks_stop_at_once_with_half_sent_requests_and_a_latency_fault_in_flight(
        fresh_mocks: Mocks) -> None:
    manifest = fresh_mocks.manifest
    twilio_url, aliyun_url = manifest.vendors["twilio"].url, manifest.vendors["aliyun"].url
    credentials = manifest.vendors["twilio"].credentials
    sid = credentials["account_sid"]
    basic = base64.b64encode(f"{sid}:{credentials['auth_token']}".encode())
    httpx.put(manifest.vendors["twilio"].control_url, json={"latency": 300}, headers=CONTROL,
              timeout=5).raise_for_status()
    held = [
        _half_send(twilio_url, b"GET /2010-04-01/Accounts/" + sid.encode()
                   + b"/Messages.json HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basic
                   + b"\r\n\r\n"),
        _half_send(aliyun_url, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nA"),
        _half_send(manifest.ledger_url, b"POST /admin/ticks HTTP/1.1\r\nHost: x\r\nConte"),
    ]
    wait_until(lambda: any(t.switch == "latency" for t in
                           read_journal(fresh_mocks.journal_dir).of(FaultTouched)),
               "the latency fault holding the list call")
    began = time.monotonic()
    fresh_mocks.process.send_signal(signal.SIGTERM)
    fresh_mocks.process.wait(timeout=15)
    stopped = time.monotonic() - began
    for sock in held:
        sock.close()
    assert fresh_mocks.process.returncode == 0
    assert stopped < 5, f"stopping took {stopped:.1f} s"  # each mock's grace is 2 s, all at once
