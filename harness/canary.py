"""Canary probes through a Toxiproxy link: did the network fault a step asked for show?

Right after a network step takes effect, a few canary requests go through the link's listen
address to the mock behind it (`CANARY_PATH` on every mock: it answers `?bytes=N` bytes and reads
whatever body it is sent), each on a new connection, all at once. Each connection is judged by
the step's own rule (delayed, refused, cut short, ...); Toxiproxy draws `toxicity` per
connection, so the count of connections that showed the fault is the measured effect.

Every probe runs on a raw socket with a deadline, so one step's measurement stays under ~5 s.
HTTPS mocks are probed through TLS 1.2 with the run's test CA, driven through memory buffers so
that what the network does is seen at the TCP level (reads, closes), not through records.

The mail server (the `email` link) speaks SMTP: its probe reads the greeting, sends the mail
mock's canary command (`mocks.paths.CANARY_COMMAND`: it reads the bytes sent after it and answers
the bytes asked for in one reply) and QUITs; the steps are judged alike.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from harness.journal import FaultMeasured
from harness.scenario import Step
from harness.toxiproxy import Link
from mocks.control import CANARY_MAX_BYTES
from mocks.manifest import ChannelKind
from mocks.paths import CANARY_COMMAND, CANARY_PATH

BUDGET = 4.5
"""Seconds one probe may take at most, connection to close."""

SLICED = 3
"""An unsliced answer arrives in one or two pieces (head, body); a sliced one in more."""

_TCP_INFO_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info (4.6+)

SMTP_LINK: ChannelKind = "email"
"""The link to the mail server (a channel's link is named after the channel)."""

Protocol = Literal["HTTP", "SMTP"]

_FULL: dict[Protocol, int] = {"HTTP": 200, "SMTP": 250}
"""The status of a full answer: HTTP's, and the reply to the SMTP canary command."""


@dataclass(frozen=True)
class Endpoint:
    """Where a link's clients connect, the TLS context if the mock behind it is HTTPS, and
    the protocol it speaks."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None
    protocol: Protocol = "HTTP"


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """A client context trusting the run's test CA. TLS 1.2 without tickets: nothing but the
    answer arrives after the handshake, so the reads counted are the answer's."""
    context = ssl.create_default_context(cafile=ca_bundle)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_TICKET
    return context


Ended = Literal["answered", "refused", "reset", "closed", "timeout", "error"]


@dataclass(frozen=True)
class Observation:
    """What one canary connection saw. Times are seconds from the start of sending the request
    (`answered`), or from the answer's last byte (`closed`)."""

    ended: Ended
    reason: str = ""
    status: int | None = None
    """The HTTP status, or the code of the SMTP reply that ended the exchange."""
    protocol: Protocol = "HTTP"
    answered: float | None = None
    closed: float | None = None
    """How long after the canary half-closed, once answered, the connection closed (None: not
    within the wait, or not awaited)."""
    pieces: int = 0
    """TCP data segments (Linux; elsewhere reads) the answer arrived in."""


class _Timeout(Exception):
    """The probe's deadline passed."""


class _Wire:
    """One connection, plain or TLS over memory buffers, every operation against a deadline."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject | None,
                 incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> None:
        self._sock, self._tls = sock, tls
        self._in, self._out = incoming, outgoing
        self._raw_reads = 0

    @classmethod
    def open(cls, target: Endpoint, deadline: float) -> _Wire:
        sock = socket.create_connection((target.host, target.port),
                                        timeout=max(deadline - time.monotonic(), 0.001))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        if target.tls is None:
            return cls(sock, None, incoming, outgoing)
        wire = cls(sock, target.tls.wrap_bio(incoming, outgoing, server_hostname=target.host),
                   incoming, outgoing)
        try:
            wire._handshake(deadline)
        except BaseException:
            sock.close()
            raise
        return wire

    def _handshake(self, deadline: float) -> None:
        assert self._tls is not None
        while True:
            try:
                self._tls.do_handshake()
                self._flush(deadline)
                return
            except ssl.SSLWantReadError:
                self._flush(deadline)
                raw = self._recv(deadline)
                if not raw:
                    raise ConnectionAbortedError("closed during the TLS handshake") from None
                self._in.write(raw)

    def _budget(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Timeout
        self._sock.settimeout(left)

    def _recv(self, deadline: float) -> bytes:
        self._budget(deadline)
        try:
            raw = self._sock.recv(65536)
        except TimeoutError:
            raise _Timeout from None
        if raw:
            self._raw_reads += 1
        return raw

    def pieces(self) -> int:
        """Data segments received so far (TCP_INFO), or reads where the kernel does not say;
        segments do not merge in the receive buffer as reads do, so slicing shows in them."""
        with contextlib.suppress(OSError, AttributeError):
            info = self._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            if len(info) >= _TCP_INFO_DATA_SEGS_IN + 4:
                return int(struct.unpack_from("I", info, _TCP_INFO_DATA_SEGS_IN)[0])
        return self._raw_reads

    def _flush(self, deadline: float) -> None:
        if pending := self._out.read():
            self._sendall(pending, deadline)

    def _sendall(self, data: bytes, deadline: float) -> None:
        self._budget(deadline)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise _Timeout from None

    def send(self, data: bytes, deadline: float) -> None:
        """Send all of `data`."""
        if self._tls is None:
            self._sendall(data, deadline)
            return
        self._tls.write(data)
        self._flush(deadline)

    def read(self, deadline: float) -> bytes:
        """The next bytes of the answer; b"" when the peer closed (or ended TLS)."""
        if self._tls is None:
            return self._recv(deadline)
        while True:
            try:
                data = self._tls.read(65536)
            except ssl.SSLWantReadError:
                raw = self._recv(deadline)
                if not raw:
                    return b""
                self._in.write(raw)
                continue
            if not data:
                # The server ended TLS; answering in kind lets it close the TCP connection now
                # instead of after its shutdown timeout.
                with contextlib.suppress(ssl.SSLError):
                    self._tls.unwrap()
                self._flush(deadline)
            return data

    def half_close(self, deadline: float) -> float:
        """Send our FIN (no TLS close: the server must see the TCP close) and return how long
        the peer took to close in turn; raises _Timeout if it did not before `deadline`."""
        began = time.monotonic()
        self._sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):  # a reset is a close too
            while self._recv(deadline):
                pass
        return time.monotonic() - began

    def close(self) -> None:
        self._sock.close()


def _request(target: Endpoint, ask: int, upload: int, keep_alive: bool) -> bytes:
    method = "POST" if upload else "GET"
    head = (f"{method} {CANARY_PATH}?bytes={ask} HTTP/1.1\r\nHost: {target.host}:{target.port}"
            f"\r\nContent-Length: {upload}\r\n" + ("" if keep_alive else "Connection: close\r\n")
            + "\r\n")
    return head.encode() + b"." * upload


def _parse_head(buffer: bytes) -> tuple[int, int, int] | None:
    """(status, content length, where the body starts) once the head is complete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buffer[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                   if line.lower().startswith("content-length:")), 0)
    return status, length, end + 4


