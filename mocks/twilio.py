"""Twilio Programmable Messaging mock: Messages.json with Basic auth, signed status callbacks."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import math
import random
import re
import string
import time
import uuid
from codecs import escape_decode  # CPython's, undocumented but typed
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _json
from typing import NamedTuple
from urllib.parse import quote, quote_plus, unquote, unquote_to_bytes

from aiohttp import web

from harness.journal import SendRecorded
from mocks.catalogue import pick
from mocks.control import Rule
from mocks.front import FAST_PATH, FastAnswer, Head, PlainRequest
from mocks.guard import form as read_form
from mocks.guard import guard
from mocks.sends import raw_request, request_record
from mocks.vendor import FILTERED, Report, ResponseLost, VendorMock
from mocks.webhooks import Webhooks

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MAX_BODY = 1600  # characters of a message body, once concatenated (error 21617)
_MAX_PAGE = 10**6  # a page number past any account's messages


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """`X-Twilio-Signature`: base64 HMAC-SHA1 of the URL followed by the sorted key+value pairs."""
    payload = url + "".join(key + params[key] for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


CREDENTIAL_KEYS = ("account_sid", "auth_token", "from")
SECRET_KEYS = frozenset({"auth_token"})


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """An account SID, its auth token and a sender number."""
    return {"account_sid": "AC" + pick(rng, "0123456789abcdef", 32),
            "auth_token": pick(rng, "0123456789abcdef", 32),
            "from": "+1500555" + pick(rng, string.digits, 4)}


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "status": status,
         "more_info": f"https://www.twilio.com/docs/errors/{code}"}, status=status)


class _Style:
    """Twilio's way of failing: HTTP status plus a JSON error with a numeric code."""

    def outage(self, status: int) -> web.Response:
        codes = {500: (20500, "An internal server error has occurred"),
                 503: (20503, "Service unavailable")}
        code, message = codes.get(status, (20500 if status >= 500 else 20001, "Error"))
        return _error(status, code, message)

    def throttled(self) -> web.Response:
        return _error(429, 20429, "Too Many Requests")

    def rejected(self, rule: Rule) -> web.Response | None:
        # Twilio has no templates: what a template rule refuses, the carrier filters (30007).
        if rule == "template":
            return None
        return _error(400, 21606, "The From phone number is not a valid, SMS-capable inbound "
                      "phone number or short code for your account.")

    def junk(self, status: int, reason: str) -> web.Response:
        codes = {404: 20404, 405: 20004, 500: 20500}
        return _error(status, codes.get(status, 20001), reason)


_STATUS = {"delivered": "delivered", "spam": "delivered", "absent": "undelivered",
           "dropped": "sent"}  # where the handset outcome leaves the message in Twilio's eyes
_CARRIER_FILTERED = 30007  # Twilio's error code for a message the carrier filtered


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc2822(t: float) -> str:
    """Twilio's dates, `Tue, 01 Dec 2026 23:40:00 +0000`: email.utils.formatdate's text with
    +0000 for GMT, in a third of its time, and made once a second (it is in every answer)."""
    return _rfc2822_second(math.floor(t))


@functools.lru_cache(maxsize=2)
def _rfc2822_second(second: int) -> str:
    tm = time.gmtime(second)
    return (f"{_DAYS[tm.tm_wday]}, {tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year:04d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} +0000")


