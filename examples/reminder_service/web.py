"""HTTP endpoints: the health check, the vendors' delivery reports and borrowers' replies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .outbox import Outbox
from .replies import e164, is_stop
from .settings import Settings

log = logging.getLogger(__name__)

# Undecodable bytes, an unknown charset, JSON nested past the recursion limit.
_UNREADABLE = (ValueError, LookupError, RecursionError)

_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Twilio's status callback for a message the carrier filtered after Twilio took it.
CARRIER_FILTERED = "30007"


def build_app(
    outbox: Outbox,
    settings: Settings,
    *,
    role: Callable[[], str],
    filtered: Callable[[str, str], None],
) -> web.Application:
    """`role` says whether this instance sends now (`active`) or stands by (`standby`);
    `filtered(message_id, reason)` is told of each SMS a carrier filtered after its vendor
    took it."""
    routes = _Routes(outbox, settings, role, filtered)
    app = web.Application()
    app.add_routes(
        [
            web.get("/healthz", routes.healthz),
            web.post("/dlr/twilio", routes.twilio_report),
            web.post("/dlr/aliyun", routes.aliyun_report),
            web.post("/inbound/twilio", routes.twilio_reply),
            web.post("/inbound/aliyun", routes.aliyun_reply),
        ]
    )
    return app


class _Routes:
    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        role: Callable[[], str],
        filtered: Callable[[str, str], None],
    ) -> None:
        self._outbox = outbox
        self._settings = settings
        self._role = role
        self._filtered = filtered

    async def healthz(self, _: web.Request) -> web.Response:
        settings = self._settings
        return web.json_response(
            {
                "status": "ok",
                "version": settings.version,
                "role": self._role(),
                "instance": None if settings.ha is None else settings.ha.instance,
                "mode": settings.mode.value,
                "defect": None if settings.defect is None else settings.defect.value,
                "outbox": self._outbox.counts(),
            }
        )

    async def twilio_report(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except _UNREADABLE:
            return _bad_request("body is not a form")
        sid, status = form.get("MessageSid"), form.get("MessageStatus")
        if not (isinstance(sid, str) and sid and isinstance(status, str) and status):
            return _bad_request("MessageSid and MessageStatus are required")
        matched = self._outbox.record_delivery(status.lower(), message_id=sid)
        code = form.get("ErrorCode")
        error_code = code if isinstance(code, str) else ""
        log.info(
            "dlr twilio %s %s%s%s",
            sid,
            status,
            f" {error_code}" if error_code else "",
            "" if matched else " (no match)",
        )
        if status.lower() == "undelivered" and error_code == CARRIER_FILTERED:
            self._filtered(sid, f"twilio: {CARRIER_FILTERED} carrier filtered")
        return web.Response()

    async def aliyun_report(self, request: web.Request) -> web.Response:
        try:
            items: Any = await request.json()
        except _UNREADABLE:
            return _bad_request("body is not JSON")
        if not isinstance(items, list) or not all(_is_aliyun_report(item) for item in items):
            return _bad_request("expected an array of reports with success and biz_id or out_id")
        for item in items:
            status = "delivered" if item["success"] else "undelivered"
            matched = self._outbox.record_delivery(
                status, message_id=item.get("biz_id"), ref=item.get("out_id")
            )
            log.info(
                "dlr aliyun %s %s %s%s",
                item.get("out_id"),
                status,
                item.get("err_code", ""),
                "" if matched else " (no match)",
            )
        return web.json_response({"code": 0})

    async def twilio_reply(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except _UNREADABLE:
            return _bad_request("body is not a form")
        sender, text = form.get("From"), form.get("Body")
        phone = e164(sender) if isinstance(sender, str) else None
        if phone is None or not isinstance(text, str):
            return _bad_request("From (a phone number) and Body are required")
        self._reply("twilio", phone, text)
        return web.Response(text=_EMPTY_TWIML, content_type="text/xml")

    async def aliyun_reply(self, request: web.Request) -> web.Response:
        try:
            items: Any = await request.json()
        except _UNREADABLE:
            return _bad_request("body is not JSON")
        replies = _aliyun_replies(items)
        if replies is None:
            return _bad_request("expected an array of replies with phone_number and content")
        for phone, text in replies:
            self._reply("aliyun", phone, text)
        return web.json_response({"code": 0})

    def _reply(self, vendor: str, phone: str, text: str) -> None:
        if not is_stop(text):
            log.info("reply from %s via %s ignored: not a STOP keyword", phone, vendor)
            return
        new = self._outbox.opt_out(phone, vendor)
        log.info(
            "opted out %s: %r via %s%s", phone, text.strip(), vendor, "" if new else " (again)"
        )


def _aliyun_replies(items: object) -> list[tuple[str, str]] | None:
    """The (E.164 phone, text) of each SmsUp item, or None if any item is malformed."""
    if not isinstance(items, list):
        return None
    replies = []
    for item in items:
        if not isinstance(item, dict):
            return None
        number, text = item.get("phone_number"), item.get("content")
        phone = e164(number) if isinstance(number, str) else None
        if phone is None or not isinstance(text, str):
            return None
        replies.append((phone, text))
    return replies


def _is_aliyun_report(item: object) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("success"), bool):
        return False
    ids = [item.get("biz_id"), item.get("out_id")]
    return all(value is None or isinstance(value, str) for value in ids) and any(ids)


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)
