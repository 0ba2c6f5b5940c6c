"""The one HTTP client a vendor mock makes its webhooks with (reports, replies): kept connections.

A session per webhook meant a new TCP connection per status callback (24 % of the mock
process under load, measured). One client per vendor, opened at the first webhook and closed
when the vendor's app stops, keeps its connections between webhooks.

A form POST to a plain `http://` receiver (Twilio's callbacks, every message twice) goes over
`_Connection`, a lean HTTP/1.1 client on the event loop's own transports: aiohttp's client
request was 70 % of a callback's CPU in the mocks' profile. It sends the same request (method,
target, Host, the caller's headers, Content-Length, aiohttp's Accept and User-Agent) and reads
the answer's end as RFC 9112 6.3 says (Content-Length, chunked, or the connection's close).
Anything else (https, JSON bodies) goes through aiohttp's session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.http import SERVER_SOFTWARE

from harness.errors import NotifyChaosError

WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=2)
"""Per webhook: a receiver that takes longer has the report fail (it is logged, never retried)."""

KEEP_IDLE = 1.0
"""Seconds a connection to a receiver is kept while idle. POST is not retried on a kept
connection the receiver has just closed, so ours must give up first: below the shortest
idle timeout of common servers (gunicorn's 2 s; uvicorn and Node 5 s, aiohttp 75 s). Under
load webhooks follow each other faster than that, so their connections stay in use."""

MAX_HEAD = 64 * 1024
"""Bytes of an answer's head the lean client reads before it gives the webhook up as failed."""


class WebhooksClosed(NotifyChaosError):
    """A webhook was asked for once its vendor had stopped."""


class WebhookFailed(NotifyChaosError):
    """A receiver's answer the lean client cannot read, or a connection lost before its end."""


@dataclass(frozen=True)
class _Target:
    """Where a plain http:// webhook goes: the address, and the request line's target."""

    host: str
    port: int
    authority: str  # the Host header: as in the URL
    target: str  # path and query, as in the URL


def _plain_target(url: str) -> _Target | None:
    """The target of `url` if the lean client can post to it (http, no user info), else None."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or "@" in parts.netloc:
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.hostname, port, parts.netloc, target)


class _Connection(asyncio.Protocol):
    """One kept connection to a receiver: one request at a time, its answer read to its end."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.idle_since = 0.0
        self._buffer = b""
        self._answer: asyncio.Future[int] | None = None
        self._status = 0
        self._length: int | None = None  # of the body, once the head is read; -1: to the close
        self._chunked = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def request(self, data: bytes) -> asyncio.Future[int]:
        """Send a whole request; the future has the answer's status once it has all come."""
        assert self.transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self._buffer, self._status, self._length, self._chunked = b"", 0, None, False
        self.reusable = False
        self.transport.write(data)
        return self._answer

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._read()
        except WebhookFailed as exc:
            self._fail(exc)

    def _read(self) -> None:
        if self._answer is None or self._answer.done():
            if self._buffer:  # bytes nobody asked for: the connection is not to be trusted
                self._fail(WebhookFailed("the receiver sent bytes after its answer"))
            return
        while self._length is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise WebhookFailed("the receiver's answer has too long a head")
                return
            head, self._buffer = self._buffer[:end].decode("latin-1"), self._buffer[end + 4:]
            self._head(head)
        if self._chunked:
            self._read_chunks()
        elif self._length >= 0 and len(self._buffer) >= self._length:
            self._buffer = self._buffer[self._length:]
            self._done()

    def _head(self, head: str) -> None:
        """Read a head: a 1xx answer's is skipped (the final one follows)."""
        line, *lines = head.split("\r\n")
        version, _, rest = line.partition(" ")
        code = rest[:3]
        if not (version.startswith("HTTP/1.") and code.isdigit()):
            raise WebhookFailed(f"the receiver answered {line[:80]!r}")
        fields: dict[str, str] = {}
        for text in lines:
            name, _, value = text.partition(":")
            fields[name.strip().lower()] = value.strip()
        status = int(code)
        if status < 200:
            return
        self._status = status
        connection = fields.get("connection", "").lower()
        self.reusable = ("close" not in connection
                         and (version == "HTTP/1.1" or "keep-alive" in connection))
        if "chunked" in fields.get("transfer-encoding", "").lower():
            self._chunked, self._length = True, 0
        elif status in (204, 304):
            self._length = 0
        elif fields.get("content-length", "").isdigit():
            self._length = int(fields["content-length"])
        else:
            self._length, self.reusable = -1, False  # to the close

    def _read_chunks(self) -> None:
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return
            size_text = self._buffer[:line_end].split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise WebhookFailed("the receiver's chunked answer is malformed") from None
            if size == 0:
                end = self._buffer.find(b"\r\n\r\n", line_end)  # the trailers' end
                if end < 0:
                    return
                self._buffer = self._buffer[end + 4:]
                self._done()
                return
            if len(self._buffer) < line_end + 2 + size + 2:
                return
            self._buffer = self._buffer[line_end + 2 + size + 2:]

    def _done(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_result(self._status)
        if self._buffer:
            self._fail(WebhookFailed("the receiver sent bytes after its answer"))

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._answer is not None and not self._answer.done():
            if self._length == -1:  # an answer that ends with the connection: it has
                self._answer.set_result(self._status)
            else:
                self._answer.set_exception(
                    WebhookFailed("the receiver closed the connection before its answer's end"))


class Webhooks:
    """The lazily opened client of one vendor mock's webhooks."""

    def __init__(self, vendor: str) -> None:
        self._vendor = vendor
        self._session: aiohttp.ClientSession | None = None
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._closed = False

    def session(self) -> aiohttp.ClientSession:
        """The session (opened at the first call, inside the running event loop)."""
        if self._closed:
            raise WebhooksClosed(f"vendor {self._vendor}: webhook after the mock stopped")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=WEBHOOK_TIMEOUT,
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEP_IDLE))
        return self._session

    async def post_form(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST the urlencoded form `body` with `headers` to `url`; the answer's status (its
        body is read and dropped). Raises on a failure to connect, to answer, or in time."""
        if self._closed:
            raise WebhooksClosed(f"vendor {self._vendor}: webhook after the mock stopped")
        target = _plain_target(url)
        if target is None:
            form = {"Content-Type": "application/x-www-form-urlencoded", **headers}
            async with self.session().post(url, data=body, headers=form) as response:
                await response.read()
                return response.status
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        data = (f"POST {target.target} HTTP/1.1\r\nHost: {target.authority}\r\n{head}"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
                f"User-Agent: {SERVER_SOFTWARE}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        assert WEBHOOK_TIMEOUT.total is not None
        async with asyncio.timeout(WEBHOOK_TIMEOUT.total):
            connection = await self._connection(target)
            self._busy.add(connection)
            try:
                status = await connection.request(data)
            except BaseException:  # cut mid-answer (a timeout, say): not to be used again
                connection.close()
                raise
            finally:
                self._busy.discard(connection)
        self._release(target, connection)
        return status

    async def _connection(self, target: _Target) -> _Connection:
        """A kept connection to `target` idle for less than KEEP_IDLE, else a new one."""
        idle = self._idle.get((target.host, target.port), [])
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if now - connection.idle_since < KEEP_IDLE and transport and not transport.is_closing():
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        assert WEBHOOK_TIMEOUT.connect is not None
        async with asyncio.timeout(WEBHOOK_TIMEOUT.connect):
            _, connection = await loop.create_connection(_Connection, target.host, target.port)
        return connection

    def _release(self, target: _Target, connection: _Connection) -> None:
        transport = connection.transport
        if transport is None or transport.is_closing():
            return
        if not connection.reusable or self._closed:
            transport.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault((target.host, target.port), []).append(connection)

    async def close(self) -> None:
        """Close the client and its kept connections; later webhooks are refused."""
        self._closed = True
        for connection in [*self._busy, *(c for idle in self._idle.values() for c in idle)]:
            connection.close()
        self._idle.clear()
        if self._session is not None:
            await self._session.close()
