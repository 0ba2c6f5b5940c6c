"""Tencent Cloud SMS mock: `SendSms` 2021-01-11, TC3-HMAC-SHA256, JSON, batched status callbacks,
reply callbacks."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import re
import string
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
from aiohttp import web

from mocks.catalogue import pick
from mocks.control import Rule
from mocks.guard import Junk, guard, json_value
from mocks.sends import raw_request
from mocks.vendor import Fate, Report, ResponseLost, VendorMock

CREDENTIAL_KEYS = ("secret_id", "secret_key", "sdk_app_id")
SECRET_KEYS = frozenset({"secret_key"})
SERVICE = "sms"
_AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([^/]+)/tc3_request,"
                   r"\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$")
_SKEW = 300  # seconds a request's timestamp may be off before its signature has expired
_MOBILE = re.compile(r"^(?:\+86|86)?(1\d{10})$")
_CHINA = timezone(timedelta(hours=8))
_MAX_NUMBERS, _MAX_PUSH = 200, 100
_FATE_CODES: dict[Fate, tuple[str, str]] = {
    "invalid": ("InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"),
    "barred": ("FailedOperation.PhoneNumberInBlacklist", "phone number in blacklist"),
    "failed": ("LimitExceeded.PhoneNumberDailyLimit", "the number exceeds the daily limit"),
}
_RULE_CODES: dict[Rule, tuple[str, str]] = {  # request-level errors, as errorcodes.py lists them
    "signature": ("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误"),
    "template": ("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配"),
}


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """A SecretId/SecretKey pair and the SmsSdkAppId the account owns."""
    alphabet = string.ascii_letters + string.digits
    return {"secret_id": "AKID" + pick(rng, alphabet, 32), "secret_key": pick(rng, alphabet, 32),
            "sdk_app_id": "1400" + pick(rng, string.digits, 6)}


def tc3_signature(secret_key: str, canonical_request: str, timestamp: str, date: str) -> str:
    """TC3-HMAC-SHA256 of a canonical request: key chain `TC3`+secret → date → sms →
    tc3_request, over the algorithm, timestamp, credential scope and the request's hash."""
    to_sign = "\n".join(["TC3-HMAC-SHA256", timestamp, f"{date}/{SERVICE}/tc3_request",
                         hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = ("TC3" + secret_key).encode()
    for part in (date, SERVICE, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      signed_headers: list[str], body: bytes) -> str:
    """The request as TC3 hashes it: the signed headers lower-cased and trimmed, and the body's
    SHA-256 (of the literal `UNSIGNED-PAYLOAD` if the client chose not to sign it)."""
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n"
                                for name in signed_headers)
    if headers.get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD":
        body = b"UNSIGNED-PAYLOAD"
    return "\n".join([method, path, query, canonical_headers, ";".join(signed_headers),
                      hashlib.sha256(body).hexdigest()])


def _answer(body: dict[str, object], status: int = 200) -> web.Response:
    # Exactly `application/json`, no charset: the SDK looks for errors only then.
    payload = {"Response": {**body, "RequestId": str(uuid.uuid4())}}
    return web.Response(body=json.dumps(payload, ensure_ascii=False).encode(), status=status,
                        content_type="application/json")


def _error(code: str, message: str, status: int = 200) -> web.Response:
    # API errors come back inside HTTP 200, as Response.Error.
    return _answer({"Error": {"Code": code, "Message": message}}, status)


class _Style:
    """Tencent's way of failing: `Response.Error` in a 200 when throttling; an outage as the
    HTTP status it names (the SDK then raises ServerNetworkError with the body as message)."""

    def outage(self, status: int) -> web.Response:
        return _error("InternalError", "an internal error has occurred", status)

    def throttled(self) -> web.Response:
        return _error("RequestLimitExceeded", "the request frequency exceeds the limit")

    def rejected(self, rule: Rule) -> web.Response:
        return _error(*_RULE_CODES[rule])

    def junk(self, status: int, reason: str) -> web.Response:
        # Request-level errors, inside a 200 as the API's own; the mock's failure as a 500.
        codes = {404: "InvalidAction", 405: "UnsupportedProtocol", 408: "RequestTimeout",
                 413: "RequestSizeLimitExceeded", 500: "InternalError"}
        return _error(codes.get(status, "InvalidParameter"), reason,
                      500 if status == 500 else 200)


def _status_report(report: Report) -> dict[str, object]:
    send = report.send
    return {"user_receive_time": datetime.now(_CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "nationcode": "86", "mobile": send.to.removeprefix("+86"),
            "report_status": "SUCCESS" if report.delivered else "FAIL",
            "errmsg": "DELIVRD" if report.delivered else "UNDELIV",
            "description": "用户短信送达成功" if report.delivered else "用户短信未送达",
            "sid": send.message_id, "ext": {"SessionContext": send.client_ref or ""}}


async def _callback(session: aiohttp.ClientSession, reports: list[Report]) -> None:
    """Status reports as JSON arrays, at most 100 a push, to each report's URL."""
    by_url: dict[str, list[dict[str, object]]] = {}
    for report in reports:
        by_url.setdefault(report.callback, []).append(_status_report(report))
    for url, items in by_url.items():
        for start in range(0, len(items), _MAX_PUSH):
            async with session.post(url, json=items[start:start + _MAX_PUSH]) as response:
                await response.read()


def _render(template: str, values: list[str]) -> str | None:
    """The template with `{n}` replaced by the n-th value; None if the counts differ."""
    wanted = {int(n) for n in re.findall(r"\{(\d+)\}", template)}
    if wanted != set(range(1, len(values) + 1)):
        return None
    return re.sub(r"\{(\d+)\}", lambda m: values[int(m.group(1)) - 1], template)


def _fee(text: str) -> int:
    """Billed SMS: 70 characters in one, 67 each once a text is split."""
    return 1 if len(text) <= 70 else math.ceil(len(text) / 67)


def _strings(value: object) -> list[str]:
    """A JSON array as strings; anything else as no items."""
    return [str(item) for item in value] if isinstance(value, list) else []


def create_app(vendor: VendorMock) -> web.Application:
    """A Tencent-Cloud-compatible SMS API for one SecretId (mainland China numbers only)."""
    secret_id, secret_key = vendor.credentials["secret_id"], vendor.credentials["secret_key"]
    config, style = vendor.config, _Style()

    async def deliver(reports: list[Report]) -> None:
        await _callback(vendor.webhooks.session(), reports)

    reports = vendor.report_queue(deliver, batch=True, interval=1.0)

    async def forward_reply(url: str, borrower: str, sender: str) -> None:
        # 回复短信回调: one JSON object per reply (status reports come as arrays); 退订 is how
        # a mainland borrower unsubscribes.
        reply = {"extend": "", "mobile": borrower.removeprefix("+86"), "nationcode": "86",
                 "sign": sender, "text": "退订", "time": int(time.time())}
        async with vendor.webhooks.session().post(url, json=reply) as response:
            await response.read()

    vendor.forward_reply = forward_reply

    def check_signature(request: web.Request, body: bytes) -> web.Response | None:
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if match is None:
            return _error("AuthFailure.InvalidAuthorization",
                          "the Authorization header is malformed")
        key, date, service, signed, signature = match.groups()
        if key != secret_id:
            return _error("AuthFailure.SecretIdNotFound", "the SecretId is not found")
        timestamp = request.headers.get("X-TC-Timestamp", "")
        if (not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12)
                or abs(time.time() - int(timestamp)) > _SKEW):
            return _error("AuthFailure.SignatureExpire", "the signature has expired")
        signed_headers = signed.split(";")
        if (service != SERVICE or not {"content-type", "host"} <= set(signed_headers)
                or datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d") != date):
            return _error("AuthFailure.SignatureFailure", "the credential scope is wrong")
        canonical = canonical_request(request.method, request.path,
                                      request.rel_url.raw_query_string, request.headers,
                                      signed_headers, body)
        if not hmac.compare_digest(tc3_signature(secret_key, canonical, timestamp, date),
                                   signature):
            return _error("AuthFailure.SignatureFailure", "the signature does not match")
        return None

    async def api(request: web.Request) -> web.Response:
        body = await request.read()
        refused = check_signature(request, body)
        if refused is not None:
            return refused
        if request.headers.get("X-TC-Action") != "SendSms":
            return _error("InvalidAction", "the action does not exist")
        if request.headers.get("X-TC-Version") != "2021-01-11":
            return _error("NoSuchVersion", "the API version does not exist")
        refused = await vendor.admit(style)
        if refused is not None:
            return refused
        try:
            params = json_value(body)
        except Junk:
            params = None
        if not isinstance(params, dict):
            return _error("FailedOperation.JsonParseFail", "the body is not a JSON object")
        return await send(request, params)

    def compose(params: dict[str, object]) -> web.Response | str:
        """The text a SendSms request sends, or its request-level error."""
        numbers = _strings(params.get("PhoneNumberSet"))
        if not numbers:
            return _error("MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet is empty")
        if len(numbers) > _MAX_NUMBERS:
            return _error("LimitExceeded.PhoneNumberCountLimit", "more than 200 numbers")
        if params.get("SmsSdkAppId") != vendor.credentials["sdk_app_id"]:
            return _error("UnauthorizedOperation.SmsSdkAppIdVerifyFail",
                          "the SmsSdkAppId does not belong to this account")
        if params.get("SignName") != config.sign_name:
            return style.rejected("signature")
        template = config.templates.get(str(params.get("TemplateId", "")))
        if template is None:
            return style.rejected("template")
        text = _render(template, _strings(params.get("TemplateParamSet")))
        if text is None:
            return _error("FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                          "the TemplateParamSet does not match the template")
        rejected = vendor.reject(style)
        return f"【{config.sign_name}】{text}" if rejected is None else rejected

    async def send(request: web.Request, params: dict[str, object]) -> web.Response:
        text = compose(params)
        if isinstance(text, web.Response):
            return text
        numbers = _strings(params.get("PhoneNumberSet"))
        session = str(params.get("SessionContext") or "")
        raw = await raw_request(request)
        statuses = []
        for number in numbers:
            mobile = _MOBILE.match(number)
            phone = "+86" + mobile.group(1) if mobile else ""
            fate: Fate = vendor.fate(phone, text, len(numbers)) if phone else "invalid"
            status = {"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": session,
                      "Code": "Ok", "Message": "send success", "IsoCode": "CN"}
            if fate == "ok":
                serial = f"{vendor.rng.randrange(1000, 9999)}:{vendor.rng.randrange(10**26):026}"
                vendor.accept(message_id=serial, to=phone, sender=config.sign_name, body=text,
                              client_ref=session or None, request=raw, reports=reports)
                status |= {"SerialNo": serial, "Fee": _fee(text)}
            else:
                code, message = _FATE_CODES[fate]
                status |= {"Code": code, "Message": message}
            statuses.append(status)
        if vendor.lose_response():
            raise ResponseLost
        return _answer({"SendStatusSet": statuses})

    app = vendor.application(reports)
    app.middlewares.append(guard(style, passing=(ResponseLost,)))
    app.router.add_post("/", api)
    return app
