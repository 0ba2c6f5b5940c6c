"""Alibaba Cloud Dysmsapi mock: `SendSms` signed V3 (ACS3-HMAC-SHA256) or V1, SmsReport pushes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import re
import string
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import NamedTuple
from urllib.parse import quote

import aiohttp
from aiohttp import web

from harness.journal import SendRecorded
from mocks.catalogue import pick
from mocks.control import Rule
from mocks.guard import Junk, form, guard, json_value
from mocks.sends import raw_request
from mocks.vendor import Report, ResponseLost, VendorMock

_MOBILE = re.compile(r"^(?:\+86|0086|86)?(1\d{10})$")
_MAX_NUMBERS = 1000  # PhoneNumbers of one SendSms
_YIELD_EVERY = 100  # recipients accepted between two turns given back to the event loop
_CHINA = timezone(timedelta(hours=8))


def percent_encode(text: str) -> str:
    """RFC 3986 encoding as Alibaba's RPC signature wants it (space %20, * %2A, ~ kept)."""
    return quote(text, safe="~")


def rpc_signature(secret: str, method: str, params: dict[str, str]) -> str:
    """The V1 signature: base64 HMAC-SHA1 over METHOD&%2F&encoded(sorted params)."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(params[k])}"
                         for k in sorted(params) if k != "Signature")
    string_to_sign = f"{method}&%2F&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


ACS3 = "ACS3-HMAC-SHA256 "


def acs3_signature(secret: str, method: str, path: str, query: Mapping[str, str],
                   headers: Mapping[str, str], signed_headers: list[str]) -> str:
    """The V3 signature: hex HMAC-SHA256 over the hashed canonical request, as the SDKs sign."""
    canonical_query = "&".join(f"{key}={quote(query[key], safe='~')}" for key in sorted(query))
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n"
                                for name in signed_headers)
    canonical = "\n".join([method, path or "/", canonical_query, canonical_headers,
                           ";".join(signed_headers), headers.get("x-acs-content-sha256", "")])
    to_sign = f"{ACS3.strip()}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def _unknown_key() -> web.Response:
    return _platform_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")


def _signature_mismatch() -> web.Response:
    return _platform_error(400, "SignatureDoesNotMatch",
                           "Specified signature is not matched with our calculation.")


def _platform_error(status: int, code: str, message: str) -> web.Response:
    request_id = str(uuid.uuid4()).upper()
    return web.json_response({"RequestId": request_id, "HostId": "dysmsapi.aliyuncs.com",
                              "Code": code, "Message": message,
                              "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}"},
                             status=status)


def _business(code: str, message: str, biz_id: str = "") -> web.Response:
    # Business outcomes, failures included, come back inside HTTP 200.
    body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper()}
    if biz_id:
        body["BizId"] = biz_id
    return web.json_response(body)


CREDENTIAL_KEYS = ("access_key_id", "access_key_secret")
SECRET_KEYS = frozenset({"access_key_secret"})


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """An AccessKey pair."""
    alphabet = string.ascii_letters + string.digits
    return {"access_key_id": "LTAI" + pick(rng, alphabet, 20),
            "access_key_secret": pick(rng, alphabet, 30)}


_RULE_CODES: dict[Rule, tuple[str, str]] = {
    "signature": ("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名"),
    "template": ("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板"),
}


class _Style:
    """Alibaba's way of failing: gateway errors over HTTP, business errors inside a 200."""

    def outage(self, status: int) -> web.Response:
        if status == 503:
            return _platform_error(503, "ServiceUnavailable",
                                   "The request has failed due to a temporary failure.")
        return _platform_error(status, "InternalError",
                               "The request processing has failed due to some unknown error.")

    def throttled(self) -> web.Response:
        return _business("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10")

    def rejected(self, rule: Rule) -> web.Response:
        return _business(*_RULE_CODES[rule])

    def junk(self, status: int, reason: str) -> web.Response:
        codes = {404: "InvalidAction.NotFound", 405: "UnsupportedHTTPMethod",
                 408: "RequestTimeout", 413: "RequestEntityTooLarge", 500: "InternalError"}
        return _platform_error(status, codes.get(status, "InvalidParameter"), reason)


_FATE_CODES = {
    "invalid": ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
    "barred": ("isv.BLACK_KEY_CONTROL_LIMIT", "黑名单管控"),
    "failed": ("isp.SYSTEM_ERROR", "系统错误"),
}


def _china_time(t: float) -> str:
    return datetime.fromtimestamp(t, _CHINA).strftime("%Y-%m-%d %H:%M:%S")