def probe(target: Endpoint, *, ask: int = 16, upload: int = 0, answer_within: float = 2.0,
          close_within: float = 0.0) -> Observation:
    """One canary request on a new connection: send `upload` bytes, ask for `ask` bytes back;
    give up on the answer `answer_within` seconds after connecting. With `close_within`, the
    connection is kept alive, and once answered the canary half-closes it and waits that long
    for the server's close: both directions' closes then lie on the path measured."""
    deadline = time.monotonic() + min(answer_within, BUDGET)
    try:
        wire = _Wire.open(target, deadline)
    except ConnectionRefusedError:
        return Observation("refused")
    except (_Timeout, TimeoutError):
        return Observation("timeout", "no connection" if target.tls is None
                           else "no TLS handshake")
    except (ConnectionResetError, ConnectionAbortedError, ssl.SSLError, OSError) as exc:
        return _ended(exc)
    try:
        if target.protocol == "SMTP":
            return _smtp_exchange(wire, ask, upload, deadline,
                                  min(close_within, BUDGET - answer_within))
        return _exchange(wire, _request(target, ask, upload, keep_alive=close_within > 0),
                         deadline, min(close_within, BUDGET - answer_within))
    finally:
        wire.close()


def _exchange(wire: _Wire, request: bytes, deadline: float, close_within: float) -> Observation:
    sent = time.monotonic()
    before = wire.pieces()
    buffer, head = b"", None
    try:
        wire.send(request, deadline)
        while head is None or len(buffer) < head[1] + head[2]:
            data = wire.read(deadline)
            if not data:
                return Observation("closed", "closed before a full answer")
            buffer += data
            head = head or _parse_head(buffer)
    except _Timeout:
        return Observation("timeout", "no full answer")
    except (OSError, ssl.SSLError, ValueError, IndexError) as exc:  # IndexError: a bad head
        return _ended(exc)
    answered = time.monotonic()
    pieces = wire.pieces() - before
    closed = None
    if close_within > 0:
        with contextlib.suppress(_Timeout, OSError):
            closed = wire.half_close(answered + close_within)
    return Observation("answered", status=head[0], answered=answered - sent, closed=closed,
                       pieces=pieces)


