"""Vonage SMS API mock: `/sms/json` over HTTPS, key+secret or signed, status inside HTTP 200."""

from __future__ import annotations

import base64
import hmac
import random
import re
import string
import time
import uuid
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from mocks.catalogue import pick
from mocks.sends import raw_request
from mocks.vendor import Report, ReportQueue, ResponseLost, VendorMock

TLS = True  # the official SDK builds https:// URLs only
CREDENTIAL_KEYS = ("api_key", "api_secret", "signature_secret")
_NUMBER = re.compile(r"^\+?[1-9]\d{6,14}$")
_DIGESTS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}  # by hex length
_FATE_STATUS = {"invalid": ("6", "Invalid Message"), "barred": ("7", "Number barred"),
                "failed": ("5", "Internal Error")}


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """An API key, its secret, and the secret signed requests are hashed with."""
    alphabet = string.ascii_letters + string.digits
    return {"api_key": pick(rng, "0123456789abcdef", 8), "api_secret": pick(rng, alphabet, 16),
            "signature_secret": pick(rng, alphabet, 32)}


def signature(secret: str, params: Mapping[str, str], digest: str = "md5") -> str:
    """`sig`: HMAC of `&key=value` for the sorted parameters, `&` and `=` in values as `_`."""
    mac = hmac.new(secret.encode(), digestmod=digest)
    for key in sorted(params):
        if key != "sig":
            value = params[key].replace("&", "_").replace("=", "_")
            mac.update(f"&{key}={value}".encode())
    return mac.hexdigest()


def _messages(*messages: dict[str, str]) -> web.Response:
    return web.json_response({"message-count": str(len(messages)), "messages": list(messages)})


def _status(status: str, text: str) -> web.Response:
    # Failures, credentials included, come back as a status inside HTTP 200.
    return _messages({"status": status, "error-text": text})


class _Style:
    """Vonage's way of failing: HTTP 5xx for an outage; throttling as status 1 in a 200."""

    def outage(self, status: int) -> web.Response:
        return web.json_response({"type": "https://developer.vonage.com/api-errors",
                                  "title": "Internal Error"}, status=status)

    def throttled(self) -> web.Response:
        return _status("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")


async def _receipt(session: aiohttp.ClientSession, report: Report, api_key: str) -> None:
    send = report.send
    stamp = time.strftime("%y%m%d%H%M", time.gmtime())
    receipt = {"msisdn": send.to.removeprefix("+"), "to": report.sender,
               "network-code": "46000", "messageId": send.message_id, "price": "0.03330000",
               "status": "delivered" if report.delivered else "failed", "scts": stamp,
               "err-code": "0" if report.delivered else "2",
               "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "client-ref": send.client_ref or "", "api-key": api_key}
    async with session.post(report.callback, json=receipt) as response:
        await response.read()


def create_app(vendor: VendorMock) -> web.Application:
    """A Vonage-compatible SMS API for one API key."""
    key, secret = vendor.credentials["api_key"], vendor.credentials["api_secret"]
    signing_secret = vendor.credentials["signature_secret"]
    style = _Style()

    async def deliver(reports: list[Report]) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for report in reports:
                await _receipt(session, report, key)

    reports = ReportQueue(deliver, batch=False, rng=vendor.rng, faults=lambda: vendor.faults)

    def authenticated(request: web.Request, params: Mapping[str, str]) -> web.Response | None:
        basic = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
        if request.headers.get("Authorization") == basic:
            return None
        if params.get("api_key") != key:
            return _status("4", "Bad Credentials")
        if "sig" in params:
            digest = _DIGESTS.get(len(params["sig"]))
            if "api_secret" in params:
                return _status("32", "Signature and api secret cannot be used together")
            if digest is None or not hmac.compare_digest(
                    signature(signing_secret, params, digest), params["sig"]):
                return _status("14", "Invalid Signature")
            return None
        return None if params.get("api_secret") == secret else _status("4", "Bad Credentials")

    async def send(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            payload = await request.json()
            params = {k: str(v) for k, v in payload.items()} if isinstance(payload, dict) else {}
        else:
            params = {k: str(v) for k, v in (await request.post()).items()}
        refused = authenticated(request, params)
        if refused is not None:
            return refused
        refused = await vendor.admit(style)
        if refused is not None:
            return refused
        to, sender, text = params.get("to", ""), params.get("from", ""), params.get("text", "")
        if not to or not sender or not text:
            return _status("2", "Missing to, from or text")
        phone = "+" + to.removeprefix("+")
        fate = vendor.fate(phone) if _NUMBER.match(to) else "invalid"
        if fate != "ok":
            return _status(*_FATE_STATUS[fate])
        message_id = uuid.uuid4().hex[:16].upper()
        client_ref = params.get("client-ref") or None
        vendor.accept(message_id=message_id, to=phone, sender=sender, body=text,
                      client_ref=client_ref, request=await raw_request(request),
                      reports=reports, callback=params.get("callback") or None)
        if vendor.lose_response():
            raise ResponseLost
        message = {"to": to.removeprefix("+"), "message-id": message_id, "status": "0",
                   "remaining-balance": "3.14159265", "message-price": "0.03330000",
                   "network": "46000"}
        return _messages(message | ({"client-ref": client_ref} if client_ref else {}))

    app = vendor.application(reports)
    app.router.add_post("/sms/json", send)
    return app