class _Message(NamedTuple):
    """An accepted message as the Messages resource shows it."""

    sid: str
    to: str
    sender: str
    body: str
    t: float
    handset: str
    service: str | None
    filtered: bool

    @classmethod
    def of(cls, send: SendRecorded, sender: str, service: str | None,
           filtered: bool) -> _Message:
        return cls(send.message_id, send.to, sender, send.body, send.t, send.handset, service,
                   filtered)

    def matches(self, query: Mapping[str, str]) -> bool:
        """Whether the list filters To, From and DateSent (exact, < or >, UTC dates) admit it."""
        sent = datetime.fromtimestamp(self.t, UTC).strftime("%Y-%m-%d")
        return (query.get("To", self.to) == self.to
                and query.get("From", self.sender) == self.sender
                and query.get("DateSent", sent) == sent
                and query.get("DateSent<", sent) >= sent
                and query.get("DateSent>", sent) <= sent)

    def created_json(self, sid: str) -> bytes:
        """`json.dumps(self.resource(sid, just_created=True))`, written out: every answer to a
        send is one, and the strings are all that varies."""
        uri = f"/2010-04-01/Accounts/{sid}/Messages/{self.sid}"
        created = _json(_rfc2822(self.t))
        service = "null" if self.service is None else _json(self.service)
        return (f'{{"account_sid": {_json(sid)}, "api_version": "2010-04-01", "body": '
                f'{_json(self.body)}, "date_created": {created}, "date_sent": null, '
                f'"date_updated": {created}, "direction": "outbound-api", "error_code": null, '
                f'"error_message": null, "from": {_json(self.sender)}, "messaging_service_sid": '
                f'{service}, "num_media": "0", "num_segments": "1", "price": null, '
                f'"price_unit": null, "sid": {_json(self.sid)}, "status": "queued", '
                f'"subresource_uris": {{"media": {_json(uri + "/Media.json")}}}, "to": '
                f'{_json(self.to)}, "uri": {_json(uri + ".json")}}}').encode()

    def resource(self, sid: str, just_created: bool = False) -> dict[str, object]:
        """The JSON Twilio returns for it: `queued` when created, later as the handset left it
        (undelivered with 30007 if the carrier filtered it)."""
        uri = f"/2010-04-01/Accounts/{sid}/Messages/{self.sid}"
        created = _rfc2822(self.t)
        status = ("queued" if just_created else "undelivered" if self.filtered
                  else _STATUS[self.handset])
        error = _CARRIER_FILTERED if self.filtered and not just_created else None
        return {
            "account_sid": sid, "api_version": "2010-04-01", "body": self.body,
            "date_created": created, "date_sent": None if just_created else created,
            "date_updated": created, "direction": "outbound-api", "error_code": error,
            "error_message": None, "from": self.sender, "messaging_service_sid": self.service,
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": None,
            "sid": self.sid, "status": status,
            "subresource_uris": {"media": f"{uri}/Media.json"}, "to": self.to,
            "uri": f"{uri}.json",
        }


