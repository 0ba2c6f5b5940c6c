"""Helpers for the reference notifier's tests: fake ledger, vendors and alert sink on loopback,
and the notifier run against them as real processes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jwt
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.processes import free_port

ROOT = Path(__file__).resolve().parents[2]

TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "twilio-test-token"
TWILIO_FROM = "+15005550006"
ALIYUN_KEY_ID = "LTAI-test-key"
ALIYUN_SECRET = "aliyun-test-secret"
ALIYUN_SIGN = "示例银行"
ALIYUN_TEMPLATE = "SMS_000001"
PUSH_PROJECT = "demo-bank-app"
SMTP_USERNAME = "reminders"
SMTP_PASSWORD = "smtp-test-password"
MAIL_FROM = "reminders@bank.example"
# google-auth signs its assertion for Google's token URI whatever the key file's token_uri.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def async_test(
    test: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def eventually(check: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


CHINA = timezone(timedelta(hours=8))


def stamp(epoch: float) -> str:
    """An RFC 3339 time in the bank's zone with milliseconds, as the ledger writes it."""
    return datetime.fromtimestamp(epoch, CHINA).isoformat(timespec="milliseconds")


def phone(n: int) -> str:
    return f"+86139{n:08d}"


def email(n: int) -> str:
    return f"borrower{n}@example.com"


def device_token(n: int) -> str:
    return f"fcm-token-{n:06d}"


def national_id(n: int) -> str:
    return f"110105194912{n:05d}X"


def card(n: int) -> str:
    """Borrower `n`'s repayment card number: ends in `n`'s last four digits."""
    return f"6222{n:012d}"


def record(n: int, *, lead: float = 0.0, borrower: int | None = None) -> dict[str, Any]:
    """Version 1 of reminder `n` (borrower `n` unless said), due `lead` seconds from now."""
    owner = n if borrower is None else borrower
    remind_at = time.time() + lead
    return {
        "reminder_id": f"rem-{n:06d}",
        "ref": f"REF{n:05d}",
        "version": 1,
        "status": "scheduled",
        "loan_id": f"ML-{owner:06d}",
        "borrower": {
            "borrower_id": f"B{owner:06d}",
            "name": "王秀英",
            "phone": phone(owner),
            "email": email(owner),
            "device_token": device_token(owner),
            "national_id": national_id(owner),
            "account": card(owner),
            "opted_out": False,
        },
        "installment": {
            "number": n,
            "amount": f"{5000 + n}.00",
            "currency": "CNY",
            "due_date": "2026-12-05",
        },
        "remind_at": stamp(remind_at),
        "send_by": stamp(remind_at + 20),
        "as_of": stamp(time.time()),
    }


_BORROWER_FIELDS = ("phone", "opted_out", "email", "device_token", "national_id", "account")
_INSTALLMENT_FIELDS = ("amount", "due_date")


