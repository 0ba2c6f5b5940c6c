"""Push service mock (FCM HTTP v1): OAuth2 tokens for a service account, `messages:send`, FCM's
own errors (UNREGISTERED, QUOTA_EXCEEDED, UNAVAILABLE).

Each run has its own service account (an RSA key made at start), written where Google's
libraries read it (`push-service-account.json` in the run folder); its `token_uri` is this
mock's `POST /token`, which grants access tokens for JWTs signed with that key. A send must
carry one as `Authorization: Bearer ...` and target one device token; a token the bank says is
stale (its app was removed), or that is nobody's, is UNREGISTERED, as FCM answers.

Every call is journaled as a `VendorCall` of vendor `push`: a send `accepted`, `rejected` (the
request's own fault: credentials, project, message, token) or `refused` (the faults
`unavailable` and `quota`); a call that sends nothing is a `read` (a token grant, whatever its
answer, and a `validate_only` send).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.journal import FaultTouched, MockFaultsChanged, VendorCall
from mocks.catalogue import pick
from mocks.channels import ChannelDeps
from mocks.control import PushFaults, fault_routes
from mocks.guard import Junk, guard, json_value
from mocks.guard import form as read_form
from mocks.manifest import ChannelEndpoint
from mocks.paths import is_own
from mocks.private import write_private
from mocks.sends import raw_request

CREDENTIAL_KEYS = ()
VALUES = ("project", "credentials_file")

NAME = "push"
"""The mock's name in the journal (`VendorCall.vendor`, `FaultTouched.mock`) and the record."""

CREDENTIALS_FILE = "push-service-account.json"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
"""Google's token endpoint: the audience Google's libraries sign into every grant, whatever
the file's token_uri says; Google accepts it, and so does the mock."""
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3600
"""Seconds an access token is good for, and the longest a grant's JWT may live (exp - iat)."""
CLOCK_SKEW = 60
"""Seconds of clock difference allowed in a grant's iat and exp."""
QUOTA_RETRY_AFTER = 1
"""Retry-After of QUOTA_EXCEEDED, in seconds: short, as a run's time is (FCM's advice is a
minute, and the Firebase Admin SDK waits it out, four times over, before it raises)."""
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
MAX_TOKEN = 4096
"""Characters of the longest device token taken (FCM's are some 160)."""

# A device token as FCM issues them: an instance id, a colon, the key, URL-safe base64 both.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+:[A-Za-z0-9_-]+")
_REQUEST_FIELDS = frozenset({"message", "validate_only"})
_TARGETS = ("token", "fid", "topic", "condition")
_MESSAGE_FIELDS = frozenset({"name", "data", "notification", "android", "webpush", "apns",
                             "fcm_options", *_TARGETS})
_NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
_PLATFORM_FIELDS = ("android", "webpush", "apns", "fcm_options")
# Data keys FCM keeps for itself.
_RESERVED_KEYS = frozenset({"from", "message_type"})
_RESERVED_PREFIXES = ("google.", "gcm.")
# The canonical error code of each HTTP status Google answers with.
_STATUS_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

Outcome = Literal["accepted", "read", "rejected", "refused"]


def _error(status: int, message: str, fcm_code: str | None = None,
           headers: Mapping[str, str] | None = None) -> web.Response:
    """An error in Google's shape, with FCM's own error code in its details when it has one."""
    error: dict[str, Any] = {"code": status, "message": message,
                             "status": _STATUS_CODES.get(status, "INVALID_ARGUMENT"
                                                         if status < 500 else "INTERNAL")}
    if fcm_code is not None:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": fcm_code}]
    return web.json_response({"error": error}, status=status, headers=headers)


def _grant_error(error: str, description: str) -> web.Response:
    """A refusal of Google's OAuth2 token endpoint."""
    return web.json_response({"error": error, "error_description": description}, status=400)


class _Style:
    """What the guard answers junk with: Google's error shape."""

    def junk(self, status: int, reason: str) -> web.Response:
        return _error(status, reason)