def create_app(vendor: VendorMock) -> web.Application:
    """A Twilio-compatible API for one account."""
    sid, token = vendor.credentials["account_sid"], vendor.credentials["auth_token"]
    expected_auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    style = _Style()

    async def deliver(reports: list[Report]) -> None:
        for report in reports:
            await _callback(vendor.webhooks, report, sid, token)

    reports = vendor.report_queue(deliver, batch=False, filtered=True)

    async def forward_reply(url: str, borrower: str, sender: str) -> None:
        message_sid = "SM" + uuid.uuid4().hex
        params = {"MessageSid": message_sid, "SmsSid": message_sid, "AccountSid": sid,
                  "From": borrower, "To": sender, "Body": "STOP", "NumMedia": "0",
                  "ApiVersion": "2010-04-01"}
        await _post_signed(vendor.webhooks, url, params, token)

    vendor.forward_reply = forward_reply

    messages: list[_Message] = []

    def authenticate(request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization")
        if request.match_info["sid"] == sid and authorization == expected_auth:
            return None
        return web.json_response(
            {"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.",
             "message": "Authenticate", "status": 401,
             "more_info": "https://www.twilio.com/docs/errors/20003"}, status=401)

    def refusal(form: Mapping[str, str]) -> web.Response | None:
        """Twilio's answer to a send that `form` may not make, its checks in Twilio's order;
        None when it may go (with no fault switched on, asking has no effect)."""
        to, sender, body = (str(form.get(key, "")) for key in ("To", "From", "Body"))
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        fate = vendor.fate(to, body) if _E164.match(to) else "invalid"
        if fate == "invalid":
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if fate == "barred":
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not sender and "MessagingServiceSid" not in form:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > _MAX_BODY:
            return _error(400, 21617, "The concatenated message body exceeds the "
                          f"{_MAX_BODY} character limit.")
        rejected = vendor.reject(style)
        if rejected is not None:
            return rejected
        if vendor.stopped(to, sender):  # Twilio honours a STOP to this sender for good
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    def create(form: Mapping[str, str], request: dict[str, object]) -> _Message:
        """Accept the send of `form` (that `refusal` let go), `request` its record: the
        message as just created."""
        to, sender, body = (str(form.get(key, "")) for key in ("To", "From", "Body"))
        message_sid = "SM" + uuid.uuid4().hex
        callback = str(form.get("StatusCallback", ""))
        send = vendor.accept(message_id=message_sid, to=to, sender=sender, body=body,
                             client_ref=None, request=request,
                             reports=reports if callback else None, callback=callback)
        service = form.get("MessagingServiceSid")
        messages.append(_Message.of(send, sender, service or None, vendor.filtered(message_sid)))
        return messages[-1]

    async def create_message(request: web.Request) -> web.Response:
        refused = authenticate(request) or await vendor.admit(style)
        if refused is not None:
            return refused
        form = await read_form(request)
        refused = refusal(form)
        if refused is not None:
            return refused
        created = create(form, await raw_request(request))
        if vendor.lose_response():
            raise ResponseLost
        return web.json_response(created.resource(sid, just_created=True), status=201)

    send_path = f"/2010-04-01/Accounts/{sid}/Messages.json"

    def fast_send(request: PlainRequest) -> FastAnswer | None:
        """`create_message`'s answer to a plain send it would accept with no fault switched
        on, from the same functions (`mocks.front`); None, with no effect, to any other."""
        head = request.head
        if (head.method != "POST" or head.target != send_path or not vendor.quiet
                or head.fields.get("authorization") != expected_auth):
            return None
        form = _plain_form(head, request.body)
        if form is None:
            return None

        def handle() -> _Message | None:
            if refusal(form) is not None:
                return None
            return create(form, request_record("POST", send_path, "", head.masked_headers,
                                               request.body))

        created = vendor.fast_call(handle, 201)
        return None if created is None else FastAnswer(201, created.created_json(sid))

    async def list_messages(request: web.Request) -> web.Response:
        """Newest first, filtered by To, From and DateSent (a UTC date, or a bound with < >)."""
        refused = authenticate(request) or await vendor.admit(style)
        if refused is not None:
            return refused
        query = request.query
        size_text, page_text = query.get("PageSize", "50"), query.get("Page", "0")
        if not all(text.isascii() and text.isdigit() and len(text) <= 9
                   for text in (size_text, page_text)):
            return _error(400, 20001, "Invalid paging parameter")
        size, page = min(int(size_text), 1000), int(page_text)
        if size < 1 or page > _MAX_PAGE:
            return _error(400, 20001, "Invalid paging parameter")
        matching = [m for m in reversed(messages) if m.matches(query)]
        vendor.read()
        path = request.path
        filters = "".join(f"&{quote(key)}={quote(value)}" for key, value in query.items()
                          if key not in ("Page", "PageSize", "PageToken"))
        start = page * size
        shown = matching[start:start + size]
        more = start + size < len(matching)
        return web.json_response({
            "messages": [m.resource(sid) for m in shown],
            "start": start, "end": start + max(len(shown) - 1, 0), "page": page,
            "page_size": size, "uri": f"{path}?PageSize={size}&Page={page}{filters}",
            "first_page_uri": f"{path}?PageSize={size}&Page=0{filters}",
            "previous_page_uri":
                f"{path}?PageSize={size}&Page={page - 1}{filters}" if page else None,
            "next_page_uri": f"{path}?PageSize={size}&Page={page + 1}{filters}" if more else None,
        })

    async def fetch_message(request: web.Request) -> web.Response:
        refused = authenticate(request) or await vendor.admit(style)
        if refused is not None:
            return refused
        wanted = request.match_info["message_sid"]
        found = next((m for m in messages if m.sid == wanted), None)
        if found is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        vendor.read()
        return web.json_response(found.resource(sid))

    app = vendor.application(reports)
    app.middlewares.append(guard(style, passing=(ResponseLost,)))
    messages_path = "/2010-04-01/Accounts/{sid}/Messages"
    app.router.add_post(messages_path + ".json", create_message)
    app.router.add_get(messages_path + ".json", list_messages)
    app.router.add_get(messages_path + "/{message_sid}.json", fetch_message)
    app[FAST_PATH] = fast_send
    return app


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded",
                         "application/x-www-form-urlencoded; charset=utf-8"})


