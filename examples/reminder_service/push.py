"""Push notifications to the bank's app through FCM HTTP v1: an OAuth2 access token for the
service account (google-auth), then `messages:send`, FCM's errors read as retry or give up."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from .channels import ChannelResult, Verdict
from .errors import describe, outcome_unknown
from .messages import push_text, push_title
from .reminder import Reminder
from .settings import ConfigError, PushConfig

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

# FCM's documented advice: retry these with backoff; every other error is for good.
_RETRYABLE = frozenset({429, 500, 503})


class PushChannel:
    def __init__(
        self, config: PushConfig, session: aiohttp.ClientSession, *, timeout: float
    ) -> None:
        try:
            self._credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                config.credentials_file, scopes=[SCOPE]
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"PUSH_CREDENTIALS_FILE {config.credentials_file}: not a service account key"
                f" ({type(exc).__name__}: {exc})"
            ) from None
        self._url = f"{config.url}/v1/projects/{config.project}/messages:send"
        self._session = session
        self._seconds = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(1.0, timeout))
        self._refreshing = asyncio.Lock()

    @property
    def name(self) -> str:
        return "push"

    def reaches(self, reminder: Reminder) -> bool:
        return reminder.device_token is not None

    async def send(self, reminder: Reminder) -> ChannelResult:
        try:
            token = await self._access_token()
        except (google.auth.exceptions.GoogleAuthError, requests.RequestException) as exc:
            return ChannelResult(Verdict.RETRY, detail=f"no access token: {exc}")
        except TimeoutError:
            return ChannelResult(Verdict.RETRY, detail="no access token: timeout")
        message = {
            "message": {
                "token": reminder.device_token,
                "notification": {"title": push_title(), "body": push_text(reminder)},
                "data": {"ref": reminder.ref},
            }
        }
        try:
            async with self._session.post(
                self._url,
                json=message,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._timeout,
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if outcome_unknown(exc):
                # FCM has no lookup: a retry could notify the borrower twice.
                return ChannelResult(Verdict.GIVE_UP, detail=f"{describe(exc)}, may have gone out")
            return ChannelResult(Verdict.RETRY, detail=describe(exc))
        body = _json_object(raw)
        name = body.get("name")
        if status == 200 and isinstance(name, str) and name:
            return ChannelResult(Verdict.SENT, message_id=name)
        detail = f"HTTP {status} {_fcm_error(body)}".rstrip()
        if status == 401:
            self._credentials.token = None  # refused: the next send gets a new one
        if status in _RETRYABLE or status == 401:
            return ChannelResult(Verdict.RETRY, detail=detail)
        # 404 UNREGISTERED (the app is gone) and 400 INVALID_ARGUMENT are this borrower's.
        return ChannelResult(Verdict.GIVE_UP, detail=detail, recipient=status in (400, 404))

    async def _access_token(self) -> str:
        async with self._refreshing:
            if not self._credentials.valid:
                # google-auth refreshes with blocking I/O: in a thread, each request bounded.
                # Awaited to its end under the lock: a deadline over it would leave the thread
                # changing the credentials while a second refresh starts.
                await asyncio.to_thread(self._refresh)
            return str(self._credentials.token)

    def _refresh(self) -> None:
        request = google.auth.transport.requests.Request()

        def bounded(*args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = self._seconds
            return request(*args, **kwargs)

        self._credentials.refresh(bounded)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _fcm_error(body: dict[str, Any]) -> str:
    """FCM's errorCode (UNREGISTERED, QUOTA_EXCEEDED, ...), else the status of Google's error."""
    error = body.get("error")
    if not isinstance(error, dict):
        return ""
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and isinstance(detail.get("errorCode"), str):
            return str(detail["errorCode"])
    status = error.get("status")
    return status if isinstance(status, str) else ""