def _smtp_reply(wire: _Wire, buffer: bytearray, deadline: float) -> int | None:
    """The code of the next whole SMTP reply (its lines taken off `buffer`); None when the
    peer closed before it ended."""
    start = 0
    while True:
        end = buffer.find(b"\r\n", start)
        if end < 0:
            data = wire.read(deadline)
            if not data:
                return None
            buffer.extend(data)
            continue
        line, start = bytes(buffer[start:end]), end + 2
        if line[3:4] != b"-":  # the last line of a reply: "250 OK" (a "250-..." goes on)
            del buffer[:start]
            if not (line[:3].isdigit() and len(line[:3]) == 3):
                raise ValueError(f"not an SMTP reply: {line[:40]!r}")
            return int(line[:3])


def _smtp_exchange(wire: _Wire, ask: int, upload: int, deadline: float,
                   close_within: float) -> Observation:
    """The greeting, then the canary command (its answer is the probe's answer), then QUIT;
    with `close_within`, instead of QUIT, the canary half-closes and waits for the server's
    close, as the HTTP probe does on a kept-alive connection."""
    began = time.monotonic()
    buffer, pieces = bytearray(), 0
    try:
        code = _smtp_reply(wire, buffer, deadline)
        if code == 220:
            before = wire.pieces()
            wire.send(f"{CANARY_COMMAND} {ask} {upload}\r\n".encode() + b"." * upload, deadline)
            code = _smtp_reply(wire, buffer, deadline)
            pieces = wire.pieces() - before
        if code is None:
            return Observation("closed", "closed before a full answer", protocol="SMTP")
    except _Timeout:
        return Observation("timeout", "no full answer", protocol="SMTP")
    except (OSError, ssl.SSLError, ValueError) as exc:
        return _ended(exc)
    answered = time.monotonic()
    if code != _FULL["SMTP"]:
        return Observation("answered", status=code, answered=answered - began, protocol="SMTP")
    closed = None
    if close_within > 0:
        with contextlib.suppress(_Timeout, OSError):
            closed = wire.half_close(answered + close_within)
    else:
        with contextlib.suppress(_Timeout, OSError):  # a courtesy: the answer is in
            wire.send(b"QUIT\r\n", deadline)
    return Observation("answered", status=code, answered=answered - began, closed=closed,
                       pieces=pieces, protocol="SMTP")