def _plain_form(head: Head, body: bytes) -> dict[str, str] | None:
    """The fields of a urlencoded UTF-8 body read as `guard.form` reads them (aiohttp's `post`:
    trailing whitespace stripped, blank values kept; the first of repeated fields); None for
    any other body, which the slow path reads its own way."""
    if head.fields.get("content-type", "").lower() not in _FORM_TYPES:
        return None
    try:
        text = body.rstrip().decode("utf-8")
    except UnicodeDecodeError:
        return None
    values: dict[str, str] = {}
    for name, value in form_pairs(text):
        values.setdefault(name, value)
    return values


def form_pairs(text: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True)`, as aiohttp reads a form, in a third of its
    time: a field is unquoted only when it holds a `+` or a `%`."""
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((_unquoted(name), _unquoted(value)))
    return pairs


def _unquoted(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    if not text.isascii():
        return unquote(text)
    if "\\" not in text:
        # Every %XX as \xXX, decoded in C: a tenth of `unquote_to_bytes`'s time on a Chinese
        # reminder (its loop over each escape was a twentieth of the mocks' CPU at 1000/s).
        # With no backslash of its own, the text holds no other escape; a % not followed by
        # two hex digits, which `unquote` keeps as it is, makes it raise, and takes the loop.
        try:
            return escape_decode(text.replace("%", "\\x"))[0].decode("utf-8", "replace")
        except ValueError:
            pass
    # What `unquote` does with ASCII text, without its regular expression's split first.
    return unquote_to_bytes(text).decode("utf-8", "replace")


async def _callback(webhooks: Webhooks, report: Report, sid: str, token: str) -> None:
    """Post `sent`, then the final status, as Twilio does (no callback for `queued`)."""
    send = report.send
    url = report.callback
    final = "delivered" if report.delivered else "undelivered"
    base = {"MessageSid": send.message_id, "SmsSid": send.message_id, "AccountSid": sid,
            "From": report.sender, "To": send.to, "ApiVersion": "2010-04-01"}
    for status in ("sent", final):
        params = {**base, "MessageStatus": status, "SmsStatus": status}
        if status == "undelivered":
            params["ErrorCode"] = str(_CARRIER_FILTERED if report.status == FILTERED
                                      else 30003 if report.status == "absent" else 30008)
        await _post_signed(webhooks, url, params, token)


async def _post_signed(webhooks: Webhooks, url: str, params: dict[str, str],
                       token: str) -> None:
    """A webhook request as Twilio makes it: a form POST signed with the account's token (the
    form encoded as aiohttp's FormData encodes it)."""
    headers = {"X-Twilio-Signature": signature(token, url, params),
               "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
    await webhooks.post_form(url, form_encoded(params).encode(), headers)


def form_encoded(params: Mapping[str, str]) -> str:
    """`urlencode(params)`, in a sixth of its time: each name and value quoted once (a
    callback's are its message's ids, the account's and the borrower's numbers; each
    `quote_plus` was a microsecond, sixteen a callback)."""
    return "&".join(f"{_plus(name)}={_plus(value)}" for name, value in params.items())


@functools.lru_cache(maxsize=4096)
def _plus(text: str) -> str:
    return quote_plus(text)