def revise(entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `entry` with fields changed wherever they live in the record."""
    revised = copy.deepcopy(entry)
    for key, value in changes.items():
        if key in _BORROWER_FIELDS:
            revised["borrower"][key] = value
        elif key in _INSTALLMENT_FIELDS:
            revised["installment"][key] = value
        else:
            revised[key] = value
    return revised


def epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


def expected_aliyun_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Signature V1 written out from Alibaba's description, independent of the service's code."""
    canonical = urlencode(sorted(params.items()), quote_via=quote, safe="~")
    string_to_sign = method + "&%2F&" + quote(canonical, safe="~")
    mac = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


async def reply_stop(session: aiohttp.ClientSession, url: str, via: str, phone: str) -> None:
    """POST a borrower's STOP to the service the way vendor `via` forwards replies."""
    if via == "twilio":
        form = {
            "MessageSid": "SM" + "f" * 32,
            "AccountSid": TWILIO_SID,
            "From": phone,
            "To": TWILIO_FROM,
            "Body": " Stop ",
        }
        async with session.post(f"{url}/inbound/twilio", data=form) as response:
            assert response.status == 200
            assert response.content_type == "text/xml"
            assert (await response.text()).endswith("<Response/>")
        return
    sms_up = {
        "phone_number": phone.removeprefix("+86"),
        "content": "TD",
        "send_time": "2026-11-28 17:50:05",
        "sign_name": ALIYUN_SIGN,
        "dest_code": "",
        "sequence_id": 123456789,
    }
    async with session.post(f"{url}/inbound/aliyun", json=[sms_up]) as response:
        assert await response.json() == {"code": 0}


class FakeLedger:
    """The change feed (a replica) and the primary records (the truth), as contract §3."""

    def __init__(self, page_size: int = 2) -> None:
        self.feed: list[dict[str, Any]] = []
        self.truth: dict[str, dict[str, Any]] = {}
        self.page_size = page_size
        # A ledger that ignores the cursor re-serves every entry on every poll.
        self.ignore_cursor = False
        self.failures_left = 0
        self.primary_down = False
        self.primary_reads: list[str] = []

    def schedule(
        self,
        n: int,
        *,
        lead: float = 0.0,
        borrower: int | None = None,
        drift: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Schedule reminder `n`; `drift` distorts the feed's entry, not the truth."""
        entry = record(n, lead=lead, borrower=borrower)
        self.truth[entry["reminder_id"]] = entry
        self.feed.append(revise(entry, **drift) if drift else entry)
        return entry

    def change(self, reminder_id: str, *, in_feed: bool = True, **changes: Any) -> dict[str, Any]:
        """A new version at the source; `in_feed=False` for a replica that has not got it."""
        current = self.truth[reminder_id]
        entry = revise(current, version=current["version"] + 1, as_of=stamp(time.time()), **changes)
        self.truth[reminder_id] = entry
        if in_feed:
            self.feed.append(entry)
        return entry

    async def changes(self, request: web.Request) -> web.Response:
        if self.failures_left > 0:
            self.failures_left -= 1
            return web.json_response({"error": "injected"}, status=500)
        cursor = 0 if self.ignore_cursor else int(request.query.get("cursor", "0"))
        size = len(self.feed) if self.ignore_cursor else self.page_size
        page = self.feed[cursor : cursor + size]
        next_cursor = cursor + len(page)
        return web.json_response(
            {"changes": page, "next_cursor": next_cursor, "has_more": next_cursor < len(self.feed)}
        )

    async def primary(self, request: web.Request) -> web.Response:
        reminder_id = request.match_info["reminder_id"]
        self.primary_reads.append(reminder_id)
        if self.primary_down:
            return web.json_response({"error": "injected"}, status=503)
        entry = self.truth.get(reminder_id)
        if entry is None:
            return web.json_response({"error": "unknown reminder"}, status=404)
        return web.json_response(entry)


class FakeVendor:
    """Answers per a script of behaviours, then "ok" once it runs out.

    "error" fails at once; "hang" waits for `release`, then fails; "hold" waits, then accepts;
    "swallow" accepts, then waits and fails: the message goes out but the answer never comes.
    "refuse" refuses for good (Twilio 21606, Alibaba isv.SMS_TEMPLATE_ILLEGAL); Twilio's
    "filtered-early" accepts, but first posts the 30007 status callback of a carrier filter.
    Lookups find what was accepted, after failing `lookup_failures` times (a vendor that
    cannot say).
    """

    def __init__(self) -> None:
        self.script: list[str] = []
        self.once: dict[str, str] = {}
        """Behaviours for one request each, by the reminder's ref: concurrent sends arrive in
        no set order, so a script by arrival cannot say which send gets what."""
        self.always: str | None = None
        self.requests: list[dict[str, str]] = []
        self.arrivals: list[float] = []  # time.time() of each request, as `requests`
        self.accepted: list[dict[str, str]] = []
        self.release = asyncio.Event()
        self.lookups = 0
        self.lookup_failures = 0

    def lookup_fails(self) -> bool:
        """Count a lookup; whether this one fails."""
        self.lookups += 1
        if self.lookup_failures <= 0:
            return False
        self.lookup_failures -= 1
        return True

    def next_behaviour(self, ref: str = "") -> str:
        if self.always is not None:
            return self.always
        if ref in self.once:
            return self.once.pop(ref)
        return self.script.pop(0) if self.script else "ok"

    def refs(self) -> list[str]:
        return [message["ref"] for message in self.accepted]


class FakeTwilio(FakeVendor):
    async def messages(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        found = re.search(r"ref:([A-Za-z0-9]+)", form.get("Body", ""))
        form["ref"] = found.group(1) if found else ""
        self.requests.append(form)
        self.arrivals.append(time.time())
        auth = aiohttp.BasicAuth.decode(request.headers.get("Authorization", ""))
        if request.match_info["sid"] != TWILIO_SID or auth.password != TWILIO_TOKEN:
            return web.json_response({"code": 20003}, status=401)
        behaviour = self.next_behaviour(form["ref"])
        if behaviour == "swallow":
            self.accepted.append(form)
        if behaviour in ("hang", "hold", "swallow"):
            await self.release.wait()
        if behaviour == "refuse":  # the sender refused after a rule change: for good
            return web.json_response({"code": 21606, "message": "From not valid"}, status=400)
        if behaviour not in ("ok", "hold", "filtered-early"):
            return web.json_response({"code": 20500, "message": "injected"}, status=500)
        self.accepted.append(form)
        if behaviour == "filtered-early":  # the carrier's verdict overtakes Twilio's answer
            callback = {"MessageSid": self.sid(form), "MessageStatus": "undelivered",
                        "ErrorCode": "30007"}
            async with aiohttp.ClientSession() as session, session.post(
                form["StatusCallback"], data=callback, timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                assert response.status == 200
        return web.json_response({"sid": self.sid(form)}, status=201)

    def sid(self, form: dict[str, str]) -> str:
        return f"SM{self.accepted.index(form) + 1:032d}"

    async def list_messages(self, request: web.Request) -> web.Response:
        if self.lookup_fails():
            return web.json_response({"code": 20500, "message": "injected"}, status=500)
        to = request.query["To"]
        found = [m for m in reversed(self.accepted) if m["To"] == to]
        return web.json_response(
            {"messages": [{"sid": self.sid(m), "to": to, "body": m["Body"]} for m in found]}
        )


class FakeAliyun(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self.bad_signatures = 0

    async def rpc(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        signature = params.pop("Signature", "")
        if signature != expected_aliyun_signature(params, ALIYUN_SECRET) or await request.read():
            self.bad_signatures += 1
            return web.json_response({"Code": "SignatureDoesNotMatch"}, status=400)
        if params["Action"] == "QuerySendDetails":
            if self.lookup_fails():
                return web.json_response({"Code": "isp.SYSTEM_ERROR", "Message": "injected"})
            found = [m for m in self.accepted if m["PhoneNumbers"] == params["PhoneNumber"]]
            details = [{"OutId": m["OutId"], "SendStatus": 3} for m in found]
            return web.json_response(
                {"Code": "OK", "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}
            )
        params["ref"] = params.get("OutId", "")
        self.requests.append(params)
        self.arrivals.append(time.time())
        behaviour = self.next_behaviour(params["ref"])
        if behaviour == "swallow":
            self.accepted.append(params)
            await self.release.wait()
        if behaviour == "refuse":  # the template rejected after a rule change: for good
            return web.json_response({"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"})
        if behaviour != "ok":
            return web.json_response({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit"})
        self.accepted.append(params)
        return web.json_response({"Code": "OK", "BizId": f"biz-{len(self.accepted)}"})


def _fcm_error(status: int, google_status: str, error_code: str) -> web.Response:
    """An error as FCM HTTP v1 answers it."""
    fcm_error = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
    detail = {"@type": fcm_error, "errorCode": error_code}
    body = {"error": {"code": status, "message": error_code, "status": google_status,
                      "details": [detail]}}
    return web.json_response(body, status=status)


_FCM_ERRORS = {
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED"),
    "unavailable": (503, "UNAVAILABLE", "UNAVAILABLE"),
    "quota": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
}


class FakeFCM:
    """FCM HTTP v1 and its OAuth2 token endpoint: the service account's signed JWT is checked
    with its public key, and `messages:send` wants the token it gave. Behaviours as FakeVendor,
    by device token ("unregistered", "unavailable", "quota", and "hang": no answer until
    `release`, then taken)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.url = ""
        self.tokens_issued = 0
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.once: dict[str, list[str]] = {}
        self.bad_auth = 0
        self.release = asyncio.Event()

    def service_account(self, path: Path) -> Path:
        """Write the service account's key file, its token_uri this fake's."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        account = {
            "type": "service_account",
            "project_id": PUSH_PROJECT,
            "private_key_id": "key-1",
            "private_key": pem,
            "client_email": f"reminders@{PUSH_PROJECT}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }
        path.write_text(json.dumps(account))
        return path

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            claims = jwt.decode(
                str(form.get("assertion", "")), self.key.public_key(), algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
            )
        except jwt.InvalidTokenError:
            return web.json_response({"error": "invalid_grant"}, status=400)
        assert form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
        self.tokens_issued += 1
        return web.json_response(
            {"access_token": f"ya29.token-{self.tokens_issued}", "expires_in": 3600,
             "token_type": "Bearer"}
        )

    async def send(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Bearer ya29.token-{self.tokens_issued}":
            self.bad_auth += 1
            return _fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")
        assert request.match_info["project"] == PUSH_PROJECT
        message = (await request.json())["message"]
        self.requests.append(message)
        script = self.once.get(message["token"], [])
        behaviour = script.pop(0) if script else "ok"
        if behaviour == "hang":
            await self.release.wait()
        elif behaviour != "ok":
            return _fcm_error(*_FCM_ERRORS[behaviour])
        self.accepted.append(message)
        name = f"projects/{PUSH_PROJECT}/messages/{len(self.accepted)}"
        return web.json_response({"name": name})

    def refs(self) -> list[str]:
        return [message["data"]["ref"] for message in self.accepted]


class FakeMail:
    """An SMTP server (aiosmtpd) wanting AUTH LOGIN/PLAIN, keeping every message it takes.
    Behaviours by recipient, one per attempt: "greylist" (451 at RCPT), "reject" (550 at RCPT),
    "drop" (takes the message, then closes the connection instead of answering), "slow" (answers,
    and takes it, only after `slow_reply` seconds)."""

    def __init__(self) -> None:
        self.accepted: list[EmailMessage] = []
        self.once: dict[str, list[str]] = {}
        self.attempts = 0
        self.slow_reply = 1.0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, authenticator=self._authenticate, auth_require_tls=False,
                         hostname="mail.test"),
            "127.0.0.1", 0,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USERNAME.encode(), SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 on a failure

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        self.attempts += 1
        script = self.once.get(address, [])
        behaviour = script[0] if script else "ok"
        if behaviour == "greylist":
            script.pop(0)
            return "451 4.7.1 Greylisted, try again later"
        if behaviour == "reject":
            script.pop(0)
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        script = self.once.get(envelope.rcpt_tos[0], [])
        if script and script[0] == "slow":
            script.pop(0)
            # aiosmtpd cancels this on a client's hang-up: a message given up is not taken.
            await asyncio.sleep(self.slow_reply)
        content = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(content)
        assert isinstance(message, EmailMessage)
        self.accepted.append(message)
        if script and script[0] == "drop":
            script.pop(0)
            assert server.transport is not None
            server.transport.close()  # the reply to the data never goes out
        return "250 OK queued"

    def refs(self) -> list[str]:
        return [str(message["X-Reminder-Ref"]) for message in self.accepted]


class AlertSink:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    async def post(self, request: web.Request) -> web.Response:
        self.alerts.append(await request.json())
        return web.Response(status=202)


class Service:
    def __init__(self, process: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    async def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 5.0)

    async def kill(self) -> None:
        self.process.kill()
        await self.process.wait()

    async def health(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/healthz") as response,
        ):
            assert response.status == 200
            body: dict[str, Any] = await response.json()
        return body


# Each schema's send state under version 1's names, and where it keeps the cursor and STOPs.
_ROWS = {
    "1": "SELECT * FROM outbox",
    "2": "SELECT r.reminder_id, r.ref, r.version, r.record, s.state AS status,"
    " s.tries AS attempts, s.due_at AS next_attempt_at, s.vendor, s.asked AS attempt,"
    " s.vendor_message_id AS message_id, s.last_error AS error, s.delivery"
    " FROM reminders r JOIN sends s USING (reminder_id)",
}
_CURSOR = {"1": "ledger_cursor", "2": "feed_cursor"}
_STOP_LIST = {"1": "opted_out", "2": "stop_list"}


def outbox_rows(path: Path, version: str) -> dict[str, dict[str, Any]]:
    """Every reminder's row of the outbox at `path`, under schema 1's column names."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        return {row["reminder_id"]: dict(row) for row in db.execute(_ROWS[version])}


class World:
    """The fakes on loopback port 0, and any notifier processes started against them, of
    `version` (NOTIFIER_VERSION) unless a start says otherwise."""

    def __init__(
        self, tmp_path: Path, reminders: int = 3, *, version: str = "1", channels: bool = False
    ) -> None:
        self.tmp_path = tmp_path
        self.fcm = FakeFCM() if channels else None
        self.mail = FakeMail() if channels else None
        self.version = version
        self.outbox_path = tmp_path / "outbox.db"
        self.ledger = FakeLedger()
        for n in range(1, reminders + 1):
            self.ledger.schedule(n)
        self.twilio = FakeTwilio()
        self.aliyun = FakeAliyun()
        self.sink = AlertSink()
        self._runners: list[web.AppRunner] = []
        self._services: list[Service] = []
        self._logs: list[Path] = []
        self.urls: dict[str, str] = {}

    async def __aenter__(self) -> World:
        routes = {
            "ledger": [
                web.get("/v1/reminders/changes", self.ledger.changes),
                web.get("/v1/reminders/{reminder_id}", self.ledger.primary),
            ],
            "twilio": [
                web.post("/2010-04-01/Accounts/{sid}/Messages.json", self.twilio.messages),
                web.get("/2010-04-01/Accounts/{sid}/Messages.json", self.twilio.list_messages),
            ],
            "aliyun": [web.post("/", self.aliyun.rpc)],
            "alerts": [web.post("/alerts", self.sink.post)],
        }
        if self.fcm is not None:
            routes["fcm"] = [
                web.post("/token", self.fcm.token),
                web.post("/v1/projects/{project}/messages:send", self.fcm.send),
            ]
        for name, table in routes.items():
            app = web.Application()
            app.add_routes(table)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self._runners.append(runner)
            host, port = runner.addresses[0][:2]
            self.urls[name] = f"http://{host}:{port}"
        if self.fcm is not None:
            self.fcm.url = self.urls["fcm"]
        if self.mail is not None:
            await self.mail.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        for service in self._services:
            if service.process.returncode is None:
                await service.kill()
        self.twilio.release.set()
        self.aliyun.release.set()
        if self.fcm is not None:
            self.fcm.release.set()
        for runner in self._runners:
            await runner.cleanup()
        if self.mail is not None:
            await self.mail.close()
        for log in self._logs:
            print(f"--- {log.name}\n{log.read_text()}")

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "LEDGER_URL": self.urls["ledger"],
            "ALERT_URL": f"{self.urls['alerts']}/alerts",
            "OUTBOX_PATH": str(self.outbox_path),
            "PRIMARY_VENDOR": "twilio",
            "SECONDARY_VENDOR": "ali-backup",
            "TWILIO_BASE_URL": self.urls["twilio"],
            "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM": TWILIO_FROM,
            "ALI_BACKUP_KIND": "aliyun",
            "ALI_BACKUP_BASE_URL": self.urls["aliyun"],
            "ALI_BACKUP_ACCESS_KEY_ID": ALIYUN_KEY_ID,
            "ALI_BACKUP_ACCESS_KEY_SECRET": ALIYUN_SECRET,
            "ALI_BACKUP_SIGN_NAME": ALIYUN_SIGN,
            "ALI_BACKUP_TEMPLATE_CODE": ALIYUN_TEMPLATE,
            "POLL_INTERVAL": "0.05",
            "VENDOR_TIMEOUT": "1",
            "WORKERS": "1",
            "NOTIFIER_VERSION": self.version,
        }
        env.update(overrides)
        return env

    def channel_env(self, channels: str = "sms,push,email") -> dict[str, str]:
        """The settings of the push and mail fakes, with CHANNELS."""
        assert self.fcm is not None and self.mail is not None, "World(..., channels=True)"
        return {
            "CHANNELS": channels,
            "PUSH_URL": self.urls["fcm"],
            "PUSH_PROJECT": PUSH_PROJECT,
            "PUSH_CREDENTIALS_FILE": str(self.fcm.service_account(self.tmp_path / "sa.json")),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.mail.port),
            "SMTP_USERNAME": SMTP_USERNAME,
            "SMTP_PASSWORD": SMTP_PASSWORD,
            "MAIL_FROM": MAIL_FROM,
        }

    async def start(self, **overrides: str) -> Service:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, **self.env(PORT=str(port), PUBLIC_URL=url, **overrides)}
        log = self.tmp_path / f"service-{len(self._logs) + 1}.log"
        self._logs.append(log)
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "examples.reminder_service",
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        service = Service(process, url, log)
        self._services.append(service)
        await self._until_healthy(service)
        return service

    async def _until_healthy(self, service: Service) -> None:
        deadline = asyncio.get_running_loop().time() + 10.0
        async with aiohttp.ClientSession() as session:
            while True:
                assert service.process.returncode is None, "service exited during start-up"
                try:
                    async with session.get(f"{service.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, "service never got healthy"
                await asyncio.sleep(0.05)

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every reminder's row, under schema 1's column names whatever the version."""
        return outbox_rows(self.outbox_path, self.version)

    def cursor(self) -> int:
        with contextlib.closing(sqlite3.connect(self.outbox_path)) as db:
            row = db.execute(f"SELECT value FROM {_CURSOR[self.version]}").fetchone()
        return int(row[0]) if row else 0

    def stop_list(self) -> int:
        """How many numbers the outbox keeps as opted out by a STOP reply."""
        with contextlib.closing(sqlite3.connect(self.outbox_path)) as db:
            (count,) = db.execute(f"SELECT COUNT(*) FROM {_STOP_LIST[self.version]}").fetchone()
        return int(count)

    def statuses(self) -> dict[str, str]:
        if not self.outbox_path.exists():
            return {}
        return {rid: row["status"] for rid, row in self.rows().items()}

    def all_sent(self) -> bool:
        statuses = self.statuses()
        return len(statuses) == len(self.ledger.truth) and set(statuses.values()) == {"sent"}

    def stored(self, reminder_id: str, version: int = 1) -> bool:
        """Whether the outbox holds `version` (or a newer one) of the reminder."""
        row = self.rows().get(reminder_id) if self.outbox_path.exists() else None
        return row is not None and row["version"] >= version

    def record(self, reminder_id: str) -> dict[str, Any]:
        stored: dict[str, Any] = json.loads(self.rows()[reminder_id]["record"])
        return stored


def config_error(**env: str) -> list[str]:
    """The service's stderr lines when started with `env`; asserts it exits 2."""
    result = subprocess.run(
        [sys.executable, "-m", "examples.reminder_service"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    return result.stderr.strip().splitlines()
