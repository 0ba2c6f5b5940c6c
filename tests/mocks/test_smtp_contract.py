"""The mail server mock's contract, driven with the standard library's smtplib against the real
mock process: what a client sees (replies, exceptions) and what the journal holds, for every
fault."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from mockkit import CONTROL, TOKEN, serving, wait_until

from harness.journal import (
    FaultTouched,
    JournalWriter,
    MockFaultsChanged,
    SendRecorded,
    VendorCall,
    read_journal,
)
from mocks.bank import Bank, Changes, Population
from mocks.channels import ChannelDeps, ChannelServer
from mocks.handsets import HandsetConfig, Handsets
from mocks.manifest import ChannelEndpoint, MocksConfig
from mocks.paths import CANARY_COMMAND
from mocks.sends import SendRecord
from mocks.smtp import _Connection, start

SUBJECT = "还款提醒：您的房贷本期应还 5,230.00 元"
TEXT = "尊敬的王先生：\n您的房贷本期应还 5,230.00 元，请于 2026-12-15 前还款。\n退订回复TD"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChannelEndpoint, Path]]:
    """The mock process serving the mail server (and no SMS vendor): its endpoint, journal."""
    workdir = tmp_path_factory.mktemp("mail")
    journal_dir = workdir / "journal"
    config = MocksConfig(seed=7, journal_dir=str(journal_dir), vendors={}, channels=["email"],
                         token=TOKEN, run_dir=str(workdir))
    with serving(workdir, config) as mocks:
        yield mocks.manifest.channels["email"], journal_dir
    assert "Traceback" not in mocks.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def mail(served: tuple[ChannelEndpoint, Path]) -> ChannelEndpoint:
    return served[0]


@pytest.fixture
def journal_dir(served: tuple[ChannelEndpoint, Path]) -> Path:
    return served[1]


def _address(endpoint: ChannelEndpoint) -> tuple[str, int]:
    host, port = endpoint.url.removeprefix("smtp://").rsplit(":", 1)
    return host, int(port)


@contextmanager
def smtp(endpoint: ChannelEndpoint, *, login: bool = True,
         timeout: float = 10.0) -> Iterator[smtplib.SMTP]:
    """A connected (and logged in) smtplib client; closed after."""
    client = smtplib.SMTP(*_address(endpoint), timeout=timeout)
    try:
        if login:
            client.login(endpoint.credentials["username"], endpoint.credentials["password"])
        yield client
    finally:
        client.close()


@contextmanager
def faults(endpoint: ChannelEndpoint, **values: Any) -> Iterator[None]:
    """The mail server's faults `values` in force; cleared after."""
    with httpx.Client(timeout=5, headers=CONTROL) as client:
        client.put(endpoint.control_url, json=values).raise_for_status()
        try:
            yield
        finally:
            client.delete(endpoint.control_url).raise_for_status()


def reminder(endpoint: ChannelEndpoint, *to: str, ref: str | None = None) -> EmailMessage:
    """A reminder e-mail as a notifier builds it: a Chinese subject and text, utf-8."""
    message = EmailMessage()
    message["From"] = endpoint.values["from"]
    message["To"] = ", ".join(to)
    message["Subject"] = SUBJECT
    if ref is not None:
        message["X-Reminder-Ref"] = ref
    message.set_content(TEXT, charset="utf-8")
    return message


def unique(name: str = "borrower") -> str:
    """An address no other test sends to (greylisting is keyed by the recipient)."""
    return f"{name}.{uuid.uuid4().hex[:8]}@Example.COM"


def sends_to(journal_dir: Path, to: str) -> list[SendRecorded]:
    return [send for send in read_journal(journal_dir).of(SendRecorded) if send.to == to.lower()]


def wait_for_sends(journal_dir: Path, to: str, count: int = 1) -> list[SendRecorded]:
    return wait_until(lambda: (lambda found: found if len(found) >= count else None)(
        sends_to(journal_dir, to)), f"{count} send(s) to {to}")


def calls_since(journal_dir: Path, t: float) -> list[VendorCall]:
    return [call for call in read_journal(journal_dir).of(VendorCall)
            if call.vendor == "email" and call.t >= t]


def touches(journal_dir: Path, switch: str) -> list[FaultTouched]:
    return [touch for touch in read_journal(journal_dir).of(FaultTouched)
            if touch.mock == "email" and touch.switch == switch]


