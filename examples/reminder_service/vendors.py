"""The two vendor wire clients, Twilio and Alibaba Cloud SMS, behind one small `Vendor` protocol."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from .errors import describe
from .reminder import Reminder
from .settings import AliyunConfig, TwilioConfig, VendorConfig

TWILIO_SIGN = "示例银行"


@dataclass(frozen=True)
class SendResult:
    message_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.message_id is not None


class Vendor(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, reminder: Reminder) -> SendResult: ...


def build_vendor(
    config: VendorConfig, session: aiohttp.ClientSession, *, timeout: float, public_url: str
) -> Vendor:
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(1.0, timeout))
    if isinstance(config, TwilioConfig):
        return TwilioVendor(config, session, client_timeout, f"{public_url}/dlr/twilio")
    return AliyunVendor(config, session, client_timeout)


def twilio_text(reminder: Reminder) -> str:
    return (
        f"【{TWILIO_SIGN}】尊敬的{reminder.name}，您的房贷本期还款{reminder.amount}元"
        f"将于{reminder.due_date}到期，请按时还款。ref:{reminder.ref}"
    )


class TwilioVendor:
    def __init__(
        self,
        config: TwilioConfig,
        session: aiohttp.ClientSession,
        timeout: aiohttp.ClientTimeout,
        status_callback: str,
    ) -> None:
        self._config = config
        self._session = session
        self._timeout = timeout
        self._status_callback = status_callback

    @property
    def name(self) -> str:
        return self._config.name

    async def send(self, reminder: Reminder) -> SendResult:
        config = self._config
        form = {
            "To": reminder.phone,
            "From": config.from_number,
            "Body": twilio_text(reminder),
            "StatusCallback": self._status_callback,
        }
        try:
            status, body = await _post(
                self._session,
                f"{config.base_url}/2010-04-01/Accounts/{config.account_sid}/Messages.json",
                self._timeout,
                data=form,
                auth=aiohttp.BasicAuth(config.account_sid, config.auth_token),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult(error=describe(exc))
        sid = body.get("sid")
        if 200 <= status < 300 and isinstance(sid, str) and sid:
            return SendResult(message_id=sid)
        return SendResult(error=_rejection(status, body.get("code")))


class AliyunVendor:
    def __init__(
        self, config: AliyunConfig, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout
    ) -> None:
        self._config = config
        self._session = session
        self._timeout = timeout

    @property
    def name(self) -> str:
        return self._config.name

    async def send(self, reminder: Reminder) -> SendResult:
        config = self._config
        template_param = {
            "name": reminder.name,
            "amount": reminder.amount,
            "due_date": reminder.due_date,
            "ref": reminder.ref,
        }
        params = {
            "Action": "SendSms",
            "Version": "2017-05-25",
            "Format": "JSON",
            "AccessKeyId": config.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": str(uuid.uuid4()),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "PhoneNumbers": aliyun_phone(reminder.phone),
            "SignName": config.sign_name,
            "TemplateCode": config.template_code,
            "TemplateParam": json.dumps(template_param, ensure_ascii=False, separators=(",", ":")),
            "OutId": reminder.ref,
        }
        params["Signature"] = aliyun_signature(params, config.access_key_secret)
        # Encoded by hand so the wire carries exactly the bytes that were signed.
        url = URL(f"{config.base_url}/?{canonical_query(params)}", encoded=True)
        try:
            status, body = await _post(self._session, url, self._timeout)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult(error=describe(exc))
        code = body.get("Code")
        if status == 200 and code == "OK":
            return SendResult(message_id=str(body.get("BizId", "")))
        return SendResult(error=_rejection(status, code))


def aliyun_phone(phone: str) -> str:
    """Alibaba wants mainland numbers as 11 bare digits and others without the plus."""
    return phone.removeprefix("+86").removeprefix("+")


def percent_encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{percent_encode(key)}={percent_encode(value)}" for key, value in sorted(params.items())
    )


def aliyun_signature(
    params: Mapping[str, str], access_key_secret: str, http_method: str = "POST"
) -> str:
    """RPC signature V1 over every parameter (the caller leaves `Signature` out)."""
    string_to_sign = (
        f"{http_method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    )
    digest = hmac.new(
        f"{access_key_secret}&".encode(), string_to_sign.encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


async def _post(
    session: aiohttp.ClientSession, url: str | URL, timeout: aiohttp.ClientTimeout, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """POST and return the status with the JSON object body, or {} when it is not one."""
    async with session.post(url, timeout=timeout, **kwargs) as response:
        raw = await response.read()
    try:
        body = json.loads(raw)
    except ValueError:
        return response.status, {}
    return response.status, body if isinstance(body, dict) else {}


def _rejection(status: int, code: object) -> str:
    return f"HTTP {status} {code}" if code else f"HTTP {status}"