def _ended(exc: BaseException) -> Observation:
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return Observation("reset", "reset by peer")
    if isinstance(exc, ConnectionAbortedError | ssl.SSLEOFError):
        return Observation("closed", str(exc) or "closed before a full answer")
    return Observation("error", f"{type(exc).__name__}: {exc}")


# --- judging a step ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """How to probe for one step's fault and what counts as it showing."""

    effect: str
    """What an affected connection did, as the detail says it ("delayed >= 800 ms")."""
    asked: str
    """What the step asked for ("asked 1000 ms")."""
    shows: Callable[[Observation], bool]
    ask: int = 16
    upload: int = 0
    answer_within: float = 2.0
    close_within: float = 0.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _not_answered(observation: Observation) -> bool:
    return observation.ended != "answered"


def _full_answer(observation: Observation) -> bool:
    return observation.ended == "answered" and observation.status == _FULL[observation.protocol]


def plan(step: Step) -> Plan | None:
    """The probing plan for a network step, None if the canary cannot measure its kind."""
    params = step.params
    upstream = params.get("stream", "downstream") == "upstream"

    def number(name: str) -> float:
        return float(params.get(name, 0))

    if step.fault == "proxy.down":
        return Plan("were refused or closed with no answer", "link disabled", _not_answered)
    if step.fault == "proxy.latency":
        latency, jitter = number("latency") / 1000, number("jitter") / 1000
        threshold = 0.8 * max(latency - jitter, latency / 2)
        # A TLS handshake takes two delayed round trips before the request even leaves.
        wait = min(3 * threshold + 1.0, BUDGET)
        return Plan(f"were delayed >= {_ms(threshold)}",
                    f"asked {_ms(latency)}" + (f" ± {_ms(jitter)}" if jitter else ""),
                    lambda o: threshold > 0.001 and (
                        o.ended == "timeout" or (o.answered or 0.0) >= threshold),
                    answer_within=wait)
    if step.fault == "proxy.timeout":
        timeout = number("timeout") / 1000
        wait = min(timeout, 2.0) if timeout else 2.0
        return Plan(f"had no answer within {_ms(wait)}",
                    f"asked timeout {_ms(timeout)}" if timeout else "asked no close",
                    _not_answered, answer_within=wait)
    if step.fault == "proxy.reset_peer":
        timeout = number("timeout") / 1000
        return Plan("were reset or had no full answer", f"asked reset after {_ms(timeout)}",
                    lambda o: not _full_answer(o), answer_within=min(timeout + 1.0, 3.0))
    if step.fault == "proxy.limit_data":
        limit = int(number("bytes"))
        size = min(limit + 4096, CANARY_MAX_BYTES)
        return Plan("had their answer cut short", f"asked {limit} bytes, sent {size}",
                    lambda o: not _full_answer(o), ask=0 if upstream else size,
                    upload=size if upstream else 0, answer_within=3.0)
    if step.fault == "proxy.bandwidth":
        rate = number("rate") * 1024
        size = int(min(rate, 4 * 1024 * 1024)) if rate else 16 * 1024
        expected = size / rate if rate else float("inf")
        wait = min(2 * expected + 1.0, BUDGET)
        threshold = min(expected / 2, wait)
        return Plan(f"took >= {_ms(threshold)} for {size // 1024} KB",
                    f"asked {number('rate'):g} KB/s",
                    lambda o: o.ended == "timeout" or (o.answered or 0.0) >= threshold,
                    ask=0 if upstream else size, upload=size if upstream else 0,
                    answer_within=wait)
    if step.fault == "proxy.slow_close":
        delay = number("delay") / 1000
        threshold = 0.8 * delay
        return Plan(f"closed >= {_ms(threshold)} after the last byte", f"asked {_ms(delay)}",
                    lambda o: threshold > 0.001 and _full_answer(o)
                    and (o.closed is None or o.closed >= threshold),
                    close_within=min(threshold + 1.0, BUDGET - 2.0))
    if step.fault == "proxy.slicer":
        average, variation = number("average_size"), number("size_variation")
        size = int(min(max(8 * (average + variation), 2048), 16 * 1024))
        delay = number("delay") / 1e6  # µs between slices
        wait = min(1.0 + 2 * delay * size / max(average, 1), BUDGET)
        return Plan(f"got the answer in >= {SLICED} pieces", f"asked slices of "
                    f"{average:g} ± {variation:g} bytes, sent {size}",
                    lambda o: _full_answer(o) and o.pieces >= SLICED,
                    ask=0 if upstream else size, upload=size if upstream else 0,
                    answer_within=wait)
    return None


