"""Vonage SMS API mock: `/sms/json` over HTTPS, key+secret or signed, status inside HTTP 200;
signed receipts and inbound (STOP) webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import random
import re
import string
import time
import uuid
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from harness.journal import SendRecorded
from mocks.catalogue import pick
from mocks.control import Rule
from mocks.guard import Junk, form, guard, json_value
from mocks.sends import raw_request
from mocks.vendor import Report, ResponseLost, VendorMock

TLS = True  # the official SDK builds https:// URLs only
CREDENTIAL_KEYS = ("api_key", "api_secret", "signature_secret")
SECRET_KEYS = frozenset({"api_secret", "signature_secret"})
_NUMBER = re.compile(r"^\+?[1-9]\d{6,14}$")
_DIGESTS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}  # by hex length
_FATE_STATUS = {"invalid": ("6", "Unroutable message - rejected"),
                "barred": ("7", "Number barred.")}
_RULE_STATUS: dict[Rule, tuple[str, str]] = {
    "signature": ("15", "Illegal Sender Address - rejected"),
    # Vonage has no templates; a text the destination's rules no longer allow is refused as an
    # invalid message.
    "template": ("6", "Invalid Message - the text does not match a registered template"),
}
_GSM = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXTENDED = "^{}\\[~]|€\f"  # two septets each
_PRICE = "0.03330000"
_MAX_TEXT = 3200  # the mock's bound on a text, so that one request cannot ask for a receipt flood


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """An API key, its secret, and the secret signed requests are hashed with."""
    alphabet = string.ascii_letters + string.digits
    return {"api_key": pick(rng, "0123456789abcdef", 8), "api_secret": pick(rng, alphabet, 16),
            "signature_secret": pick(rng, alphabet, 32)}


def _signed_text(params: Mapping[str, str]) -> bytes:
    """`&key=value` for the sorted parameters but `sig`, `&` and `=` in values as `_`."""
    return "".join(f"&{key}={params[key].replace('&', '_').replace('=', '_')}"
                   for key in sorted(params) if key != "sig").encode()


def signatures(secret: str, params: Mapping[str, str], digest: str) -> list[str]:
    """The `sig` values that sign `params`: the HMAC with `digest`, and for md5 also the legacy
    md5 hash of the text followed by the secret (an account uses one; either is accepted)."""
    text = _signed_text(params)
    accepted = [hmac.new(secret.encode(), text, digest).hexdigest()]
    if digest == "md5":
        accepted.append(hashlib.md5(text + secret.encode()).hexdigest())
    return accepted


def parts(text: str, kind: str) -> int:
    """How many SMS a text takes: 160 GSM-7 septets or 70 UCS-2 units in one, 153 or 67 each
    when concatenated (a text outside GSM-7 goes as unicode whatever `type` says)."""
    if kind != "unicode" and all(c in _GSM or c in _GSM_EXTENDED for c in text):
        septets = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def _messages(*messages: dict[str, str]) -> web.Response:
    return web.json_response({"message-count": str(len(messages)), "messages": list(messages)})


def _status(status: str, text: str) -> web.Response:
    # Failures, credentials included, come back as a status inside HTTP 200.
    return _messages({"status": status, "error-text": text})


class _Style:
    """Vonage's way of failing: HTTP 5xx for an outage; throttling as status 1 in a 200."""

    def outage(self, status: int) -> web.Response:
        return web.json_response({"type": "https://developer.vonage.com/api-errors",
                                  "title": "Internal Error"}, status=status,
                                 content_type="application/problem+json")

    def throttled(self) -> web.Response:
        return _status("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")

    def rejected(self, rule: Rule) -> web.Response:
        return _status(*_RULE_STATUS[rule])

    def junk(self, status: int, reason: str) -> web.Response:
        # What the API gateway answers before the SMS API sees the request.
        titles = {404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
                  413: "Payload Too Large", 500: "Internal Error"}
        return web.json_response({"type": "https://developer.vonage.com/api-errors",
                                  "title": titles.get(status, "Bad Request"), "detail": reason},
                                 status=status, content_type="application/problem+json")


def _signed(params: dict[str, str], secret: str, now: float) -> dict[str, str]:
    """`params` as a webhook carries them when the account signs: with `timestamp` (unix
    seconds), a `nonce`, and `sig`, the md5 HMAC (the SDK's default method) over all of them."""
    stamped = params | {"timestamp": str(int(now)), "nonce": str(uuid.uuid4())}
    return stamped | {"sig": hmac.new(secret.encode(), _signed_text(stamped), "md5").hexdigest()}


def _utc(t: float, pattern: str) -> str:
    return time.strftime(pattern, time.gmtime(t))


async def _post(session: aiohttp.ClientSession, url: str, payload: dict[str, str]) -> None:
    async with session.post(url, json=payload) as response:
        await response.read()