def test_endpoint_names_the_server_its_account_and_sender(mail: ChannelEndpoint) -> None:
    assert mail.kind == "email"
    assert mail.url.startswith("smtp://127.0.0.1:")
    assert set(mail.credentials) == {"username", "password"}
    assert len(mail.credentials["password"]) >= 20
    assert mail.values == {"from": "reminders@bank.example"}
    assert mail.control_url.endswith("/__notifychaos/faults")


def test_message_is_recorded_once_decoded(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to, ref = unique(), uuid.uuid4().hex[:8]
    began = time.time()
    with smtp(mail) as client:
        refused = client.send_message(reminder(mail, to, ref=ref))
        assert refused == {}
    [send] = wait_for_sends(journal_dir, to)
    assert send.channel == "email" and send.vendor == "email"
    assert send.to == to.lower()
    assert send.body == f"{SUBJECT}\n\n{TEXT}"
    assert send.client_ref == ref
    assert send.handset == "delivered" and send.inbox_at is not None
    [full] = [s for s in read_journal(journal_dir).of(SendRecorded)
              if s.message_id == send.message_id]
    assert full.request["mail_from"] == "reminders@bank.example"
    assert full.request["rcpt_to"] == [to]
    assert full.request["headers"]["X-Reminder-Ref"] == ref
    assert "X-Reminder-Ref: " + ref in full.request["message"]
    [call] = [c for c in calls_since(journal_dir, began) if c.outcome == "accepted"]
    assert call.status == 250


def test_no_credential_is_ever_journaled(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    message = reminder(mail, to)
    message.set_content(f"{TEXT}\n{mail.credentials['password']}", charset="utf-8")
    with smtp(mail) as client:
        client.send_message(message)
    wait_for_sends(journal_dir, to)
    journal = (journal_dir / "mocks.jsonl").read_text(encoding="utf-8")
    assert mail.credentials["password"] not in journal
    [send] = sends_to(journal_dir, to)
    assert send.body == f"{SUBJECT}\n\n{TEXT}\n***"


def test_login_mechanism_works_too(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    with smtp(mail, login=False) as client:
        client.ehlo()
        client.user, client.password = mail.credentials["username"], mail.credentials["password"]
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235
        client.sendmail(mail.values["from"], [to], reminder(mail, to).as_bytes())
    wait_for_sends(journal_dir, to)


def test_each_recipient_is_a_send_the_first_carrying_the_request(
        mail: ChannelEndpoint, journal_dir: Path) -> None:
    first, second = unique("first"), unique("second")
    with smtp(mail) as client:
        client.send_message(reminder(mail, first, second))
    [one] = wait_for_sends(journal_dir, first)
    [two] = wait_for_sends(journal_dir, second)
    queue, _ = one.message_id.split(".")
    assert (one.message_id, two.message_id) == (f"{queue}.1", f"{queue}.2")
    events = {s.message_id: s for s in read_journal(journal_dir).of(SendRecorded)}
    assert events[one.message_id].request and events[one.message_id].request_of is None
    assert events[two.message_id].request == {}
    assert events[two.message_id].request_of == one.message_id


def test_html_only_message_keeps_its_text(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    message = reminder(mail, to)
    message.set_content("<html><head><style>p {color: red}</style></head><body><p>应还 "
                        "<b>5,230.00</b> 元</p><p>退订&nbsp;回复TD</p></body></html>",
                        subtype="html", charset="utf-8")
    with smtp(mail) as client:
        client.send_message(message)
    [send] = wait_for_sends(journal_dir, to)
    assert send.body == f"{SUBJECT}\n\n应还 5,230.00 元\n退订 回复TD"


def test_wrong_password_is_535(mail: ChannelEndpoint, journal_dir: Path) -> None:
    began = time.time()
    with smtp(mail, login=False) as client, pytest.raises(smtplib.SMTPAuthenticationError) as err:
        client.login(mail.credentials["username"], "not-the-password")
    assert err.value.smtp_code == 535
    assert b"5.7.8" in err.value.smtp_error
    # smtplib tries each mechanism offered (PLAIN, then LOGIN): each attempt is a call.
    assert [(c.status, c.outcome) for c in calls_since(journal_dir, began)] == [
        (535, "rejected"), (535, "rejected")]


def test_mail_needs_auth_and_the_banks_sender(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    began = time.time()
    with smtp(mail, login=False) as client, pytest.raises(smtplib.SMTPSenderRefused) as err:
        client.sendmail(mail.values["from"], [to], b"Subject: x\r\n\r\nx\r\n")
    assert err.value.smtp_code == 530
    with smtp(mail) as client, pytest.raises(smtplib.SMTPSenderRefused) as err:
        client.sendmail("someone@else.example", [to], b"Subject: x\r\n\r\nx\r\n")
    assert err.value.smtp_code == 553
    assert [(c.status, c.outcome) for c in calls_since(journal_dir, began)] == [
        (530, "rejected"), (553, "rejected")]
    assert sends_to(journal_dir, to) == []


def test_greylisting_refuses_until_retry_after(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    retry_after = 4.0
    with faults(mail, greylist=retry_after):
        began = time.time()
        first_try = time.monotonic()
        with smtp(mail) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as err:
            client.send_message(reminder(mail, to))
        assert err.value.recipients == {to: (451, b"4.7.1 Greylisted, try again later")}
        with smtp(mail) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(reminder(mail, to))  # too soon
        assert time.monotonic() - first_try < retry_after  # the retry above was early
        assert sends_to(journal_dir, to) == []

        def retry() -> bool:
            with smtp(mail) as client:
                try:
                    client.send_message(reminder(mail, to))
                except smtplib.SMTPRecipientsRefused:
                    return False
            return True

        wait_until(retry, "a retry through greylisting", timeout=retry_after + 10)
        assert time.monotonic() - first_try >= retry_after
        # Once through, the triple stays through.
        with smtp(mail) as client:
            assert client.send_message(reminder(mail, to)) == {}
    assert len(wait_for_sends(journal_dir, to, 2)) == 2
    calls = [(c.status, c.outcome) for c in calls_since(journal_dir, began)]
    assert calls[:2] == [(451, "refused")] * 2
    assert calls[-2:] == [(250, "accepted")] * 2
    assert set(calls) == {(451, "refused"), (250, "accepted")}
    greylisted = [t for t in touches(journal_dir, "greylist") if t.detail["to"] == to.lower()]
    assert len(greylisted) >= 2 and greylisted[0].detail["retry_in"] == pytest.approx(
        retry_after, abs=0.5)


def test_greylisting_refuses_only_the_new_triples(mail: ChannelEndpoint,
                                                  journal_dir: Path) -> None:
    known, new = unique("known"), unique("new")
    with faults(mail, greylist=60), smtp(mail) as client, pytest.raises(
            smtplib.SMTPRecipientsRefused):
        client.send_message(reminder(mail, known))
    # A triple through once is through for good, whatever greylisting comes later.
    with faults(mail, greylist=0.001):
        time.sleep(0.01)
        with smtp(mail) as client:
            assert client.send_message(reminder(mail, known)) == {}
    with faults(mail, greylist=60), smtp(mail) as client:
        refused = client.send_message(reminder(mail, known, new))
        assert refused == {new: (451, b"4.7.1 Greylisted, try again later")}
    [partial] = wait_for_sends(journal_dir, known, 2)[1:]
    assert partial.message_id.endswith(".1")
    assert sends_to(journal_dir, new) == []


def test_reject_refuses_the_message_at_end_of_data(mail: ChannelEndpoint,
                                                   journal_dir: Path) -> None:
    to = unique()
    with faults(mail, reject=554), smtp(mail) as client:
        began = time.time()
        with pytest.raises(smtplib.SMTPDataError) as err:
            client.send_message(reminder(mail, to))
        assert (err.value.smtp_code, err.value.smtp_error) == (
            554, b"5.7.1 Message rejected by policy")
        client.rset()
    assert sends_to(journal_dir, to) == []
    assert [(c.status, c.outcome) for c in calls_since(journal_dir, began)] == [
        (554, "refused")]
    assert [t.detail for t in touches(journal_dir, "reject") if t.t >= began] == [
        {"to": [to.lower()], "status": 554}]


def test_data_delay_holds_the_reply(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    with faults(mail, data_delay=1.0), smtp(mail) as client:
        began = time.monotonic()
        client.send_message(reminder(mail, to))
        assert time.monotonic() - began >= 1.0
    [send] = wait_for_sends(journal_dir, to)
    [touch] = [t for t in touches(journal_dir, "data_delay") if t.subject == send.message_id]
    assert touch.detail == {"to": to.lower(), "seconds": 1.0}
    [call] = [c for c in read_journal(journal_dir).of(VendorCall) if c.t >= send.t]
    assert call.outcome == "accepted" and call.latency >= 1.0


def test_a_client_that_gives_up_during_the_delay_sent_nothing(
        mail: ChannelEndpoint, journal_dir: Path) -> None:
    to, after = unique("gave-up"), unique("after")
    with faults(mail, data_delay=1.0), smtp(mail) as client:
        client.mail(mail.values["from"])
        client.rcpt(to)
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(reminder(mail, to).as_bytes().replace(b"\n", b"\r\n") + b"\r\n.\r\n")
        # The server holds its reply: the client gives up (an SDK's timeout would).
        [touch] = wait_until(lambda: [t for t in touches(journal_dir, "data_delay")
                                      if t.detail["to"] == to.lower()], "the delay to start")
        client.close()
    # Well after the delay would have ended, a later message is through: the first never was.
    while time.time() < touch.t + 2.0:
        time.sleep(0.1)
    with smtp(mail) as client:
        client.send_message(reminder(mail, after))
    wait_for_sends(journal_dir, after)
    assert sends_to(journal_dir, to) == []


def test_drop_after_data_records_then_closes_with_no_reply(
        mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    with faults(mail, drop_after_data=1.0):
        began = time.time()
        with smtp(mail) as client, pytest.raises(smtplib.SMTPServerDisconnected):
            client.send_message(reminder(mail, to))
        with smtp(mail) as client, pytest.raises(smtplib.SMTPServerDisconnected):
            client.send_message(reminder(mail, to))  # the client's retry: lost again
    first, second = wait_for_sends(journal_dir, to, 2)
    assert first.body == second.body and first.message_id != second.message_id
    assert [(c.status, c.outcome) for c in calls_since(journal_dir, began)] == [
        (None, "lost"), (None, "lost")]
    assert {t.subject for t in touches(journal_dir, "drop_after_data")} >= {
        first.message_id, second.message_id}


def test_drop_after_data_is_a_keyed_draw(mail: ChannelEndpoint, journal_dir: Path) -> None:
    # Addresses of this test's own, fixed: the draws, from the fixed seed, are too.
    recipients = [f"draw.{n}@example.com" for n in range(16)]
    with faults(mail, drop_after_data=0.5):
        lost = set()
        for to in recipients:
            with smtp(mail) as client:
                try:
                    client.send_message(reminder(mail, to))
                except smtplib.SMTPServerDisconnected:
                    lost.add(to)
    for to in recipients:
        wait_for_sends(journal_dir, to)  # every message recorded, its reply lost or not
    assert 0 < len(lost) < len(recipients)
    dropped = {t.detail["to"] for t in touches(journal_dir, "drop_after_data")}
    assert {to.lower() for to in lost} == dropped & {to.lower() for to in recipients}


def test_fault_switches_are_journaled(mail: ChannelEndpoint, journal_dir: Path) -> None:
    began = time.time()
    with faults(mail, reject=550, data_delay=0.5):
        pass
    changes = [e.faults for e in read_journal(journal_dir).of(MockFaultsChanged)
               if e.mock == "email" and e.t >= began]
    assert changes == [{"reject": 550, "data_delay": 0.5}, {}]


def test_control_api_needs_the_runs_token(mail: ChannelEndpoint, journal_dir: Path) -> None:
    to = unique()
    with smtp(mail) as client:
        client.send_message(reminder(mail, to))
    wait_for_sends(journal_dir, to)
    with httpx.Client(timeout=5) as client:
        assert client.get(mail.control_url).status_code == 401
        assert client.put(mail.control_url, json={"reject": 554}).status_code == 401
        wrong = client.get(mail.control_url, headers={"X-Notifychaos-Token": "wrong"})
        assert wrong.status_code == 401
        good = client.get(mail.control_url, headers=CONTROL)
        assert good.status_code == 200 and good.json()["reject"] is None
        bad = client.put(mail.control_url, json={"reject": 451}, headers=CONTROL)
        assert bad.status_code == 400
        sends = mail.control_url.replace("/faults", "/sends")
        assert client.get(sends).status_code == 401
        listing = client.get(sends, headers=CONTROL).json()
        assert listing["vendor"] == "email"
        assert to.lower() in {send["to"] for send in listing["sends"]}
        assert {send["channel"] for send in listing["sends"]} == {"email"}


def _exchange(address: tuple[str, int], lines: list[bytes]) -> bytes:
    """Send raw `lines` after the greeting, QUIT, and return everything the server said."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"".join(lines) + b"QUIT\r\n")
        said = b""
        while chunk := sock.recv(65536):
            said += chunk
        return said


def test_junk_gets_smtp_errors_and_the_server_goes_on(mail: ChannelEndpoint,
                                                      journal_dir: Path) -> None:
    said = _exchange(_address(mail), [
        b"\x00\xff\xfe garbage\r\n", "你好\r\n".encode(), b"MAIL FROM:<nobody>\r\n",
        b"EHLO x\r\n", b"MAIL FROM:<reminders@bank.example>\r\n",
        b"AUTH PLAIN !!notbase64\r\n", b"AUTH FOO\r\n", b"RCPT TO:<a@b>\r\n",
        b"DATA\r\n", b"A" * 5000 + b"\r\n", b"XCANARY -1 x\r\n", b"NOOP\r\n"])
    replies = [line[:3] for line in said.split(b"\r\n") if line[3:4] == b" "]
    assert replies[0] == b"220" and replies[-1] == b"221"
    assert all(code[:1] in b"245" for code in replies)
    assert b"500" in replies and b"501" in replies and b"530" in replies
    to = unique()
    with smtp(mail) as client:
        client.send_message(reminder(mail, to))
    wait_for_sends(journal_dir, to)


def test_canary_command_answers_the_bytes_asked(mail: ChannelEndpoint) -> None:
    said = _exchange(_address(mail), [f"{CANARY_COMMAND} 5000 3000\r\n".encode(), b"." * 3000])
    lines = said.split(b"\r\n")
    assert lines[0].startswith(b"220 ")
    canary = [line for line in lines[1:] if line.startswith(b"250")]
    assert sum(len(line) - 4 for line in canary) == 5000
    assert canary[-1][3:4] == b" " and lines[-2].startswith(b"221 ")


@contextlib.asynccontextmanager
async def in_process(directory: Path) -> AsyncIterator[ChannelServer]:
    """The mail server started on this loop (as the mock process does), closed after."""
    runners: list[web.AppRunner] = []

    async def serve_http(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    journal = JournalWriter(directory, "mocks")
    deps = ChannelDeps(journal=journal, record=SendRecord(journal),
                       bank=Bank(Population(), Changes(), lead=5, window=20, seed=1),
                       handsets=Handsets(HandsetConfig(), 1), seed=1, serve_http=serve_http,
                       run_dir=directory)
    server = await start(deps)
    try:
        yield server
    finally:
        await server.close()
        for runner in runners:
            await runner.cleanup()
        journal.close()


def test_close_drops_connections_within_the_grace(tmp_path: Path) -> None:
    async def scenario() -> float:
        async with in_process(tmp_path) as server:
            reader, writer = await asyncio.open_connection(*_address(server.endpoint))
            assert (await reader.readline()).startswith(b"220 ")
            writer.write(b"EHLO test\r\nMAIL FROM:<x@y>\r\n")  # a session mid-conversation
            await writer.drain()
            began = time.monotonic()
            await server.close()
            took = time.monotonic() - began
            with contextlib.suppress(ConnectionResetError):  # dropped with our MAIL unread
                await asyncio.wait_for(reader.read(), 2.0)  # what was said, then the end
            writer.close()
            return took

    assert asyncio.run(scenario()) < 2.0


def test_idle_connections_are_dropped_but_not_while_a_reply_is_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mocks.smtp.IDLE_TIMEOUT", 0.5)

    async def scenario() -> None:
        async with in_process(tmp_path) as server:
            began = time.monotonic()  # the server's idle deadline starts once connected
            reader, writer = await asyncio.open_connection(*_address(server.endpoint))
            assert (await reader.readline()).startswith(b"220 ")
            assert await asyncio.wait_for(reader.read(), 10.0) == b""  # closed by the server
            assert time.monotonic() - began >= 0.5
            writer.close()
            # A reply held back longer than the idle timeout still comes.
            async with httpx.AsyncClient(timeout=5) as client:
                switched = await client.put(server.endpoint.control_url,
                                            json={"data_delay": 1.0})
                switched.raise_for_status()
            endpoint, to = server.endpoint, unique()
            await asyncio.to_thread(_send, endpoint, to)
        [send] = sends_to(tmp_path, to)
        assert send.to == to.lower()

    asyncio.run(scenario())


def _send(endpoint: ChannelEndpoint, to: str) -> None:
    with smtp(endpoint) as client:
        client.send_message(reminder(endpoint, to))


def test_the_canary_command_is_the_one_the_mail_server_answers() -> None:
    assert hasattr(_Connection, f"smtp_{CANARY_COMMAND}")