async def _push(session: aiohttp.ClientSession, reports: list[Report]) -> None:
    """One SmsReport push: a JSON array of receipts to the configured URL."""
    by_url: dict[str, list[dict[str, object]]] = {}
    for report in reports:
        send = report.send
        by_url.setdefault(report.callback, []).append({
            "phone_number": send.to.removeprefix("+86"), "send_time": _china_time(send.t),
            "report_time": _china_time(time.time()),
            "success": report.delivered,
            "err_code": "DELIVERED" if report.delivered else "MK:0001",
            "err_msg": "用户接收成功" if report.delivered else "用户不在服务区",
            "sms_size": "1", "biz_id": send.message_id, "out_id": send.client_ref or "",
        })
    for url, batch in by_url.items():
        async with session.post(url, json=batch) as response:
            await response.read()


_ACTIONS = ("SendSms", "QuerySendDetails")


class _Sent(NamedTuple):
    """An accepted message as QuerySendDetails shows it."""

    biz_id: str
    to: str
    body: str
    t: float
    inbox_at: float | None
    handset: str
    out_id: str | None
    template: str

    @classmethod
    def of(cls, send: SendRecorded, template: str) -> _Sent:
        return cls(send.message_id, send.to, send.body, send.t, send.inbox_at, send.handset,
                   send.client_ref, template)

    def detail(self) -> dict[str, object]:
        """Its SmsSendDetailDTO: status 1 waiting for the receipt, 2 failed, 3 delivered."""
        status, code = {"delivered": (3, "DELIVERED"), "spam": (3, "DELIVERED"),
                        "absent": (2, "MK:0001"), "dropped": (1, "")}[self.handset]
        received = "" if self.inbox_at is None else _china_time(self.inbox_at)
        return {"PhoneNum": self.to.removeprefix("+86"), "SendStatus": status, "ErrCode": code,
                "TemplateCode": self.template, "Content": self.body,
                "SendDate": _china_time(self.t), "ReceiveDate": received,
                "OutId": self.out_id or ""}