async def _receipt(session: aiohttp.ClientSession, report: Report, api_key: str,
                   secret: str) -> None:
    """One signed DLR, POSTed as JSON; a phone that stayed off lets the message expire."""
    send, now = report.send, time.time()
    status, code = (("delivered", "0") if report.delivered else
                    ("expired", "2") if report.status == "absent" else ("failed", "99"))
    receipt = {"msisdn": send.to.removeprefix("+"), "to": report.sender,
               "network-code": "46000", "messageId": send.message_id, "price": _PRICE,
               "status": status, "scts": _utc(now, "%y%m%d%H%M"), "err-code": code,
               "message-timestamp": _utc(now, "%Y-%m-%d %H:%M:%S"),
               "client-ref": send.client_ref or "", "api-key": api_key}
    await _post(session, report.callback, _signed(receipt, secret, now))


async def _params(request: web.Request) -> dict[str, str]:
    """The request's parameters, from a form or a JSON body, as strings; Junk when the body
    cannot be read as what it says it is."""
    if request.content_type != "application/json":
        return await form(request)
    payload = json_value(await request.read())
    if not isinstance(payload, dict):
        raise Junk("the JSON body is not an object")
    return {k: str(v) for k, v in payload.items()}


def create_app(vendor: VendorMock) -> web.Application:
    """A Vonage-compatible SMS API for one API key.

    A long text is split as Vonage splits it: the answer lists one message per part, each with
    its own message-id, and each part gets its own receipt (with its own DLR faults). The record
    keeps one send per request, under the first part's id: the borrower reads one message.
    """
    key, secret = vendor.credentials["api_key"], vendor.credentials["api_secret"]
    signing_secret = vendor.credentials["signature_secret"]
    basic = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    style = _Style()

    async def deliver(reports: list[Report]) -> None:
        for report in reports:
            await _receipt(vendor.webhooks.session(), report, key, signing_secret)

    reports = vendor.report_queue(deliver, batch=False)

    async def forward_reply(url: str, borrower: str, sender: str) -> None:
        # An inbound SMS webhook, POSTed as JSON and signed like the receipts.
        now = time.time()
        reply = {"msisdn": borrower.removeprefix("+"), "to": sender,
                 "messageId": uuid.uuid4().hex[:16].upper(), "text": "STOP", "type": "text",
                 "keyword": "STOP", "message-timestamp": _utc(now, "%Y-%m-%d %H:%M:%S"),
                 "api-key": key}
        await _post(vendor.webhooks.session(), url, _signed(reply, signing_secret, now))

    vendor.forward_reply = forward_reply

    def authenticated(request: web.Request, params: Mapping[str, str]) -> web.Response | None:
        if request.headers.get("Authorization") == basic:
            return None
        if params.get("api_key") != key:
            return _status("4", "Bad Credentials")
        if "sig" not in params:
            return None if params.get("api_secret") == secret else _status("4", "Bad Credentials")
        if "api_secret" in params:
            return _status("32", "Signature and api secret cannot be used together")
        digest = _DIGESTS.get(len(params["sig"]))
        if ("timestamp" not in params or digest is None or not params["sig"].isascii()
                or not any(hmac.compare_digest(sig, params["sig"])
                for sig in signatures(signing_secret, params, digest))):
            return _status("14", "Invalid Signature")
        return None

    def report_parts(send: SendRecorded, ids: list[str], sender: str, callback: str) -> None:
        url = callback or vendor.config.report_url
        if url and send.handset != "dropped":
            arrived = send.handset in ("delivered", "spam")
            for part_id in ids:
                part = send.model_copy(update={"message_id": part_id})
                reports.put(Report(part, arrived, send.handset, sender, url))

    async def send(request: web.Request) -> web.Response:
        # Credentials come first: a body that cannot be read has none, unless in the header.
        try:
            params, unreadable = await _params(request), None
        except Junk as junk:
            params, unreadable = {}, junk.reason
        refused = authenticated(request, params) or await vendor.admit(style)
        if refused is not None:
            return refused
        if unreadable is not None:
            return _status("2", f"Missing to, from or text: {unreadable}")
        to, sender, text = params.get("to", ""), params.get("from", ""), params.get("text", "")
        if not to or not sender or not text:
            return _status("2", "Missing to, from or text")
        if not _NUMBER.match(to):
            return _status("3", "Invalid to address")
        if len(text) > _MAX_TEXT:
            return _status("3", f"Invalid text: longer than {_MAX_TEXT} characters")
        phone = "+" + to.removeprefix("+")
        fate = vendor.fate(phone, text)
        if fate != "ok":
            return _status(*_FATE_STATUS[fate])
        rejected = vendor.reject(style)
        if rejected is not None:
            return rejected
        ids = [uuid.uuid4().hex[:16].upper() for _ in range(parts(text, params.get("type", "")))]
        client_ref = params.get("client-ref") or None
        recorded = vendor.accept(message_id=ids[0], to=phone, sender=sender, body=text,
                                 client_ref=client_ref, request=await raw_request(request),
                                 reports=None)
        report_parts(recorded, ids, sender, params.get("callback", ""))
        if vendor.lose_response():
            raise ResponseLost
        echo = {"client-ref": client_ref} if client_ref else {}
        return _messages(*({"to": phone.removeprefix("+"), "message-id": part_id, "status": "0",
                            "remaining-balance": "3.14159265", "message-price": _PRICE,
                            "network": "46000"} | echo for part_id in ids))

    app = vendor.application(reports)
    app.middlewares.append(guard(style, passing=(ResponseLost,)))
    app.router.add_post("/sms/json", send)
    return app
