"""Mail server mock (SMTP, aiosmtpd): records every message it accepts; greylisting, rejection,
a slow reply to DATA and the reply lost after DATA are its faults.

It is the bank's submission server: AUTH (PLAIN or LOGIN, in plain text on loopback) with the
run's credentials, then MAIL FROM the bank's sender address (`values["from"]`), any number of
recipients, DATA. Each accepted message is recorded once per recipient (a `SendRecorded` of
channel `email`: `to` the address lower-cased, `body` the subject, a blank line and the plain
text), and answered `250 2.0.0 Ok: queued as <queue id>`; its sends' message ids are
`<queue id>.<n>`, n counting its recipients from 1.

Each mail transaction (MAIL to the reply to the end of DATA, or to its abandonment) is journaled
as one `VendorCall` (vendor `email`, status the reply code that ended it):
- `accepted`: the message was recorded (and answered 250, unless a fault delays that reply);
- `refused`: a fault refused it (greylisting refused its recipients, or `reject`);
- `rejected`: the client's own fault: a failed AUTH (535, a call of its own), MAIL before AUTH
  (530) or from another sender (553), a malformed recipient, a message too large; a
  transaction the client abandons with nothing refused is no call;
- `lost`: recorded, then the connection closed with no reply (`drop_after_data`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import string
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any, AnyStr, Literal

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from harness.journal import FaultTouched, MockFaultsChanged, VendorCall
from mocks.channels import ChannelDeps, ChannelServer
from mocks.control import CANARY_MAX_BYTES, MailFaults, fault_routes
from mocks.deadlines import IDLE_TIMEOUT, STOP_GRACE
from mocks.draws import Attempts, draw
from mocks.manifest import ChannelEndpoint
from mocks.paths import CANARY_COMMAND
from mocks.sends import MASK, Secrets

CREDENTIAL_KEYS = ("username", "password")
VALUES = ("from",)

NAME = "email"
"""The mock's name in the journal (vendor, mock) and its channel."""

SENDER = "reminders@bank.example"
"""The address the bank sends reminders from: the only one its account may send as."""

HOSTNAME = "mail.bank.example"

MAX_MESSAGE = 2 * 1024 * 1024
"""Bytes of one message (a reminder is a few kilobytes, with HTML tens)."""

GREYLISTED = "451 4.7.1 Greylisted, try again later"

# aiosmtpd logs every command line at INFO, AUTH's credentials included.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """A fresh SMTP account, unpredictable (`rng` is a SystemRandom)."""
    return {"username": "notifier-" + "".join(rng.choices(string.ascii_lowercase, k=8)),
            "password": "".join(rng.choices(string.ascii_letters + string.digits, k=24))}


@dataclass
class _Transaction:
    """One mail transaction of a connection, from its MAIL command."""

    began: float
    refused: int | None = None
    """The reply code of the latest refusal by a fault (of a recipient, or of the message)."""
    by_fault: bool = False
    """The reply being sent is a fault's refusal."""
    rejected: int | None = None
    """The first refusal, for the client's own fault, of one of its commands."""
    data: bool = False
    """Its DATA was accepted (354): the reply to the end of DATA ends it."""
    accepted: bool = False