def probes_for(step: Step) -> int:
    """How many connections to probe: Toxiproxy draws toxicity per connection, so a fraction
    needs more of them to show."""
    return 10 if float(step.params.get("toxicity", 1.0)) < 1.0 else 5


def _summary(observations: list[Observation]) -> str:
    """How the connections that did not show the fault went: "4 answered in 2-5 ms, 1 reset"."""
    times = sorted(o.answered or 0.0 for o in observations if _full_answer(o))
    counts = Counter(f"answered {o.protocol} {o.status}" if o.ended == "answered"
                     else f"{o.ended} ({o.reason})" if o.reason else o.ended
                     for o in observations if not _full_answer(o))
    parts = [f"{n} {what}" for what, n in counts.most_common()]
    if times:
        span = _ms(times[0]) if _ms(times[0]) == _ms(times[-1]) else \
            f"{times[0] * 1000:.0f}-{_ms(times[-1])}"
        parts.insert(0, f"{len(times)} answered in {span}")
    return ", ".join(parts)


def measure(index: int, step: Step, target: Endpoint, probes: int | None = None) -> FaultMeasured:
    """Probe `target` for step `index`'s fault on `probes` new connections at once."""
    how = plan(step)
    if how is None:
        return FaultMeasured(step=index, probes=0, affected=0,
                             detail=f"the canary cannot measure {step.fault}")
    count = probes or probes_for(step)
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="canary") as pool:
        observations = list(pool.map(lambda _: probe(
            target, ask=how.ask, upload=how.upload, answer_within=how.answer_within,
            close_within=how.close_within), range(count)))
    shown = [o for o in observations if how.shows(o)]
    toxicity = float(step.params.get("toxicity", 1.0))
    asked = how.asked + (f", toxicity {toxicity:g}" if toxicity < 1.0 else "")
    detail = f"{len(shown)} of {count} canary connections {how.effect} ({asked})"
    others = [o for o in observations if not how.shows(o)]
    if others:
        detail += f"; the others: {_summary(others)}"
    return FaultMeasured(step=index, probes=count, affected=len(shown), detail=detail)


class Canary:
    """The canary endpoints of one run's links, by link name (`ledger`, `vendors.<name>`,
    `email`, ...)."""

    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self._endpoints = dict(endpoints)

    @classmethod
    def through(cls, links: Mapping[str, Link], *, secure: Collection[str],
                ca_bundle: str) -> Canary:
        """Probes through each link's listen address; the `secure` links lead to HTTPS mocks,
        whose certificates the run's test CA (`ca_bundle`) signed, and SMTP_LINK to the mail
        server."""
        tls = tls_context(ca_bundle)
        return cls({name: Endpoint(link.listen_host, link.listen_port,
                                   tls if name in secure else None,
                                   "SMTP" if name == SMTP_LINK else "HTTP")
                    for name, link in links.items()})

    def measure(self, index: int, step: Step) -> FaultMeasured:
        """Measure step `index` on its link."""
        target = self._endpoints.get(step.link)
        if target is None:
            return FaultMeasured(step=index, probes=0, affected=0,
                                 detail=f"no canary endpoint for link {step.link}")
        return measure(index, step, target)
