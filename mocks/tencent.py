"""Tencent Cloud SMS mock: `SendSms` 2021-01-11, TC3-HMAC-SHA256, JSON, batched status callbacks."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
from aiohttp import web

from mocks.catalogue import pick
from mocks.sends import raw_request
from mocks.vendor import Fate, Report, ReportQueue, ResponseLost, VendorMock

CREDENTIAL_KEYS = ("secret_id", "secret_key", "sdk_app_id")
_AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([^/]+)/tc3_request,"
                   r"\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$")
_MOBILE = re.compile(r"^(?:\+86|86)?(1\d{10})$")
_CHINA = timezone(timedelta(hours=8))
_FATE_CODES: dict[Fate, tuple[str, str]] = {
    "invalid": ("InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"),
    "barred": ("FailedOperation.PhoneNumberInBlacklist", "phone number in blacklist"),
    "failed": ("LimitExceeded.PhoneNumberDailyLimit", "the number exceeds the daily limit"),
}


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """A SecretId/SecretKey pair and the SmsSdkAppId the account owns."""
    alphabet = string.ascii_letters + string.digits
    return {"secret_id": "AKID" + pick(rng, alphabet, 32), "secret_key": pick(rng, alphabet, 32),
            "sdk_app_id": "1400" + pick(rng, string.digits, 6)}


def tc3_signature(secret_key: str, method: str, path: str, query: str, content_type: str,
                  host: str, body: bytes, timestamp: str, date: str, service: str) -> str:
    """TC3-HMAC-SHA256 as Tencent computes it (content-type and host signed)."""
    canonical = "\n".join([method, path, query, f"content-type:{content_type}\nhost:{host}\n",
                           "content-type;host", hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["TC3-HMAC-SHA256", timestamp, f"{date}/{service}/tc3_request",
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _answer(body: dict[str, object], status: int = 200) -> web.Response:
    # Exactly `application/json`, no charset: the SDK looks for errors only then.
    payload = {"Response": {**body, "RequestId": str(uuid.uuid4())}}
    return web.Response(body=json.dumps(payload, ensure_ascii=False).encode(), status=status,
                        content_type="application/json")


def _error(code: str, message: str, status: int = 200) -> web.Response:
    # API errors come back inside HTTP 200, as Response.Error.
    return _answer({"Error": {"Code": code, "Message": message}}, status)


class _Style:
    """Tencent's way of failing: `Response.Error`; an outage as the HTTP status it names."""

    def outage(self, status: int) -> web.Response:
        return _error("InternalError", "an internal error has occurred", status)

    def throttled(self) -> web.Response:
        return _error("RequestLimitExceeded", "the request frequency exceeds the limit")


async def _callback(session: aiohttp.ClientSession, reports: list[Report]) -> None:
    by_url: dict[str, list[dict[str, object]]] = {}
    for report in reports:
        send = report.send
        by_url.setdefault(report.callback, []).append({
            "user_receive_time": datetime.now(_CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "nationcode": "86", "mobile": send.to.removeprefix("+86"),
            "report_status": "SUCCESS" if report.delivered else "FAIL",
            "errmsg": "DELIVRD" if report.delivered else "UNDELIV",
            "description": "用户短信送达成功" if report.delivered else "用户短信未送达",
            "sid": send.message_id, "ext": {"SessionContext": send.client_ref or ""}})
    for url, batch in by_url.items():
        async with session.post(url, json=batch) as response:
            await response.read()


def create_app(vendor: VendorMock) -> web.Application:
    """A Tencent-Cloud-compatible SMS API for one SecretId."""
    secret_id, secret_key = vendor.credentials["secret_id"], vendor.credentials["secret_key"]
    config, style = vendor.config, _Style()

    async def deliver(reports: list[Report]) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            await _callback(session, reports)

    reports = ReportQueue(deliver, batch=True, rng=vendor.rng, faults=lambda: vendor.faults,
                          interval=1.0)

    def check_signature(request: web.Request, body: bytes) -> web.Response | None:
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if match is None:
            return _error("AuthFailure.SignatureFailure", "the Authorization header is malformed")
        key, date, service, _, signature = match.groups()
        if key != secret_id:
            return _error("AuthFailure.SecretIdNotFound", "the SecretId is not found")
        timestamp = request.headers.get("X-TC-Timestamp", "")
        if not timestamp.isdigit() or datetime.fromtimestamp(int(timestamp), UTC).strftime(
                "%Y-%m-%d") != date:
            return _error("AuthFailure.SignatureFailure", "the timestamp does not match the date")
        expected = tc3_signature(secret_key, request.method, request.path,
                                 request.rel_url.raw_query_string,
                                 request.headers.get("Content-Type", ""),
                                 request.headers.get("Host", ""), body, timestamp, date, service)
        if not hmac.compare_digest(expected, signature):
            return _error("AuthFailure.SignatureFailure", "the signature does not match")
        return None

    async def api(request: web.Request) -> web.Response:
        body = await request.read()
        refused = check_signature(request, body)
        if refused is not None:
            return refused
        if (request.headers.get("X-TC-Action"), request.headers.get("X-TC-Version")) != (
                "SendSms", "2021-01-11"):
            return _error("InvalidAction", "the action does not exist")
        refused = await vendor.admit(style)
        if refused is not None:
            return refused
        try:
            params = json.loads(body)
        except ValueError:
            params = None
        if not isinstance(params, dict):
            return _error("InvalidParameter", "the body is not a JSON object")
        return await send(request, params)

    async def send(request: web.Request, params: dict[str, object]) -> web.Response:
        if params.get("SmsSdkAppId") != vendor.credentials["sdk_app_id"]:
            return _error("FailedOperation.SdkAppIdNotExist", "the SmsSdkAppId does not exist")
        if params.get("SignName") != config.sign_name:
            return _error("FailedOperation.SignatureIncorrectOrUnapproved",
                          "the signature is incorrect or not approved")
        template = config.templates.get(str(params.get("TemplateId", "")))
        if template is None:
            return _error("FailedOperation.TemplateIncorrectOrUnapproved",
                          "the template is incorrect or not approved")
        values = _strings(params.get("TemplateParamSet"))
        text = f"【{config.sign_name}】" + re.sub(
            r"\{(\d+)\}", lambda m: values[int(m.group(1)) - 1]
            if 0 < int(m.group(1)) <= len(values) else "", template)
        numbers = _strings(params.get("PhoneNumberSet"))
        session = str(params.get("SessionContext") or "") or None
        raw = await raw_request(request)
        statuses = []
        for number in numbers:
            mobile = _MOBILE.match(number)
            fate: Fate = "invalid" if mobile is None else vendor.fate("+86" + mobile.group(1),
                                                                       len(numbers))
            serial = f"{vendor.rng.randrange(10**9)}:{uuid.uuid4().hex[:24]}"
            if fate == "ok" and mobile is not None:
                vendor.accept(message_id=serial, to="+86" + mobile.group(1),
                              sender=config.sign_name, body=text, client_ref=session,
                              request=raw, reports=reports)
                code, message = "Ok", "send success"
            else:
                code, message = _FATE_CODES[fate]
            statuses.append({"SerialNo": serial, "PhoneNumber": number, "Fee": 1,
                             "SessionContext": session or "", "Code": code, "Message": message,
                             "IsoCode": "CN"})
        if vendor.lose_response():
            raise ResponseLost
        return _answer({"SendStatusSet": statuses})

    app = vendor.application(reports)
    app.router.add_post("/", api)
    return app


def _strings(value: object) -> list[str]:
    """A JSON array as strings; anything else as no items."""
    return [str(item) for item in value] if isinstance(value, list) else []
