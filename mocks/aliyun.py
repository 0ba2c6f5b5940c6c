"""Alibaba Cloud Dysmsapi mock: RPC `SendSms` with the V1 HMAC-SHA1 signature, SmsReport pushes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import aiohttp
from aiohttp import web

from mocks.manifest import VendorConfig
from mocks.sends import SendRecord, raw_request

log = logging.getLogger("mocks.aliyun")
_MOBILE = re.compile(r"^(?:\+86|0086|86)?(1\d{10})$")
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


class _Reports:
    """Batches SmsReport items and pushes them as JSON arrays, once a second."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.pending: list[dict[str, object]] = []

    async def pusher(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await asyncio.sleep(1.0)
                if not self.url or not self.pending:
                    continue
                batch, self.pending = self.pending, []
                try:
                    async with session.post(self.url, json=batch) as response:
                        await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    log.info("SmsReport push to %s failed: %s", self.url, exc)


def create_app(name: str, config: VendorConfig, credentials: dict[str, str],
               record: SendRecord, seed: int) -> web.Application:
    """A Dysmsapi-compatible endpoint for one AccessKey, recording sends under vendor `name`."""
    key_id, secret = credentials["access_key_id"], credentials["access_key_secret"]
    used_nonces: set[str] = set()
    reports = _Reports(config.report_url)
    rng = random.Random(seed)

    async def rpc(request: web.Request) -> web.Response:
        params = {**request.query, **{k: str(v) for k, v in (await request.post()).items()}}
        if params.get("Action") != "SendSms" or params.get("Version") != "2017-05-25":
            return _platform_error(400, "InvalidAction.NotFound",
                                   "Specified api is not found, please check your url and method.")
        if params.get("AccessKeyId") != key_id:
            return _platform_error(404, "InvalidAccessKeyId.NotFound",
                                   "Specified access key is not found.")
        if "Signature" not in params:
            return _platform_error(400, "MissingSignature", "Signature is mandatory.")
        if params.get("SignatureMethod") != "HMAC-SHA1":
            return _platform_error(400, "InvalidSignatureMethod",
                                   "Specified signature method is not supported.")
        expected = rpc_signature(secret, request.method, params)
        if not hmac.compare_digest(expected, params["Signature"]):
            return _platform_error(400, "SignatureDoesNotMatch",
                                   "Specified signature is not matched with our calculation.")
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in used_nonces:
            return _platform_error(400, "SignatureNonceUsed",
                                   "Specified signature nonce was used already.")
        used_nonces.add(nonce)
        return await _send(request, params)

    async def _send(request: web.Request, params: dict[str, str]) -> web.Response:
        if params.get("SignName") != config.sign_name:
            return _business("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        template = config.templates.get(params.get("TemplateCode", ""))
        if template is None:
            return _business("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except json.JSONDecodeError:
            return _business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(values, dict):
            return _business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        numbers = [n.strip() for n in params.get("PhoneNumbers", "").split(",") if n.strip()]
        phones = [m.group(1) for m in map(_MOBILE.match, numbers) if m]
        if not numbers or len(phones) != len(numbers):
            return _business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        text = f"【{config.sign_name}】" + re.sub(
            r"\$\{(\w+)\}", lambda m: str(values.get(m.group(1), "")), template)
        biz_id = f"{rng.randrange(10**17, 10**18)}^0"
        out_id = params.get("OutId") or None
        raw = await raw_request(request)
        sent_at = datetime.now(_CHINA).strftime("%Y-%m-%d %H:%M:%S")
        for phone in phones:
            record.add(vendor=name, message_id=biz_id, to="+86" + phone, body=text,
                       client_ref=out_id, request=raw)
            reports.pending.append({
                "phone_number": phone, "send_time": sent_at, "report_time": sent_at,
                "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功",
                "sms_size": "1", "biz_id": biz_id, "out_id": out_id or "",
            })
        return _business("OK", "OK", biz_id)

    async def run_pusher(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(reports.pusher())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = web.Application()
    app.router.add_route("POST", "/", rpc)
    app.router.add_route("GET", "/", rpc)
    app.router.add_routes(record.routes(name))
    app.cleanup_ctx.append(run_pusher)
    return app
