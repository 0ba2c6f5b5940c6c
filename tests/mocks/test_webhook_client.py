"""The webhooks' lean HTTP/1.1 client: the request it sends, and each way an answer may end
(Content-Length, chunked, the connection's close), with kept connections reused only when the
answer allows it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from mocks.webhooks import Webhooks

Answer = Callable[[bytes], bytes]
"""A receiver's answer (whole: status line, head and body) to a request's bytes."""


class _Receiver:
    """A raw TCP receiver on 127.0.0.1 that reads each request whole (head and Content-Length
    body) and writes `answer` of it; it closes after the answer when `close_after`."""

    def __init__(self, answer: Answer, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        sock: socket.socket = self._server.sockets[0]
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # Python 3.11's wait_closed does not wait for these
            writer.close()
        await self._server.wait_closed()
        await asyncio.sleep(0.01)  # the transports' closes run on the loop's next turns

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                writer.write(self.answer(request))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _posts(receiver: _Receiver, count: int,
                 check: Callable[[Webhooks, str], Awaitable[None]] | None = None) -> list[int]:
    url = await receiver.start()
    webhooks = Webhooks("twilio")
    try:
        statuses = [await webhooks.post_form(url + "/status?x=1", f"n={n}".encode(),
                                             {"X-Twilio-Signature": "sig"})
                    for n in range(count)]
        if check is not None:
            await check(webhooks, url)
    finally:
        await webhooks.close()
        await receiver.stop()
    return statuses


def test_the_request_is_a_form_post_with_its_host_length_and_headers() -> None:
    receiver = _Receiver(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert asyncio.run(_posts(receiver, 1)) == [200]
    head, _, body = receiver.requests[0].partition(b"\r\n\r\n")
    line, *fields = head.decode().split("\r\n")
    headers = dict(field.split(": ", 1) for field in fields)
    assert line == "POST /status?x=1 HTTP/1.1"
    assert body == b"n=0"
    assert headers["Host"].startswith("127.0.0.1:")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Content-Length"] == "3"
    assert headers["X-Twilio-Signature"] == "sig"


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"code\": 0}",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\n"
    b"Trailer: 1\r\n\r\n",
])
def test_kept_connections_are_reused_whichever_way_an_answer_ends(answer: bytes) -> None:
    receiver = _Receiver(lambda _: answer)
    statuses = asyncio.run(_posts(receiver, 5))
    assert statuses == [int(answer.rsplit(b"HTTP/1.1 ", 1)[1][:3])] * 5
    assert (len(receiver.requests), receiver.connections) == (5, 1)


@pytest.mark.parametrize(("answer", "close_after"), [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    (b"HTTP/1.0 500 Oops\r\n\r\nto the close", True),  # the body ends with the connection
])
def test_an_answer_that_ends_the_connection_gets_a_new_one_next(answer: bytes,
                                                                close_after: bool) -> None:
    receiver = _Receiver(lambda _: answer, close_after=close_after)
    statuses = asyncio.run(_posts(receiver, 3))
    assert statuses == [int(answer[9:12])] * 3
    assert (len(receiver.requests), receiver.connections) == (3, 3)


def test_a_receiver_that_closes_mid_answer_fails_the_webhook() -> None:
    receiver = _Receiver(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                         close_after=True)
    with pytest.raises(Exception, match="closed the connection before its answer's end"):
        asyncio.run(_posts(receiver, 1))


def test_junk_instead_of_an_answer_fails_the_webhook() -> None:
    receiver = _Receiver(lambda _: b"SMTP ready\r\n\r\n")
    with pytest.raises(Exception, match="the receiver answered"):
        asyncio.run(_posts(receiver, 1))
