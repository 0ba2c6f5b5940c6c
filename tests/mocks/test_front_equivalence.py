"""The lean front on the Twilio mock's port (mocks.front) answers a plain send exactly as aiohttp's
slow path answers it (status, headers, body, journal events), hands every other request to
aiohttp unchanged, and lets no answer leave before its send is in the journal file."""

from __future__ import annotations

import asyncio
import base64
import errno
import io
import json
import random
import re
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus

import pytest
from aiohttp import web

from harness.journal import JournalWriter, SendRecorded, VendorCall
from mocks import twilio
from mocks.catalogue import issue_credentials
from mocks.control import VendorFaults
from mocks.front import STALL, FrontSite, parse
from mocks.handsets import Handsets
from mocks.manifest import MocksConfig, VendorConfig
from mocks.sends import Secrets, SendRecord
from mocks.server import _serve, make_runner
from mocks.vendor import VendorMock

RNG_SEED = 11
TIMEOUT = 10.0
UNMET = VendorFaults(invalid_numbers=frozenset({"+19999999999"}))
"""A fault no send here meets: it turns the fast path off and changes nothing else."""
FORM = "To=%2B8613800000001&From=%2B15005550006&Body=Your+repayment+is+due+ref%3AF1"


@dataclass
class Served:
    """A Twilio mock served as `mocks.server` serves it, in this process."""

    mock: VendorMock
    site: FrontSite
    runner: web.AppRunner
    port: int
    journal: Path

    @property
    def path(self) -> str:
        return f"/2010-04-01/Accounts/{self.mock.credentials['account_sid']}/Messages.json"

    @property
    def auth(self) -> str:
        pair = f"{self.mock.credentials['account_sid']}:{self.mock.credentials['auth_token']}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def send(self, form: str = FORM, extra: str = "", content_type: str =
             "application/x-www-form-urlencoded") -> bytes:
        body = form.encode()
        return (f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: {self.auth}\r\nContent-Type: {content_type}\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.journal.read_bytes().splitlines()]


@asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Served]:
    config = MocksConfig(journal_dir=str(tmp_path), vendors={"twilio": VendorConfig(kind="twilio")})
    journal = JournalWriter(tmp_path, "mocks", group_commit=True)
    mock = VendorMock("twilio", config.vendors["twilio"], issue_credentials("twilio"),
                      SendRecord(journal), journal, Handsets(config.handsets, 7), 7)
    runners: list[web.AppRunner] = []
    url = await _serve(twilio.create_app(mock), runners, "token", journal)
    site = next(iter(runners[0].sites))
    assert isinstance(site, FrontSite)
    try:
        yield Served(mock, site, runners[0], int(url.rsplit(":", 1)[1]), journal.path)
    finally:
        await runners[0].cleanup()
        journal.close()


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP answer (its head and a Content-Length body), or what came before EOF."""
    async with asyncio.timeout(TIMEOUT):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as cut:
            return cut.partial
        if head.startswith(b"HTTP/1.1 100 "):
            return head + await read_answer(reader)
        found = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
        return head + await reader.readexactly(int(found.group(1)) if found else 0)


async def exchange(served: Served, *chunks: bytes, answers: int = 1,
                   pause: float = 0.05) -> list[bytes]:
    """Send `chunks` (each one write, `pause` seconds apart) over one new connection and read
    `answers` answers."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        for n, chunk in enumerate(chunks):
            if n:
                await asyncio.sleep(pause)  # separate segments: the front sees a partial request
            writer.write(chunk)
            await writer.drain()
        return [await read_answer(reader) for _ in range(answers)]
    finally:
        writer.close()
        await writer.wait_closed()


def normalised(answer: bytes) -> bytes:
    """An answer without what differs between any two: the date, message SIDs, Twilio dates."""
    answer = re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: *", answer)
    answer = re.sub(rb"SM[0-9a-f]{32}", b"SM*", answer)
    return re.sub(rb"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000", b"DATE", answer)