class _Text(HTMLParser):
    """The text of an HTML part, a line per block, without scripts and styles."""

    _BLOCKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(self._hidden - 1, 0)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _strip_tags(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _text(message: EmailMessage) -> str:
    """The message's text: its text/plain part decoded, else its HTML part's text."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset, a broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = _strip_tags(content)
    return content.replace("\r\n", "\n").rstrip()


def _clean(text: str) -> str:
    """`text` as the journal can hold it: the parser keeps a header's undeclared 8-bit bytes
    as surrogates; read as UTF-8 they are what the client meant (anything else: U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def body_of(message: EmailMessage) -> str:
    """What the record keeps of a message: its decoded subject, a blank line, its text."""
    return _clean(f"{message.get('subject', '')}\n\n{_text(message)}")


def _same(given: bytes, expected: str) -> bool:
    return hmac.compare_digest(given, expected.encode("utf-8"))


class _Connection(SMTP):
    """One client connection: aiosmtpd's protocol, with the bookkeeping of its transactions
    and the harness's canary command.

    Every reply passes through `push`, which knows the command it answers: a call is journaled
    there, before its reply leaves (a client that has its reply finds the call journaled)."""

    def __init__(self, mail: MailServer) -> None:
        super().__init__(mail, hostname=HOSTNAME, ident="ESMTP notifychaos mail mock",
                         timeout=IDLE_TIMEOUT, data_size_limit=MAX_MESSAGE,
                         enable_SMTPUTF8=True, auth_require_tls=False,
                         authenticator=mail.authenticate, loop=asyncio.get_running_loop())
        self.mail = mail
        self.client = ""
        self.transaction: _Transaction | None = None
        self._command = ""
        self._began = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if peer else ""
        self.mail.connections.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.mail.connections.discard(self)
        self.abandon()
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        head = status[:3]
        text = head.decode("ascii", "replace") if isinstance(head, bytes) else head
        if text.isdigit():
            self._note(int(text))
        # The journal commits in groups: what this reply tells of goes to the file first.
        self.mail.deps.journal.commit()
        await super().push(status)

    def _note(self, code: int) -> None:
        """Bookkeeping of reply `code` to the command in progress."""
        command, transaction = self._command, self.transaction
        if command == "AUTH" and code == 535:
            self.mail.call(code, "rejected", self._began)
            return
        if transaction is None:
            if command == "MAIL" and code == 250:
                self.transaction = _Transaction(self._began)
            elif command == "MAIL":
                self.mail.call(code, "rejected", self._began)
            return
        if command == "RCPT" and code >= 400 and not transaction.by_fault:
            transaction.rejected = transaction.rejected or code
        elif command == "DATA" and code == 354:
            transaction.data = True
        elif command == "DATA" and transaction.data:  # the reply to the end of DATA
            self.transaction = None
            self.mail.call(code, "accepted" if transaction.accepted else "refused"
                           if transaction.by_fault else "rejected", transaction.began)
        transaction.by_fault = False

    async def _run(self, command: str, run: Awaitable[None]) -> None:
        self._command, self._began = command, time.monotonic()
        try:
            await run
        finally:
            self._command = ""

    def refuse(self, code: int) -> None:
        """The reply about to be sent (`code`) is a fault's refusal."""
        assert self.transaction is not None  # faults act on RCPT and DATA, after MAIL
        self.transaction.refused, self.transaction.by_fault = code, True

    def hold(self, seconds: float) -> None:
        """Keep the connection from idling out while a reply is held back `seconds`."""
        self._reset_timeout(IDLE_TIMEOUT + seconds)

    def lose(self) -> None:
        """End the transaction as lost: close the connection, never reply."""
        if self.transaction is not None:
            self.mail.call(None, "lost", self.transaction.began)
            self.transaction = None
        self.mail.deps.journal.commit()  # what was recorded is in the file before the cut
        if self.transport is not None:
            self.transport.close()

    def abandon(self) -> None:
        """The client ended the transaction before the end of DATA (RSET, HELO, QUIT, a
        closed connection): a call only if something was refused, and its message never came
        (a client that hangs up while its reply is held back has had no answer)."""
        transaction, self.transaction = self.transaction, None
        if transaction is None or transaction.data:
            return
        if transaction.refused is not None:
            self.mail.call(transaction.refused, "refused", transaction.began)
        elif transaction.rejected is not None:
            self.mail.call(transaction.rejected, "rejected", transaction.began)

    async def smtp_AUTH(self, arg: str) -> None:
        await self._run("AUTH", super().smtp_AUTH(arg))

    async def smtp_MAIL(self, arg: str | None) -> None:
        await self._run("MAIL", super().smtp_MAIL(arg))

    async def smtp_RCPT(self, arg: str | None) -> None:
        await self._run("RCPT", super().smtp_RCPT(arg))

    async def smtp_DATA(self, arg: str) -> None:
        await self._run("DATA", super().smtp_DATA(arg))

    # Each of these ends the transaction, unless it is refused for its syntax (aiosmtpd then
    # keeps the transaction going).
    async def smtp_RSET(self, arg: str) -> None:
        if not arg:
            self.abandon()
        await super().smtp_RSET(arg)

    async def smtp_HELO(self, hostname: str) -> None:
        if hostname:
            self.abandon()
        await super().smtp_HELO(hostname)

    async def smtp_EHLO(self, hostname: str) -> None:
        if hostname:
            self.abandon()
        await super().smtp_EHLO(hostname)

    async def smtp_QUIT(self, arg: str) -> None:
        if not arg:
            self.abandon()
        await super().smtp_QUIT(arg)

    # aiosmtpd answers a verb with the method named after it: CANARY_COMMAND's.
    async def smtp_XCANARY(self, arg: str | None) -> None:
        """`XCANARY <bytes> <upload>`: the harness's canary (CANARY_PATH on the HTTP mocks),
        open to anyone: reads `upload` bytes sent after the command line, then answers a
        multi-line 250 reply of about `bytes` bytes in one write."""
        sizes = (arg or "").split()
        if (len(sizes) != 2 or not all(size.isascii() and size.isdigit() and len(size) <= 9
                                       for size in sizes)
                or max(map(int, sizes)) > CANARY_MAX_BYTES):
            await self.push(f"501 Syntax: {CANARY_COMMAND} <bytes> <upload bytes>, each 0 to "
                            f"{CANARY_MAX_BYTES}")
            return
        ask, upload = map(int, sizes)
        while upload > 0:
            chunk = await self._reader.read(min(upload, 65536))
            if not chunk:
                return
            upload -= len(chunk)
        dots = "." * ask
        lines = [dots[start:start + 990] for start in range(0, ask, 990)] or ["OK"]
        await self.push("\r\n".join(f"250-{line}" for line in lines[:-1])
                        + ("\r\n" if len(lines) > 1 else "") + f"250 {lines[-1]}")


def _connection(server: SMTP) -> _Connection:
    assert isinstance(server, _Connection)
    return server


class MailServer:
    """The mail server's state shared by its connections: account, faults, greylist, record.

    It is the aiosmtpd handler: its `handle_*` hooks decide each MAIL, RCPT and DATA."""

    def __init__(self, deps: ChannelDeps, credentials: dict[str, str]) -> None:
        self.deps = deps
        self.credentials = credentials
        self.faults = MailFaults()
        self.connections: set[_Connection] = set()
        # Masked wherever a client puts it (the journal is readable by whoever reads the run
        # folder); AUTH itself is never journaled.
        self._secrets = Secrets.of(credentials, {"password"})
        self._rng = random.Random(f"{deps.seed}:{NAME}")  # queue ids only; fates are keyed
        self._sends = Attempts()  # (to, body) -> attempt number
        self._first_tries: dict[tuple[str, str, str], float] = {}
        self._passed: set[tuple[str, str, str]] = set()

    def switch(self, faults: MailFaults) -> None:
        """Put `faults` in force now, and journal when they took effect."""
        self.faults = faults
        self.deps.journal.write(MockFaultsChanged(
            mock=NAME, faults=faults.model_dump(mode="json", exclude_defaults=True)))

    def touched(self, switch: str, subject: str = "", **detail: Any) -> None:
        """Journal that fault switch `switch` acted on `subject` (a send's message id; empty
        for a refused recipient or message, named in `detail`)."""
        self.deps.journal.write(FaultTouched(mock=NAME, switch=switch, subject=subject,
                                             detail=detail))

    def call(self, status: int | None,
             outcome: Literal["accepted", "rejected", "refused", "lost"], began: float) -> None:
        """Journal one transaction (or failed AUTH) that began at `began` (monotonic)."""
        self.deps.journal.write(VendorCall(vendor=NAME, status=status, outcome=outcome,
                                           latency=time.monotonic() - began))

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, auth_data: Any) -> AuthResult:
        """aiosmtpd's authenticator: the run's account, whichever mechanism carried it."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # Both compared, in constant time: neither tells which was wrong.
        matches = (_same(auth_data.login, self.credentials["username"])
                   & _same(auth_data.password, self.credentials["password"]))
        return AuthResult(success=matches, handled=False)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        if address.lower() != SENDER:
            return f"553 5.7.1 <{address}>: Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        connection = _connection(server)
        to = address.lower()
        wait = self._greylisted(connection.client, str(envelope.mail_from).lower(), to)
        if wait > 0:
            connection.refuse(int(GREYLISTED[:3]))
            self.touched("greylist", to=to, client=connection.client,
                         retry_in=round(wait, 3))
            return GREYLISTED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    def _greylisted(self, client: str, sender: str, recipient: str) -> float:
        """Seconds until the triple's retries pass greylisting (0: they pass now). A triple's
        first attempt while greylisting is on starts its wait; the wait is over for good."""
        seconds, triple = self.faults.greylist, (client, sender, recipient)
        if not seconds or triple in self._passed:
            return 0.0
        now = time.monotonic()
        wait = self._first_tries.setdefault(triple, now) + seconds - now
        if wait <= 0:
            self._passed.add(triple)
        return max(wait, 0.0)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        connection = _connection(server)
        transaction = connection.transaction
        assert transaction is not None  # DATA comes after MAIL
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)  # policy.default makes EmailMessages
        recipients = [address.lower() for address in envelope.rcpt_tos]
        queue = "".join(self._rng.choices("0123456789ABCDEF", k=10))
        ids = [f"{queue}.{n}" for n in range(1, len(recipients) + 1)]
        faults = self.faults
        if faults.data_delay:
            for message_id, to in zip(ids, recipients, strict=True):
                self.touched("data_delay", message_id, to=to, seconds=faults.data_delay)
            connection.hold(faults.data_delay)
            await asyncio.sleep(faults.data_delay)
            faults = self.faults  # as in force once the delay is over
        if faults.reject is not None:
            connection.refuse(faults.reject)
            self.touched("reject", to=recipients, status=faults.reject)
            return f"{faults.reject} 5.7.1 Message rejected by policy"
        body = body_of(message)
        if self._secrets.pattern is not None:
            body = self._secrets.pattern.sub(MASK, body)
        ref = message.get("x-reminder-ref")
        request = self._secrets.mask({
            "mail_from": str(envelope.mail_from), "rcpt_to": list(envelope.rcpt_tos),
            "headers": {name: _clean(str(value)) for name, value in message.raw_items()},
            "message": raw.decode("utf-8", "replace")})
        key: list[object] = []
        for n, (message_id, to) in enumerate(zip(ids, recipients, strict=True)):
            key += [to, body, self._sends.next((to, body))]
            self.deps.record.add(channel="email", vendor=NAME, message_id=message_id, to=to,
                                 body=body, client_ref=_clean(str(ref)).strip() if ref else None,
                                 request=request, request_of=ids[0] if n else None)
        transaction.accepted = True
        if draw(self.deps.seed, NAME, "drop_after_data", *key) < faults.drop_after_data:
            for message_id, to in zip(ids, recipients, strict=True):
                self.touched("drop_after_data", message_id, to=to)
            connection.lose()
            # The message is recorded; the client sees the connection close with no reply,
            # which is what makes clients send it again.
            raise asyncio.CancelledError
        return f"250 2.0.0 Ok: queued as {queue}"


@dataclass
class MailChannel:
    """The started mail server: its endpoint, and how to stop it."""

    endpoint: ChannelEndpoint
    _server: asyncio.Server
    _mail: MailServer

    async def close(self) -> None:
        """Stop listening and drop every connection (a reply held back by a fault is never
        sent, and its message never recorded); done within STOP_GRACE."""
        self._server.close()
        for connection in list(self._mail.connections):
            connection.abandon()  # now, while the journal is open
            if connection.transport is not None:
                connection.transport.close()
        deadline = time.monotonic() + STOP_GRACE
        while self._mail.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # their connection_lost comes on the loop's next turns
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), deadline - time.monotonic())


async def start(deps: ChannelDeps) -> ChannelServer:
    """Serve the mail server on a loopback port, and its control API (faults; the record of
    its sends at `/__notifychaos/sends`)."""
    mail = MailServer(deps, issue_credentials(random.SystemRandom()))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(mail), "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    app = web.Application()
    app.router.add_routes([*fault_routes(MailFaults, lambda: mail.faults, mail.switch),
                           *deps.record.routes(NAME)])
    control = await deps.serve_http(app)
    endpoint = ChannelEndpoint(kind="email", url=f"smtp://{host}:{port}",
                               credentials=mail.credentials,
                               control_url=f"{control}/__notifychaos/faults",
                               values={"from": SENDER})
    return MailChannel(endpoint, server, mail)
