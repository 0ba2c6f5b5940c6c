"""The two vendor wire clients, Twilio and Alibaba Cloud SMS, behind one small `Vendor` protocol:
send a reminder, and find out whether the vendor took one whose answer never came."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from .errors import LookupFailed, describe, outcome_unknown
from .messages import sms_text
from .reminder import Reminder
from .settings import AliyunConfig, TwilioConfig, VendorConfig

Refusal = Literal["message", "recipient"]
"""Why a vendor refuses a send for good: this message (its template, signature or content, for
every borrower: a compliance pause) or this recipient (an invalid or unsubscribed number)."""

# Twilio answers 400 for requests no retry will fix; these codes are about the recipient.
_TWILIO_RECIPIENT = frozenset({21211, 21610, 21612, 21614})
_ALIYUN_REFUSALS: dict[str, Refusal] = {
    "isv.SMS_TEMPLATE_ILLEGAL": "message",
    "isv.SMS_SIGNATURE_ILLEGAL": "message",
    "isv.SMS_CONTENT_ILLEGAL": "message",
    "isv.MOBILE_NUMBER_ILLEGAL": "recipient",
    "isv.BLACK_KEY_CONTROL_LIMIT": "recipient",
}

_CHINA = timezone(timedelta(hours=8))  # Alibaba's SendDate is a China date


@dataclass(frozen=True)
class SendResult:
    message_id: str | None = None
    error: str | None = None
    # The request may have reached the vendor (a timeout, a connection lost mid-answer).
    unknown: bool = False
    refusal: Refusal | None = None
    """Set when no retry will get this message through this vendor."""

    @property
    def ok(self) -> bool:
        return self.message_id is not None


class Vendor(Protocol):
    @property
    def name(self) -> str: ...

    async def send(self, reminder: Reminder) -> SendResult: ...

    async def find(self, reminder: Reminder) -> str | None:
        """An id for the message if the vendor took this reminder (its message id, or where the
        vendor's lookup shows none, the reminder's ref), None if it did not; LookupFailed if it
        cannot tell."""
        ...


def build_vendor(
    config: VendorConfig,
    session: aiohttp.ClientSession,
    *,
    timeout: float,
    public_url: str,
    app_link: str = "",
) -> Vendor:
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(1.0, timeout))
    if isinstance(config, TwilioConfig):
        return TwilioVendor(
            config, session, client_timeout, f"{public_url}/dlr/twilio", app_link=app_link
        )
    return AliyunVendor(config, session, client_timeout, app_link=app_link)


class TwilioVendor:
    def __init__(
        self,
        config: TwilioConfig,
        session: aiohttp.ClientSession,
        timeout: aiohttp.ClientTimeout,
        status_callback: str,
        *,
        app_link: str = "",
    ) -> None:
        self._config = config
        self._session = session
        self._timeout = timeout
        self._status_callback = status_callback
        self._app_link = app_link
        self._messages_url = URL(
            f"{config.base_url}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        )
        # Made once: given `auth=`, aiohttp encodes the credentials again on every send.
        self._send_headers = {
            "Authorization": aiohttp.BasicAuth(config.account_sid, config.auth_token).encode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }

    @property
    def name(self) -> str:
        return self._config.name

    async def send(self, reminder: Reminder) -> SendResult:
        config = self._config
        form = {
            "To": reminder.phone,
            "From": config.from_number,
            "Body": sms_text(reminder, self._app_link),
            "StatusCallback": self._status_callback,
        }
        try:
            status, body = await _post(
                self._session,
                self._messages_url,
                self._timeout,
                data=urlencode(form).encode(),  # as aiohttp encodes a dict
                headers=self._send_headers,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult(error=describe(exc), unknown=outcome_unknown(exc))
        sid = body.get("sid")
        if 200 <= status < 300 and isinstance(sid, str) and sid:
            return SendResult(message_id=sid)
        code = body.get("code")
        refusal: Refusal | None = None
        if status == 400:
            refusal = "recipient" if code in _TWILIO_RECIPIENT else "message"
        return SendResult(error=_rejection(status, code), refusal=refusal)

    async def find(self, reminder: Reminder) -> str | None:
        """Look among the newest messages to the borrower's number for this reminder's text."""
        config = self._config
        try:
            async with self._session.get(
                f"{config.base_url}/2010-04-01/Accounts/{config.account_sid}/Messages.json",
                params={"To": reminder.phone, "PageSize": "50"},
                auth=aiohttp.BasicAuth(config.account_sid, config.auth_token),
                timeout=self._timeout,
            ) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise LookupFailed(describe(exc)) from exc
        if response.status != 200 or not isinstance(body, dict):
            raise LookupFailed(_rejection(response.status, None))
        text = sms_text(reminder, self._app_link)
        return next(
            (
                str(message["sid"])
                for message in body.get("messages", [])
                if isinstance(message, dict) and message.get("body") == text
            ),
            None,
        )


class AliyunVendor:
    def __init__(
        self,
        config: AliyunConfig,
        session: aiohttp.ClientSession,
        timeout: aiohttp.ClientTimeout,
        *,
        app_link: str = "",
    ) -> None:
        self._config = config
        self._session = session
        self._timeout = timeout
        self._app_link = app_link

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
            "card_tail": reminder.card_tail,
        }
        if self._app_link:  # the template shows it where it says ${link}
            template_param["link"] = self._app_link
        if reminder.national_id:  # Defect.LEAKS_PII only: a template showing it leaks it
            template_param["national_id"] = reminder.national_id
        try:
            status, body = await self._call(
                "SendSms",
                PhoneNumbers=aliyun_phone(reminder.phone),
                SignName=config.sign_name,
                TemplateCode=config.template_code,
                TemplateParam=json.dumps(template_param, ensure_ascii=False, separators=(",", ":")),
                OutId=reminder.ref,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult(error=describe(exc), unknown=outcome_unknown(exc))
        code = body.get("Code")
        if status == 200 and code == "OK":
            return SendResult(message_id=str(body.get("BizId", "")))
        refusal = _ALIYUN_REFUSALS.get(code) if isinstance(code, str) else None
        return SendResult(error=_rejection(status, code), refusal=refusal)

    async def find(self, reminder: Reminder) -> str | None:
        """QuerySendDetails for today's (China time) sends to the number, matched by OutId."""
        try:
            status, body = await self._call(
                "QuerySendDetails",
                PhoneNumber=aliyun_phone(reminder.phone),
                SendDate=datetime.now(_CHINA).strftime("%Y%m%d"),
                PageSize="50",
                CurrentPage="1",
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LookupFailed(describe(exc)) from exc
        if status != 200 or body.get("Code") != "OK":
            raise LookupFailed(_rejection(status, body.get("Code")))
        dtos = body.get("SmsSendDetailDTOs")
        details = dtos.get("SmsSendDetailDTO", []) if isinstance(dtos, dict) else []
        # A query answers with the message's status, not its BizId; the OutId names it.
        matched = any(d.get("OutId") == reminder.ref for d in details if isinstance(d, dict))
        return reminder.ref if matched else None

    async def _call(self, action: str, **fields: str) -> tuple[int, dict[str, Any]]:
        """One RPC call signed V1 (HMAC-SHA1)."""
        config = self._config
        params = {
            "Action": action,
            "Version": "2017-05-25",
            "Format": "JSON",
            "AccessKeyId": config.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": str(uuid.uuid4()),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **fields,
        }
        params["Signature"] = aliyun_signature(params, config.access_key_secret)
        # Encoded by hand so the wire carries exactly the bytes that were signed.
        url = URL(f"{config.base_url}/?{canonical_query(params)}", encoded=True)
        return await _post(self._session, url, self._timeout)


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