def comparable(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """The events the calls journaled, without times, sequence numbers and SIDs."""
    varying = {"t", "seq", "latency", "message_id", "inbox_at"}
    return [{key: value for key, value in event.items() if key not in varying}
            for event in events if event["kind"] != "mock.faults"]


async def both_ways(served: Served, *chunks: bytes, answers: int = 1,
                    pause: float = 0.05) -> tuple[list[bytes], list[bytes], int]:
    """The answers with no fault on, then with the unmet fault on (the slow path only), and how
    many of the first the front answered itself; the journal's events of each must agree."""
    before, served_before = len(served.events()), served.site.served
    quiet = await exchange(served, *chunks, answers=answers, pause=pause)
    middle = len(served.events())
    fast = served.site.served - served_before
    served.mock.switch(UNMET)
    try:
        slow = await exchange(served, *chunks, answers=answers, pause=pause)
    finally:
        served.mock.switch(VendorFaults())
    events = served.events()
    assert comparable(events[before:middle]) == comparable(events[middle:])
    return quiet, slow, fast


PLAIN_SENDS = [
    {},
    {"extra": "Connection: keep-alive\r\nUser-Agent: twilio-python/9\r\nAccept: */*\r\n"},
    {"content_type": "application/x-www-form-urlencoded; charset=utf-8"},
    {"form": "To=%2B8613800000002&From=%2B15005550006&Body=%E4%BD%A0%E5%A5%BD+%22q%22%5C"
             "&StatusCallback=&MessagingServiceSid=MG1&To=%2B1&Body=second+ignored"},
    {"form": "To=%2B8613800000003&MessagingServiceSid=MG2&Body=a%26b%3Dc+%2B+%25&&x\r\n"},
    {"form": "To=%2B8613800000004&From=%2B15005550006&Body=" + quote_plus("é" * 1600)},
]


@pytest.mark.parametrize("request_", PLAIN_SENDS)
def test_a_plain_send_is_answered_by_the_front_as_the_slow_path_answers_it(
        tmp_path: Path, request_: dict[str, str]) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            quiet, slow, fast = await both_ways(served, served.send(**request_))
            assert fast == 1
            assert quiet[0].startswith(b"HTTP/1.1 201 Created\r\n")
            assert normalised(quiet[0]) == normalised(slow[0])

    asyncio.run(run())


def test_requests_the_front_does_not_read_reach_aiohttp_and_are_answered_as_before(
        tmp_path: Path) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            plain = served.send()
            head, body = plain.split(b"\r\n\r\n", 1)
            chunked = head.replace(b"Content-Length: ", b"Transfer-Encoding: chunked\r\nX: ")
            cases = {
                "chunked": (chunked + b"\r\n\r\n%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n",),
                "expect": (served.send(extra="Expect: 100-continue\r\n"),),
                "stalled body": (head + b"\r\n\r\n", body),
                "http/1.0": (plain.replace(b"HTTP/1.1", b"HTTP/1.0", 1),),
                "bad auth": (plain.replace(b"Basic ", b"Basic x", 1),),
                "no To": (served.send(form="From=%2B15005550006&Body=x"),),
                "too long": (served.send(form="To=%2B861380000000&From=%2B1&Body=" + "x" * 1601),),
                "not E.164": (served.send(form="To=12345&From=%2B1&Body=x"),),
                "json": (served.send(form='{"To": "+8613800000001"}',
                                     content_type="application/json"),),
                "repeated header": (served.send(extra="Content-Type: text/plain\r\n"),),
                "non-ascii header": (served.send(extra="X-Name: caf\u00e9\r\n"),),
                "bare LF": (plain.replace(b"\r\nHost", b"\nHost", 1),),
                "junk": (b"\x16\x03\x01\x02\x00junk\r\n\r\n",),
                "list": (f"GET {served.path}?PageSize=1 HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: {served.auth}\r\n\r\n".encode(),),
            }
            for name, chunks in cases.items():
                # A request's rest that comes STALL seconds late finds it with aiohttp.
                quiet, slow, fast = await both_ways(served, *chunks, pause=STALL * 5)
                assert fast == 0, name
                assert normalised(quiet[0]) == normalised(slow[0]), name
                assert quiet[0].startswith(b"HTTP/1."), name

    asyncio.run(run())


def test_a_send_that_comes_in_parts_within_the_stall_time_is_the_fronts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            plain = served.send()
            cut = plain.index(b"\r\n\r\n") + 10
            monkeypatch.setattr("mocks.front.STALL", 30.0)  # no loaded machine is that slow
            for chunks in ((plain[:20], plain[20:]), (plain[:cut], plain[cut:])):
                quiet, slow, fast = await both_ways(served, *chunks, pause=0.05)
                assert fast == 1
                assert normalised(quiet[0]) == normalised(slow[0])
            # A trickle that takes longer than STALL in all is aiohttp's, however fast each bit.
            monkeypatch.setattr("mocks.front.STALL", 0.1)
            bits = [plain[n:n + 40] for n in range(0, len(plain), 40)]
            quiet, slow, fast = await both_ways(served, *bits, pause=0.4 / len(bits))
            assert fast == 0
            assert quiet[0].startswith(b"HTTP/1.1 201 ")
            assert normalised(quiet[0]) == normalised(slow[0])

    asyncio.run(run())


def test_pipelined_sends_are_answered_in_order_and_a_later_request_is_aiohttps(
        tmp_path: Path) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            first = served.send("To=%2B8613800000001&From=%2B1500555&Body=one")
            second = served.send("To=%2B8613800000002&From=%2B1500555&Body=two")
            listing = (f"GET {served.path} HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: {served.auth}\r\n\r\n").encode()
            answers = await exchange(served, first + second + listing, answers=3)
            assert served.site.served == 2
            bodies = [json.loads(answer.split(b"\r\n\r\n", 1)[1]) for answer in answers]
            assert [bodies[0]["body"], bodies[1]["body"]] == ["one", "two"]
            assert [m["sid"] for m in bodies[2]["messages"]] == [bodies[1]["sid"],
                                                                 bodies[0]["sid"]]
            assert b"\r\nConnection: close" not in answers[2]

    asyncio.run(run())


def test_a_client_that_sends_much_before_reading_gets_every_answer_in_order(
        tmp_path: Path) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            sends = [served.send(f"To=%2B8613800000001&From=%2B1&Body=n{n}")
                     for n in range(1_500)]
            # Far more answers than a transport buffers: the front stops reading meanwhile.
            answers = await exchange(served, b"".join(sends), answers=len(sends))
            bodies = [json.loads(answer.split(b"\r\n\r\n", 1)[1])["body"]
                      for answer in answers]
            assert bodies == [f"n{n}" for n in range(len(sends))]
            assert served.site.served == len(sends)

    asyncio.run(run())


def test_an_answer_leaves_only_once_its_send_is_in_the_journal_file(tmp_path: Path) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            try:
                for n in range(20):
                    writer.write(served.send(f"To=%2B86138000000{n:02d}&From=%2B1&Body=b{n}"))
                    answer = await read_answer(reader)
                    sid = json.loads(answer.split(b"\r\n\r\n", 1)[1])["sid"]
                    on_file = served.journal.read_bytes()  # at once: no loop turn in between
                    assert f'"message_id":"{sid}"'.encode() in on_file
            finally:
                writer.close()
                await writer.wait_closed()
            assert served.site.served == 20

    asyncio.run(run())


class _Full(io.RawIOBase):
    """A journal file on a full disk."""

    def __init__(self, real: io.FileIO) -> None:
        self.real = real

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()
        super().close()


def test_a_journal_that_fails_withholds_the_answer_and_closes_the_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        async with serving(tmp_path) as served:
            writer = served.mock.record._journal
            monkeypatch.setattr(writer, "_file", _Full(writer._file))
            answer = (await exchange(served, served.send()))[0]
            assert answer == b""  # closed with no answer: nothing acknowledged the lost send
            assert served.site.served == 0

    asyncio.run(run())


def test_idle_connections_are_closed_after_the_idle_timeout_and_when_the_site_stops(
        tmp_path: Path) -> None:
    async def run() -> None:
        journal = JournalWriter(tmp_path, "mocks", group_commit=True)
        runner = make_runner(web.Application())
        await runner.setup()
        site = FrontSite(runner, lambda request: None, journal, idle_timeout=0.3)
        await site.start()
        port = runner.addresses[0][1]
        writers = []
        try:
            async with asyncio.timeout(TIMEOUT):
                idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
                writers.append(idle_writer)
                assert await idle_reader.read() == b""  # closed by the idle timeout
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writers.append(writer)
                while not site.fronts:  # until the front holds the connection
                    await asyncio.sleep(0.01)
                await site.stop()
                assert await reader.read() == b""  # closed by the site's stop
        finally:
            for each in writers:
                each.close()
                await each.wait_closed()
            await runner.cleanup()
            journal.close()

    asyncio.run(run())


def test_parse_reads_only_plain_whole_requests() -> None:
    plain = (b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
             b"Authorization:  Basic x\r\n\r\nabcNEXT")
    parsed = parse(plain)
    assert parsed is not None
    request, length = parsed
    assert (request.head.method, request.head.target, request.body, length) == (
        "POST", "/p", b"abc", len(plain) - 4)
    assert request.head.headers == {"Host": "h", "Content-Length": "3",
                                    "Authorization": "Basic x"}
    assert parse(plain[:-6]) == parse(plain[:20]) == "partial"
    not_plain = [
        plain[:20] + b"\xff", plain.replace(b"1.1", b"1.0"), plain.replace(b"Host: h\r\n", b""),
        plain.replace(b"Host: h", b"Host: h\r\nhost: i"), plain.replace(b"h\r\n", b"h \r\n", 1),
        plain.replace(b"Host: h", b"Host: h\r\nConnection: close"),
        plain.replace(b"Host: h", b"Host: h\r\nTransfer-Encoding: chunked"),
        plain.replace(b"Host: h", b"Host: h\r\nExpect: 100-continue"),
        plain.replace(b"Host: h", b"Host: h\r\nUpgrade: h2c"),
        plain.replace(b"Host: h", b"Host: h\r\nContent-Encoding: gzip"),
        plain.replace(b"Host: h", b"Host: h\r\n continued"),
        plain.replace(b"Host: h", b"Host: \xc3\xa9"),
        plain.replace(b"Host: h", b"Host h"), plain.replace(b"Host: h", b"Ho st: h"),
        plain.replace(b"Content-Length: 3", b"Content-Length: +3"),
        plain.replace(b"Content-Length: 3", b"Content-Length: 99999999"),
        plain.replace(b"\r\nHost", b"\nHost"), plain.replace(b"POST /p", b"POST  /p"),
    ]
    for data in not_plain:
        assert parse(data) is None, data


def test_form_pairs_read_forms_as_parse_qsl_does() -> None:
    rng = random.Random(RNG_SEED)
    pieces = ["&", "=", "+", "%", "%2B", "%E4%BD%A0", "%zz", "%C3", "a", "To", " ", "\u00e9"]
    texts = ["", "&&", "=", "a", "a=", "=b", "a=b=c", FORM,
             *("".join(rng.choices(pieces, k=rng.randint(1, 12))) for _ in range(5_000))]
    for text in texts:
        assert twilio.form_pairs(text) == parse_qsl(text, keep_blank_values=True), text


def test_a_created_messages_json_is_what_json_dumps_makes_of_its_resource() -> None:
    rng = random.Random(RNG_SEED)
    alphabet = string.printable + "\u00e9\u4f60\u2028\x00\x1f\x7f\"\\/\U0001f600"
    for _ in range(2_000):
        def text() -> str:
            return "".join(rng.choices(alphabet, k=rng.randint(0, 30)))

        message = twilio._Message("SM" + text(), text(), text(), text(), rng.uniform(0, 4e9),
                                  "delivered", rng.choice([None, text()]), False)
        sid = "AC" + text()
        assert message.created_json(sid) == json.dumps(
            message.resource(sid, just_created=True)).encode()


def test_append_writes_the_very_lines_write_writes(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(RNG_SEED)
    alphabet = string.printable + "\u00e9\u4f60\u2028\x00\x7f\"\\\U0001f600"

    def text() -> str:
        return "".join(rng.choices(alphabet, k=rng.randint(0, 20)))

    def floats() -> float:
        return rng.choice([rng.uniform(0, 4e9), rng.uniform(0, 1e-3), rng.expovariate(1e-6),
                           1e-7 * rng.random(), float(rng.randint(0, 10**12))])

    events: list[SendRecorded | VendorCall] = []
    for _ in range(1_000):
        events.append(VendorCall(vendor=text(), status=rng.choice([None, 201]),
                                 outcome="accepted", latency=floats(),
                                 t=rng.choice([0.0, floats()])))
        events.append(SendRecorded(t=floats(), vendor=text(), message_id=text(), to=text(),
                                   body=text(), inbox_at=rng.choice([None, floats()]),
                                   request={"headers": {text(): text()}, "body": text()}))
    clock = [floats() for _ in events]
    lines = []
    for way in ("write", "append"):
        writer = JournalWriter(tmp_path / way, "mocks")
        ticks = iter(clock)
        monkeypatch.setattr("harness.journal.time.time", lambda ticks=ticks: next(ticks))
        for event in events:
            getattr(writer, way)(event)
        writer.close()
        lines.append((tmp_path / way / "mocks.jsonl").read_bytes())
    assert lines[0] == lines[1]


def test_a_secret_is_masked_as_before_wherever_the_one_scan_of_the_repr_looks() -> None:
    rng = random.Random(RNG_SEED)
    secrets = Secrets.of({"account_sid": "AC1f", "auth_token": "tok3n/+="}, {"auth_token"})
    assert secrets.repr_safe and secrets.pattern is not None
    long_way = Secrets(secrets.pattern)  # no shortcut: the exact scan of the strings alone
    pieces = ["tok3n/+=", "tok3n%2F%2B%3D", "tok3n", "'", '"', "\\", "\n", "\u00e9", "a", "=",
              base64.b64encode(b"AC1f:tok3n/+=").decode()]

    def text() -> str:
        return "".join(rng.choices(pieces, k=rng.randint(0, 4)))

    for _ in range(3_000):
        request: dict[str, object] = {
            "method": text(), "path": text(), "query": text(), "body": text(),
            "headers": {text(): text() for _ in range(rng.randint(0, 3))},
            "rcpt_to": [text()], "size": rng.randint(0, 9)}
        masked, expected = secrets.mask(request), long_way.mask(request)
        assert masked == expected
        assert (masked is request) == (expected is request)


def test_form_pairs_read_escapes_and_backslashes_as_parse_qsl_does() -> None:
    # A field's escapes are decoded in C unless the field holds a backslash or a % that starts
    # no escape: each way must read as parse_qsl reads it.
    rng = random.Random(RNG_SEED)
    pieces = ["%", "%4", "%41", "%e4%bd%a0", "%5C", "%5cx41", "\\", "\\x41", "\\n", "x", "41",
              "%%", "%0A", "%00", "%FF", "%C3", "=", "&", "+"]
    texts = [*pieces, *("".join(rng.choices(pieces, k=rng.randint(1, 10))) for _ in range(5_000))]
    for text in texts:
        assert twilio.form_pairs(text) == parse_qsl(text, keep_blank_values=True), text