class _Refused(Exception):
    """The message is refused with `response` (the request's own fault)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _invalid(message: str, fcm_code: str | None = None) -> _Refused:
    return _Refused(_error(400, message, fcm_code))


@dataclass(frozen=True)
class ServiceAccount:
    """The run's service account: its key, and the file Google's libraries read."""

    project: str
    client_email: str
    client_id: str
    key_id: str
    key: rsa.RSAPrivateKey

    @classmethod
    def make(cls, rng: random.Random) -> ServiceAccount:
        """A fresh key (unpredictable) under ids drawn from `rng`."""
        project = "notifychaos-" + pick(rng, string.ascii_lowercase + string.digits, 6)
        suffix = pick(rng, string.ascii_lowercase + string.digits, 5)
        return cls(project=project,
                   client_email=f"firebase-adminsdk-{suffix}@{project}.iam.gserviceaccount.com",
                   client_id=pick(rng, string.digits, 21),
                   key_id=pick(rng, "0123456789abcdef", 40),
                   key=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def file(self, token_uri: str) -> str:
        """The service-account JSON file, as the Firebase console gives it."""
        pem = self.key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return json.dumps({"type": "service_account", "project_id": self.project,
                           "private_key_id": self.key_id, "private_key": pem,
                           "client_email": self.client_email, "client_id": self.client_id,
                           "token_uri": token_uri}, indent=2)


@dataclass
class _Call:
    """What one API call came to, as its handler noted it (by default: by its status)."""

    outcome: Outcome | None = None


_CALL: ContextVar[_Call] = ContextVar("push_call")


@dataclass
class _Push:
    """The push service of one run: its account, the access tokens granted, its faults."""

    deps: ChannelDeps
    account: ServiceAccount
    rng: random.Random
    token_uri: str = ""
    faults: PushFaults = field(default_factory=PushFaults)
    _tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (monotonic)

    def switch(self, faults: PushFaults) -> None:
        self.faults = faults
        self.deps.journal.write(MockFaultsChanged(
            mock=NAME, faults=faults.model_dump(mode="json", exclude_defaults=True)))

    def touched(self, switch: str, **detail: Any) -> None:
        self.deps.journal.write(FaultTouched(mock=NAME, switch=switch, detail=detail))

    async def grant(self, request: web.Request) -> web.Response:
        """`POST /token`: an access token for a JWT-bearer grant signed by the account's key."""
        _CALL.get(_Call()).outcome = "read"
        try:
            fields = await read_form(request)
        except Junk as exc:
            return _grant_error("invalid_request", exc.reason)
        grant_type = fields.get("grant_type")
        if grant_type != JWT_BEARER:
            return _grant_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = fields.get("assertion")
        if not assertion:
            return _grant_error("invalid_request", "Missing required parameter: assertion")
        refusal = self._check_assertion(assertion)
        if refusal is not None:
            return _grant_error("invalid_grant", refusal)
        now = time.monotonic()
        # Granted in expiry order: the expired are the oldest, and forgotten.
        while self._tokens and next(iter(self._tokens.values())) < now:
            del self._tokens[next(iter(self._tokens))]
        token = "ya29." + secrets.token_urlsafe(96)
        self._tokens[token] = now + TOKEN_LIFETIME
        return web.json_response({"access_token": token, "expires_in": TOKEN_LIFETIME,
                                  "token_type": "Bearer"})

    def _check_assertion(self, assertion: str) -> str | None:
        """Why the grant's JWT is refused (Google's words), or None if it is good."""
        account = self.account
        try:
            kid = jwt.get_unverified_header(assertion).get("kid", account.key_id)
            claims = jwt.decode(
                assertion, account.key.public_key(), algorithms=["RS256"],
                audience=[self.token_uri, GOOGLE_TOKEN_URI], issuer=account.client_email,
                leeway=CLOCK_SKEW, options={"require": ["iss", "aud", "iat", "exp"]})
        except (jwt.InvalidSignatureError, jwt.DecodeError):
            return "Invalid JWT Signature."
        except jwt.InvalidAudienceError:
            return f"Invalid JWT: Failed audience check. The right audience is {self.token_uri}"
        except jwt.InvalidIssuerError:
            return "Invalid grant: account not found"
        except jwt.InvalidTokenError as exc:  # expired, not yet valid, a claim missing
            return f"Invalid JWT: {exc}"
        if kid != account.key_id:
            return "Invalid JWT Signature."
        if claims["exp"] - claims["iat"] > TOKEN_LIFETIME + CLOCK_SKEW:
            return ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                    "reasonable timeframe. Check your iat and exp values in the JWT claim.")
        return None

    async def send(self, request: web.Request) -> web.Response:
        """`POST /v1/projects/{project}/messages:send`."""
        refusal = await self._admit()
        if refusal is not None:
            return refusal
        try:
            self._authorize(request)
            token, title, text, data, validate_only = self._message(
                json_value(await request.read()))
            self._check_token(token)
        except _Refused as exc:
            return exc.response
        if validate_only:
            _CALL.get(_Call()).outcome = "read"
            return web.json_response(
                {"name": f"projects/{self.account.project}/messages/fake_message_id"})
        message_id = f"0:{self.rng.randrange(10**15, 10**16)}%{self.rng.getrandbits(64):016x}"
        self.deps.record.add(channel="push", vendor=NAME, message_id=message_id, to=token,
                             body=f"{title}\n{text}", client_ref=data.get("ref"),
                             request=await raw_request(request), handset="delivered")
        return web.json_response(
            {"name": f"projects/{self.account.project}/messages/{message_id}"})

    async def _admit(self) -> web.Response | None:
        """Apply the latency, then the refusal faults: a response to send instead, or None."""
        if self.faults.latency:
            self.touched("latency", seconds=self.faults.latency)
            await asyncio.sleep(self.faults.latency)
        faults = self.faults  # as in force once the delay is over
        if faults.unavailable:
            self.touched("unavailable")
            _CALL.get(_Call()).outcome = "refused"
            return _error(503, "The service is currently unavailable.", "UNAVAILABLE")
        if faults.quota:
            self.touched("quota")
            _CALL.get(_Call()).outcome = "refused"
            return _error(429, "Quota exceeded for quota metric 'Send requests' and limit "
                          "'Send requests per minute' of service 'fcm.googleapis.com'.",
                          "QUOTA_EXCEEDED", headers={"Retry-After": str(QUOTA_RETRY_AFTER)})
        return None

    def _authorize(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expiry is None or expiry < time.monotonic():
            raise _Refused(_error(
                401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                headers={"WWW-Authenticate":
                         'Bearer realm="https://accounts.google.com/", error="invalid_token"'}))
        project = request.match_info["project"]
        if project != self.account.project:
            raise _Refused(_error(403, "Permission 'cloudmessaging.messages.create' denied on "
                                  f"resource '//cloudresourcemanager.googleapis.com/projects/"
                                  f"{project}' (or it may not exist)."))

    @staticmethod
    def _message(body: object) -> tuple[str, str, str, dict[str, str], bool]:
        """The target token, title, text, data and validate_only of a send's body, as FCM
        reads them; refused with FCM's INVALID_ARGUMENT if it is not a message to one token."""
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        _known(body, _REQUEST_FIELDS, "")
        validate_only = body.get("validate_only", False)
        if not isinstance(validate_only, bool):
            raise _invalid(f"Invalid value at 'validate_only' (TYPE_BOOL), {validate_only}")
        message = body.get("message")
        if not isinstance(message, dict):
            raise _invalid("Request contains an invalid argument: 'message' is not set.")
        _known(message, _MESSAGE_FIELDS, "message")
        targets = [name for name in _TARGETS if name in message]
        if not targets:
            raise _invalid("Recipient of the message is not set.", "INVALID_ARGUMENT")
        if len(targets) > 1:
            raise _invalid(f"Invalid value at 'message' (oneof), oneof field 'target' is "
                           f"already set. Cannot set '{targets[1]}'")
        if targets[0] != "token":
            # The ledger serves each borrower's registration token, not their installation id.
            raise _invalid(f"message.{targets[0]} is not supported by this mock: send to one "
                           "device token (message.token)")
        token = message["token"]
        if not isinstance(token, str):
            raise _invalid(f"Invalid value at 'message.token' (TYPE_STRING), {token}")
        for name in _PLATFORM_FIELDS:
            if not isinstance(message.get(name, {}), dict):
                raise _invalid(f"Invalid value at 'message.{name}': expected an object")
        notification = message.get("notification", {})
        if not isinstance(notification, dict):
            raise _invalid("Invalid value at 'message.notification': expected an object")
        _known(notification, _NOTIFICATION_FIELDS, "message.notification")
        data = message.get("data", {})
        if not isinstance(data, dict):
            raise _invalid("Invalid value at 'message.data': expected an object")
        for where, values in (("notification", notification), ("data", data)):
            for key, value in values.items():
                if not isinstance(value, str):
                    raise _invalid(f"Invalid value at 'message.{where}.{key}' (TYPE_STRING), "
                                   f"{json.dumps(value)[:40]}")
        for key in data:
            if key in _RESERVED_KEYS or key.startswith(_RESERVED_PREFIXES):
                raise _invalid(f"Invalid data payload key: {key}")
        return (token, notification.get("title", ""), notification.get("body", ""), data,
                validate_only)

    def _check_token(self, token: str) -> None:
        """FCM's answer to a token that is malformed (400) or nobody's app's (404)."""
        if len(token) > MAX_TOKEN or not _TOKEN.fullmatch(token):
            raise _invalid("The registration token is not a valid FCM registration token",
                           "INVALID_ARGUMENT")
        bank = self.deps.bank
        if bank.token_owner(token) is None or bank.stale_token(token):
            raise _Refused(_error(404, "Requested entity was not found.", "UNREGISTERED"))

    @web.middleware
    async def journal_calls(self, request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> web.StreamResponse:
        """Journal every API call with its outcome and latency (the control API is not one)."""
        if is_own(request.path):
            return await handler(request)
        call, began = _Call(), time.monotonic()
        _CALL.set(call)
        response = await handler(request)
        outcome = call.outcome or ("accepted" if response.status < 300 else "rejected")
        self.deps.journal.write(VendorCall(vendor=NAME, status=response.status,
                                           outcome=outcome, latency=time.monotonic() - began))
        return response


def _known(value: dict[str, object], names: frozenset[str], where: str) -> None:
    """Refuse the first field of `value` not among `names`, as Google's JSON parser does."""
    for name in value:
        if name not in names:
            at = f" at '{where}'" if where else ""
            raise _invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: '
                           "Cannot find field.")


@dataclass(frozen=True)
class PushServer:
    """The started push service."""

    endpoint: ChannelEndpoint

    async def close(self) -> None:
        """Nothing of its own to stop: the mock server stops the app it serves."""


async def start(deps: ChannelDeps) -> PushServer:
    """Serve the push service and write its service-account file into the run folder."""
    rng = random.Random(f"{deps.seed}:{NAME}")  # ids only, never the key
    push = _Push(deps, ServiceAccount.make(rng), rng)
    app = web.Application(middlewares=[push.journal_calls, guard(_Style())])
    app.router.add_post("/token", push.grant)
    app.router.add_post("/v1/projects/{project}/messages:send", push.send)
    app.router.add_routes([*fault_routes(PushFaults, lambda: push.faults, push.switch),
                           *deps.record.routes(NAME)])
    url = await deps.serve_http(app)
    push.token_uri = f"{url}/token"
    credentials_file = Path(deps.run_dir) / CREDENTIALS_FILE
    write_private(credentials_file, push.account.file(push.token_uri))
    return PushServer(ChannelEndpoint(
        kind="push", url=url, credentials={}, control_url=f"{url}/__notifychaos/faults",
        values={"project": push.account.project, "credentials_file": str(credentials_file)}))
