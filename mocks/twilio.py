"""Twilio Programmable Messaging mock: Messages.json with Basic auth, signed status callbacks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import uuid
from email.utils import formatdate

import aiohttp
from aiohttp import web

from mocks.sends import SendRecord, raw_request

log = logging.getLogger("mocks.twilio")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """`X-Twilio-Signature`: base64 HMAC-SHA1 of the URL followed by the sorted key+value pairs."""
    payload = url + "".join(key + params[key] for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "status": status,
         "more_info": f"https://www.twilio.com/docs/errors/{code}"}, status=status)


def create_app(name: str, credentials: dict[str, str], record: SendRecord) -> web.Application:
    """A Twilio-compatible API for one account, recording sends under vendor `name`."""
    sid, token = credentials["account_sid"], credentials["auth_token"]
    expected_auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    callbacks: set[asyncio.Task[None]] = set()

    async def create_message(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        if request.match_info["sid"] != sid or authorization != expected_auth:
            return web.json_response(
                {"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.",
                 "message": "Authenticate", "status": 401,
                 "more_info": "https://www.twilio.com/docs/errors/20003"}, status=401)
        form = await request.post()
        to, sender, body = (str(form.get(key, "")) for key in ("To", "From", "Body"))
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and "MessagingServiceSid" not in form:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        message_sid = "SM" + uuid.uuid4().hex
        record.add(vendor=name, message_id=message_sid, to=to, body=body, client_ref=None,
                   request=await raw_request(request))
        callback = str(form.get("StatusCallback", ""))
        if callback:
            task = asyncio.create_task(
                _report(callback, token, {"MessageSid": message_sid, "SmsSid": message_sid,
                                          "AccountSid": sid, "From": sender, "To": to,
                                          "ApiVersion": "2010-04-01"}))
            callbacks.add(task)
            task.add_done_callback(callbacks.discard)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        return web.json_response({
            "account_sid": sid, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": sender, "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": None,
            "sid": message_sid, "status": "queued", "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}/Media.json"},
            "to": to, "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
        }, status=201)

    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create_message)
    app.router.add_routes(record.routes(name))
    return app


async def _report(url: str, token: str, base: dict[str, str]) -> None:
    """Post `sent`, then `delivered`, as Twilio does (no callback for `queued`)."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for status in ("sent", "delivered"):
            params = {**base, "MessageStatus": status, "SmsStatus": status}
            headers = {"X-Twilio-Signature": signature(token, url, params),
                       "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
            try:
                async with session.post(url, data=params, headers=headers) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("status callback to %s failed: %s", url, exc)
                return
