"""A lean HTTP/1.1 front on a mock's port: answers the plain hot requests its app declares itself
(`FAST_PATH`), and hands every other connection to the app's aiohttp server unchanged.

The front reads a request only when it is plain beyond doubt: HTTP/1.1, printable ASCII with
CRLF lines, no repeated header, no Transfer-Encoding, Expect, Upgrade or Content-Encoding, a
Content-Length (or none on a GET: no body), keep-alive, and all of it in hand (the rest of one
that came in parts within STALL seconds). It then asks the app's fast path, which answers or
declines before it has any effect (`FastPath`). Anything else (junk, a stalled request, chunked
bodies, `Expect`, a declined request) hands the connection, with every byte read so far, to
aiohttp's own protocol for good, once the answers already owed have left: from there on,
aiohttp and the app's middlewares answer exactly as without the front.

An answer leaves only once the journal holds what its request journaled (the group commit, as
`server.answer_once_committed` waits for it on the slow path).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal, Protocol, cast

from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.tcp_helpers import tcp_nodelay

from harness.journal import JournalWriter
from mocks.deadlines import IDLE_TIMEOUT
from mocks.manifest import TOKEN_HEADER
from mocks.paths import needs_token
from mocks.sends import masked_headers

log = logging.getLogger("mocks.front")

MAX_HEAD = 8190
"""Bytes of a head the front reads itself (aiohttp's limit for one header field); longer ones go
to aiohttp."""

MAX_BODY = 64 * 1024
"""Bytes of a body the front reads itself; a larger one goes to aiohttp (and its 1 MB limit)."""

STALL = 0.2
"""Seconds from a plain request's first part that the front waits for the rest of it (a burst
of pipelined sends is cut anywhere) before it hands the connection to aiohttp, whose deadlines
for a half-sent request then apply, from then on: a half-sent request meets them at most STALL
seconds later than it would have without the front."""

_PLAIN = bytes(range(0x20, 0x7f)) + b"\t\r\n"
"""The bytes of a plain head (CR and LF only as CRLF)."""
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REFUSED = frozenset({"transfer-encoding", "expect", "upgrade", "content-encoding"})
"""Headers whose request aiohttp reads its own way (chunked, 100-continue, decompressed)."""
_RUN_TOKEN_FIELD = TOKEN_HEADER.lower()


@dataclass(frozen=True)
class Fields:
    """The header fields of a plain head (after its request line): a client sends the same
    ones again and again, so they are read once (`parse`) and shared by every head that has
    them."""

    headers: dict[str, str]
    """As sent: names in their case, in order (none repeats), values without surrounding
    whitespace."""
    fields: dict[str, str]
    """The same, names lowercased: for lookups."""

    @functools.cached_property
    def masked_headers(self) -> dict[str, str]:
        """The headers as `sends.raw_request` records them (an authorization's secret
        masked): worked out once per distinct set of fields."""
        return masked_headers(self.headers.items())


@dataclass(frozen=True, slots=True)
class Head:
    """The head of a plain request."""

    method: str
    target: str
    shared: Fields
    length: int  # of the body

    @property
    def headers(self) -> dict[str, str]:
        """`Fields.headers`."""
        return self.shared.headers

    @property
    def fields(self) -> dict[str, str]:
        """`Fields.fields`."""
        return self.shared.fields

    @property
    def masked_headers(self) -> dict[str, str]:
        """`Fields.masked_headers`."""
        return self.shared.masked_headers


@dataclass(frozen=True)
class PlainRequest:
    """A plain request, whole: what a fast path sees."""

    head: Head
    body: bytes


@dataclass(frozen=True)
class FastAnswer:
    """A JSON answer, as `web.json_response(body, status=status)` would send it."""

    status: int
    body: bytes


class FastPath(Protocol):
    """An app's answer to a plain request, or None to leave the request to aiohttp. It must
    decide before it has any effect: a declined request is answered again by the app."""

    def __call__(self, request: PlainRequest) -> FastAnswer | None: ...


FAST_PATH = web.AppKey("fast_path", FastPath)
"""Where an app holds its fast path (`mocks.server` then serves it behind the front)."""


def _head_of(status: int, length: int) -> bytes:
    """The head aiohttp sends with a keep-alive `web.json_response` of `length` bytes."""
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {length}\r\nDate: {rfc822_formatted_time()}\r\n"
            f"Server: {SERVER_SOFTWARE}\r\n\r\n").encode()


def parse(data: bytes) -> tuple[PlainRequest, int] | Literal["partial"] | None:
    """The plain request at the start of `data` and its length in bytes; "partial" when what
    is there may yet become one; None when it is not plain (see the module's docstring)."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if end < 0:
        plain_so_far = len(data) < MAX_HEAD + 4 and not data.translate(None, _PLAIN)
        return "partial" if plain_so_far else None
    # The request line apart from the fields: a primary GET's target is new every time, its
    # fields are not (a cache of whole heads missed on every one of them).
    line_end = data.find(b"\r\n", 0, end)
    if line_end < 0:
        return None  # no fields, so no Host
    head = _head(data[:line_end], data[line_end + 2:end])
    if head is None:
        return None
    total = end + 4 + head.length
    if len(data) < total:
        return "partial"
    return PlainRequest(head, data[end + 4:total]), total


_FIELDS: dict[bytes, tuple[Fields, str | None] | None] = {}
"""Fields read before, with their Content-Length (None: none given), or None when not plain."""
_FIELDS_KEPT = 1024


def _head(line: bytes, block: bytes) -> Head | None:
    """The head of request line `line` and header fields `block` (each without its CRLF) if
    it is plain, else None."""
    if line.translate(None, _PLAIN) or b"\r" in line or b"\n" in line:
        return None
    parts = line.decode("ascii").split(" ")
    if len(parts) != 3 or parts[2] != "HTTP/1.1" or not _TOKEN.fullmatch(parts[0]):
        return None
    if block in _FIELDS:
        known = _FIELDS[block]
    else:
        known = _fields(block)
        if len(_FIELDS) >= _FIELDS_KEPT:
            _FIELDS.clear()
        _FIELDS[block] = known
    if known is None:
        return None
    shared, length = known
    # A GET without Content-Length has no body (RFC 9112 6.3), as aiohttp's client sends it.
    if length is None:
        if parts[0] != "GET":
            return None
        length = "0"
    return Head(parts[0], parts[1], shared, int(length))


def _fields(block: bytes) -> tuple[Fields, str | None] | None:
    """The fields of `block` and their Content-Length (None: none given) if they are plain,
    else None."""
    crlf = block.count(b"\r\n")
    if block.translate(None, _PLAIN) or block.count(b"\r") != crlf or block.count(b"\n") != crlf:
        return None
    headers: dict[str, str] = {}
    fields: dict[str, str] = {}
    for text in block.decode("ascii").split("\r\n"):
        name, colon, rest = text.partition(":")
        value = rest.lstrip(" \t")
        lowered = name.lower()
        if (not colon or not value or value[-1] in " \t" or lowered in fields
                or lowered in _REFUSED or not _TOKEN.fullmatch(name)):
            return None
        headers[name] = fields[lowered] = value
    length = fields.get("content-length")
    if ("host" not in fields or fields.get("connection", "keep-alive").lower() != "keep-alive"
            or (length is not None and (not length.isdigit() or len(length) > 6
                                        or int(length) > MAX_BODY))):
        return None
    return Fields(headers, fields), length


class _Outbox:
    """Answers waiting for the journal's commit: sent together once it is done (one task per
    event-loop turn, not one per answer)."""

    def __init__(self, journal: JournalWriter) -> None:
        self._journal = journal
        self._waiting: list[tuple[_Front, FastAnswer]] = []
        self._flushing = False
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps tasks weakly

    def put(self, front: _Front, answer: FastAnswer) -> None:
        self._waiting.append((front, answer))
        if not self._flushing:
            self._flushing = True
            task = asyncio.get_running_loop().create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        # Taken first: `committed` then covers every event their requests journaled.
        waiting, self._waiting, self._flushing = self._waiting, [], False
        try:
            await self._journal.committed()
        except OSError as exc:  # the journal has a gap: no answer may acknowledge a send
            log.error("journal failed, %d answers withheld: %s", len(waiting), exc)
            for front, _ in waiting:
                front.abort()
            return
        for front, answer in waiting:
            front.send(answer)


class _Front(asyncio.Protocol):
    """One connection: served here while its requests are plain, then aiohttp's."""

    def __init__(self, site: FrontSite) -> None:
        self._site = site
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._owed = 0  # answers decided, not yet sent
        self._leaving = False  # to be handed to aiohttp once nothing is owed
        self._closing = False  # the site stops: close once nothing is owed
        self._last = 0.0
        self._idle: asyncio.TimerHandle | None = None
        self._paused = False  # the transport's buffer of answers is full
        self._stall: asyncio.TimerHandle | None = None  # set while a request is partial

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self._transport = cast(asyncio.Transport, transport)
        tcp_nodelay(self._transport, True)  # as aiohttp does: an answer is one small write
        self._site.fronts.add(self)
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._idle = loop.call_at(self._last + self._site.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._leaving:
            return
        while self._buffer:
            parsed = parse(self._buffer)
            if parsed == "partial":
                # From its first part on, not its latest: a trickle must not outlast STALL.
                if self._stall is None:
                    self._stall = asyncio.get_running_loop().call_later(STALL, self._stalled)
                break
            if self._stall is not None:  # whole now, or not plain after all
                self._stall.cancel()
                self._stall = None
            try:
                answer = None if parsed is None else self._site.fast(parsed[0])
            except Exception:  # a bug: the request may have had effects, so no second answer
                log.exception("the fast path failed")
                self.abort()
                return
            if parsed is None or answer is None:
                self._leaving = True
                break
            self._buffer = self._buffer[parsed[1]:]
            self._owed += 1
            self._site.outbox.put(self, answer)
        self._settle()

    def send(self, answer: FastAnswer) -> None:
        """Send an answer that the journal's commit released."""
        self._owed -= 1
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(_head_of(answer.status, len(answer.body)) + answer.body)
        self._site.served += 1
        self._last = asyncio.get_running_loop().time()
        self._settle()

    def abort(self) -> None:
        """Close the connection without an answer."""
        self._owed = max(self._owed - 1, 0)
        if self._transport is not None:
            self._transport.close()

    def close(self) -> None:
        """The site stops: close now if idle, else once the answers owed have left."""
        self._closing = True
        self._settle()

    def _settle(self) -> None:
        if self._owed or self._transport is None:
            return
        if self._closing:
            self._transport.close()
        elif self._leaving:
            self._hand_over(self._transport)

    def pause_writing(self) -> None:
        # A client that sends and does not read: read no more of it until it has (aiohttp
        # waits for the same drain before its next answer).
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._transport is not None:
            self._transport.resume_reading()

    def _hand_over(self, transport: asyncio.Transport) -> None:
        """From now on aiohttp's protocol reads and answers this connection, starting with the
        bytes read so far."""
        self._forget()
        if self._paused:  # aiohttp's protocol starts out reading and unaware of the pause
            transport.resume_reading()
        handler = self._site.aiohttp_protocol()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._buffer:
            handler.data_received(self._buffer)
        self._buffer = b""

    def _stalled(self) -> None:
        """The rest of a request did not follow: aiohttp reads it from here."""
        self._stall = None
        self._leaving = True
        self._settle()

    def _check_idle(self) -> None:
        # aiohttp's keep-alive timeout, checked when it would have expired (no timer per answer)
        transport = self._transport
        if transport is None:
            return
        loop = asyncio.get_running_loop()
        due = self._last + self._site.idle_timeout
        if not self._owed and loop.time() >= due:
            transport.close()
            return
        self._idle = loop.call_at(max(due, loop.time() + 1), self._check_idle)

    def _forget(self) -> None:
        self._site.fronts.discard(self)
        for timer in (self._idle, self._stall):
            if timer is not None:
                timer.cancel()
        self._transport = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._forget()


class FrontSite(web.BaseSite):
    """A loopback TCP site for `runner` whose connections meet the front first, its app's fast
    path answering the plain requests (those of a path that needs the run's token only with
    `token`); `outbox` holds answers until `journal` has committed."""

    def __init__(self, runner: web.AppRunner, fast: FastPath, journal: JournalWriter,
                 host: str = "127.0.0.1", port: int = 0,
                 idle_timeout: float = IDLE_TIMEOUT, token: str | None = None) -> None:
        super().__init__(runner)
        self._fast = fast
        self._token = token
        self.outbox = _Outbox(journal)
        self.idle_timeout = idle_timeout
        self.fronts: set[_Front] = set()
        self.served = 0  # answers the front sent itself
        self._host, self._port = host, port
        server = runner.server
        assert server is not None, "runner.setup() first"
        self.aiohttp_protocol: Callable[[], asyncio.Protocol] = server

    def fast(self, request: PlainRequest) -> FastAnswer | None:
        """The fast path's answer, or None: a request for a path that needs the run's token
        (`paths.needs_token`) reaches it only with `token`, else aiohttp's middlewares refuse
        it as before."""
        if needs_token(request.head.target.partition("?")[0]):
            given = request.head.fields.get(_RUN_TOKEN_FIELD)
            if (given is None or self._token is None
                    or not hmac.compare_digest(given.encode(), self._token.encode())):
                return None
        return self._fast(request)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Front(self), self._host, self._port)

    async def stop(self) -> None:
        await super().stop()
        for front in list(self.fronts):
            front.close()