def create_app(vendor: VendorMock) -> web.Application:
    """A Dysmsapi-compatible endpoint for one AccessKey."""
    key_id, secret = vendor.credentials["access_key_id"], vendor.credentials["access_key_secret"]
    config = vendor.config
    used_nonces: set[str] = set()
    sent: list[_Sent] = []
    style = _Style()

    async def deliver(reports: list[Report]) -> None:
        await _push(vendor.webhooks.session(), reports)

    reports = vendor.report_queue(deliver, batch=True, interval=1.0)

    async def forward_reply(url: str, borrower: str, sender: str) -> None:
        # SmsUp: replies come as a JSON array too; "TD" (退订) is how borrowers unsubscribe.
        reply = [{"phone_number": borrower.removeprefix("+86"), "content": "TD",
                  "send_time": _china_time(time.time()),
                  "sign_name": sender, "dest_code": "",
                  "sequence_id": vendor.rng.randrange(10**9)}]
        async with vendor.webhooks.session().post(url, json=reply) as response:
            await response.read()

    vendor.forward_reply = forward_reply

    def check_v1(request: web.Request, params: dict[str, str]) -> web.Response | str:
        """The legacy RPC signature; the nonce if it holds, else the vendor's error."""
        if params.get("Action") not in _ACTIONS or params.get("Version") != "2017-05-25":
            return _platform_error(400, "InvalidAction.NotFound",
                                   "Specified api is not found, please check your url and method.")
        if params.get("AccessKeyId") != key_id:
            return _unknown_key()
        if "Signature" not in params:
            return _platform_error(400, "MissingSignature", "Signature is mandatory.")
        if params.get("SignatureMethod") != "HMAC-SHA1":
            return _platform_error(400, "InvalidSignatureMethod",
                                   "Specified signature method is not supported.")
        expected = rpc_signature(secret, request.method, params)
        if not hmac.compare_digest(expected.encode(), params["Signature"].encode(
                "utf-8", "replace")):
            return _signature_mismatch()
        return params.get("SignatureNonce", "")

    def check_acs3(request: web.Request, authorization: str, body: bytes) -> web.Response | str:
        """The V3 signature (the SDKs' default); the nonce if it holds, else the vendor's error."""
        headers = request.headers
        if (headers.get("x-acs-action") not in _ACTIONS
                or headers.get("x-acs-version") != "2017-05-25"):
            return _platform_error(400, "InvalidAction.NotFound",
                                   "Specified api is not found, please check your url and method.")
        fields = dict(part.strip().split("=", 1)
                      for part in authorization.removeprefix(ACS3).split(",") if "=" in part)
        if fields.get("Credential") != key_id:
            return _unknown_key()
        if hashlib.sha256(body).hexdigest() != headers.get("x-acs-content-sha256"):
            return _signature_mismatch()
        expected = acs3_signature(secret, request.method, request.path, request.query, headers,
                                  fields.get("SignedHeaders", "").split(";"))
        if not hmac.compare_digest(expected.encode(), fields.get("Signature", "").encode()):
            return _signature_mismatch()
        return headers.get("x-acs-signature-nonce", "")

    async def rpc(request: web.Request) -> web.Response:
        body = await request.read()
        params = {**request.query, **await form(request)}
        authorization = request.headers.get("Authorization", "")
        checked = (check_acs3(request, authorization, body) if authorization.startswith(ACS3)
                   else check_v1(request, params))
        if isinstance(checked, web.Response):
            return checked
        if not checked:
            return _platform_error(400, "MissingSignatureNonce", "SignatureNonce is mandatory.")
        if checked in used_nonces:
            return _platform_error(400, "SignatureNonceUsed",
                                   "Specified signature nonce was used already.")
        used_nonces.add(checked)
        refused = await vendor.admit(style)
        if refused is not None:
            return refused
        if (request.headers.get("x-acs-action") or params.get("Action")) == "QuerySendDetails":
            return _query(params)
        return await _send(request, params)

    def _query(params: dict[str, str]) -> web.Response:
        """QuerySendDetails: one number's messages of one day (China time), newest first."""
        phone = _MOBILE.match(params.get("PhoneNumber", ""))
        if phone is None:
            return _business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        try:
            day = datetime.strptime(params.get("SendDate", ""), "%Y%m%d").date()
            size, page = int(params.get("PageSize", "")), int(params.get("CurrentPage", ""))
        except ValueError:
            return _platform_error(400, "InvalidParameter",
                                   "SendDate (yyyyMMdd), PageSize and CurrentPage are mandatory.")
        if not 1 <= size <= 50 or page < 1:
            return _platform_error(400, "InvalidParameter",
                                   "PageSize must be 1 to 50 and CurrentPage at least 1.")
        biz_id = params.get("BizId")
        matching = [m for m in reversed(sent) if m.to == "+86" + phone.group(1)
                    and datetime.fromtimestamp(m.t, _CHINA).date() == day
                    and biz_id in (None, "", m.biz_id)]
        vendor.read()
        shown = [m.detail() for m in matching[(page - 1) * size:page * size]]
        return web.json_response({
            "Code": "OK", "Message": "OK", "RequestId": str(uuid.uuid4()).upper(),
            "TotalCount": len(matching), "SmsSendDetailDTOs": {"SmsSendDetailDTO": shown}})

    async def _send(request: web.Request, params: dict[str, str]) -> web.Response:
        if params.get("SignName") != config.sign_name:
            return style.rejected("signature")
        template = config.templates.get(params.get("TemplateCode", ""))
        if template is None:
            return style.rejected("template")
        rejected = vendor.reject(style)
        if rejected is not None:
            return rejected
        try:
            values = json_value((params.get("TemplateParam") or "{}").encode())
        except Junk:
            values = None
        if not isinstance(values, dict):
            return _business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        numbers = [n.strip() for n in params.get("PhoneNumbers", "").split(",") if n.strip()]
        phones = ["+86" + m.group(1) for m in map(_MOBILE.match, numbers) if m]
        if len(numbers) > _MAX_NUMBERS:
            return _business("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
        if not numbers or len(phones) != len(numbers):
            return _business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        text = f"【{config.sign_name}】" + re.sub(
            r"\$\{(\w+)\}", lambda m: str(values.get(m.group(1), "")), template)
        fates = [vendor.fate(phone, text, len(phones)) for phone in phones]
        # Alibaba refuses the whole request when any number is refused.
        refused = next((fate for fate in fates if fate != "ok"), None)
        if refused is not None:
            return _business(*_FATE_CODES[refused])
        biz_id = f"{vendor.rng.randrange(10**17, 10**18)}^0"
        raw = await raw_request(request)
        for count, phone in enumerate(phones, 1):
            if count % _YIELD_EVERY == 0:  # a long batch must not stall the other vendors
                await asyncio.sleep(0)
            send = vendor.accept(message_id=biz_id, to=phone, sender=config.sign_name, body=text,
                                 client_ref=params.get("OutId") or None, request=raw,
                                 reports=reports)
            sent.append(_Sent.of(send, params.get("TemplateCode", "")))
        if vendor.lose_response():
            raise ResponseLost
        return _business("OK", "OK", biz_id)

    app = vendor.application(reports)
    app.middlewares.append(guard(style, passing=(ResponseLost,)))
    app.router.add_route("POST", "/", rpc)
    app.router.add_route("GET", "/", rpc)
    return app
