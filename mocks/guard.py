"""Keeps junk from turning into a mock's 500: bodies read under a deadline, forms and JSON read
safely, and every failure answered in the mock's own error style, never with a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Protocol

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from mocks.deadlines import READ_TIMEOUT, READ_TIMEOUT_KEY
from mocks.paths import CANARY_PATH, is_own

log = logging.getLogger("mocks.guard")

MAX_DEPTH = 32
"""JSON nested deeper than this is refused: no vendor's request nests more than three levels."""

class Junk(Exception):
    """A request the mock cannot make sense of, answered in its style with `status`."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class JunkStyle(Protocol):
    """How a mock says a request was malformed (`status` is the HTTP status it means: 400 bad
    request, 404, 405, 408 too slow, 413 too large, 500 the mock's own failure)."""

    def junk(self, status: int, reason: str) -> web.Response: ...


class ControlStyle:
    """The mocks' own APIs (control, ledger, alert sink): the status and `{"error": reason}`."""

    def junk(self, status: int, reason: str) -> web.Response:
        return web.json_response({"error": reason}, status=status)


_CONTROL = ControlStyle()


def guard(style: JunkStyle, *, passing: tuple[type[Exception], ...] = ()) -> Middleware:
    """A middleware that reads the body under the deadline and answers every failure, the
    handler's own included, in `style` (the mocks' own paths in the control API's style).
    Exceptions of the `passing` types are the handler's way of signalling and go through."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        answer = _CONTROL if is_own(request.path) else style
        try:
            _check_headers(request)
            await _read_body(request)
        except Junk as exc:
            return _refused(answer, exc)
        try:
            return await handler(request)
        except passing:
            raise
        except Junk as exc:
            return _refused(answer, exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return answer.junk(exc.status, exc.reason)
        except Exception:  # the last line: a bug of the mock must still answer in style
            log.exception("unexpected failure answering %s %s", request.method, request.path)
            return answer.junk(500, "internal error")

    return middleware


def _refused(answer: JunkStyle, exc: Junk) -> web.Response:
    response = answer.junk(exc.status, exc.reason)
    if exc.status == 408:  # what is left of a half-sent request is not worth waiting for
        response.force_close()
    return response


def cover(app: web.Application) -> None:
    """Make every request to `app` reach its middlewares, the guard among them: a catch-all
    route answers unknown paths (404) and methods (405) through them, and every route takes
    `Expect` as `expect` does. Call it once all routes are added."""
    # Private, on purpose: aiohttp's public way is `expect_handler=` as each route is added,
    # which would take every one of the mocks' 19 route definitions, in ten modules that know
    # nothing of the guard, and a route added later without it would quietly answer a junk
    # `Expect` with aiohttp's 500 again. Set here, once, it covers them all.
    for route in app.router.routes():
        route._expect_handler = expect
    routes = list(app.router.resources())

    async def unrouted(request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for resource in routes:
            allowed |= (await resource.resolve(request))[1]
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    app.router.add_route("*", "/{path:.*}", unrouted, expect_handler=expect)


async def expect(request: web.Request) -> None:
    """An `Expect` header (aiohttp runs a route's expect handler before any middleware, and its
    default answers an unknown expectation 417 in plain text, a non-UTF-8 one with a 500):
    `100-continue` is honoured, any other expectation ignored, as RFC 9110 allows."""
    if (request.version == HttpVersion11
            and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue"):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer's own size starts after the interim one


def _check_headers(request: web.Request) -> None:
    """Junk if a header is not UTF-8 (aiohttp keeps such bytes as lone surrogates, which no
    signature check, answer or journal line could encode)."""
    for name, value in request.headers.items():
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise Junk(f"header {name} is not UTF-8") from None


async def _read_body(request: web.Request) -> None:
    """Read (and cache for the handler, `form` and the journal) the whole body, multipart too,
    under the deadline; the canary streams its own, which may be larger than any request."""
    if request.path == CANARY_PATH or not request.body_exists:
        return
    await within_deadline(request, request.read())


async def within_deadline(request: web.Request, reading: Awaitable[object]) -> None:
    """Await `reading` the body under the app's deadline; Junk if it fails (400), is too large
    (413) or takes too long (408, and the connection is closed)."""
    deadline = request.config_dict.get(READ_TIMEOUT_KEY, READ_TIMEOUT)
    try:
        if request.content.is_eof():  # all of it came with the headers: nothing can stall
            await reading
        else:
            async with asyncio.timeout(deadline):
                await reading
    except TimeoutError:
        raise Junk(f"the request's body did not arrive within {deadline:g} s", 408) from None
    except web.HTTPRequestEntityTooLarge as exc:
        raise Junk(f"the request's body is larger than {request.client_max_size} bytes",
                   413) from exc
    except (web.RequestPayloadError, HttpProcessingError, ConnectionError, ValueError) as exc:
        # A broken chunked or compressed encoding, or a connection cut off half-way.
        raise Junk(f"the request's body cannot be read: {type(exc).__name__}") from None


async def form(request: web.Request) -> dict[str, str]:
    """The form fields of a urlencoded or multipart body (the first of repeated ones), parsed
    from the body the guard read; Junk when they cannot be read (a charset unknown or not
    matching, a broken multipart, a file)."""
    fields: list[tuple[str, object]]
    try:
        if (request.content_type == "multipart/form-data"
                and request.method in request.POST_METHODS):
            fields = await _multipart(request)
        else:
            fields = list((await request.post()).items())
    except LookupError:
        raise Junk(f"unknown charset {request.charset!r}") from None
    except (ValueError, RuntimeError, AssertionError, HttpProcessingError,
            web.RequestPayloadError) as exc:
        # UnicodeDecodeError is a ValueError; aiohttp's multipart reader raises all of these.
        raise Junk(f"the form cannot be read: {type(exc).__name__}") from None
    values: dict[str, str] = {}
    for name, value in fields:
        if not isinstance(value, str):
            raise Junk(f"form field {name!r} is a file, not text")
        values.setdefault(name, value)
    return values


async def _multipart(request: web.Request) -> list[tuple[str, object]]:
    """The parts of a multipart form, as `request.post` reads them (a text part as its text, a
    file or binary part as None), but from the body the guard read: the request's own stream
    is spent by then, and the journal keeps those bytes."""
    body = await request.read()
    # A limit above the body's size: feeding it must never pause the connection's reading.
    stream = StreamReader(request.protocol, max(len(body), 2**16),
                          loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    reader = MultipartReader(request.headers, stream)
    fields: list[tuple[str, object]] = []
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise Junk("a multipart form nested in a form part")
        if part.name is None:
            raise Junk("a multipart form part without a name")
        content_type = part.headers.get(hdrs.CONTENT_TYPE)
        if part.filename or not (content_type is None or content_type.startswith("text/")):
            fields.append((part.name, None))
            continue
        value = await part.read(decode=True)
        fields.append((part.name, value.decode(part.get_charset(default="utf-8"))))
    return fields


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def json_value(body: bytes) -> object:
    """`body` parsed as strict JSON (no NaN, no lone surrogates, at most MAX_DEPTH deep); Junk
    otherwise."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise Junk(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise Junk(f"the body is not JSON: {str(exc)[:80]}") from None
    if _too_deep(value):
        raise Junk(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Junk("the JSON holds a lone surrogate (\\ud800 to \\udfff)") from None
    return value


def _too_deep(value: object) -> bool:
    """Whether `value` nests lists and objects deeper than MAX_DEPTH (without recursing)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (item.values() if isinstance(item, dict)
                    else item if isinstance(item, list) else None)
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
