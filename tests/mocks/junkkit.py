"""Junk for the mocks: raw HTTP over a socket with a deadline, every endpoint of the mock process
with the credentials that get a request past its door, and each mock's own error style, checked
by parsing an answer in the vendor's format."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from mockkit import CONTROL, Mocks, aliyun_signed, tencent_tc3_headers

DEADLINE = 5.0
"""Seconds any answer may take, junk or not (no fault is in force while fuzzing)."""

Header = tuple[str, bytes]


@dataclass(frozen=True)
class Answer:
    """What came back: status, headers (lower-case names), body, and how long it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    def json(self) -> object:
        return json.loads(self.body)


def exchange(mocks: Mocks, base: str, raw: bytes) -> Answer:
    """Send `raw` bytes to the mock at `base` on a new connection; the answer, or fail after
    DEADLINE (a hang)."""
    url = urlsplit(base)
    began = time.monotonic()
    sock = socket.create_connection((url.hostname or "", url.port or 80), timeout=DEADLINE)
    if url.scheme == "https":
        tls = ssl.create_default_context(cafile=mocks.manifest.ca_bundle)
        sock = tls.wrap_socket(sock, server_hostname=url.hostname)
    try:
        # Answered (413, 401) and closed before the whole body went: read the answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body = response.read()
        except TimeoutError:
            raise AssertionError(f"no answer within {DEADLINE} s: {raw[:200]!r}") from None
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, body, time.monotonic() - began)
    finally:
        sock.close()


def request_bytes(method: str, target: str, host: str, headers: list[Header], body: bytes,
                  *, length: bool = True) -> bytes:
    """An HTTP/1.1 request as bytes; `Content-Length` unless `length` is False (the caller
    then frames the body itself, e.g. chunked)."""
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: " + host.encode(),
             b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of one mock: where it is, how a caller gets past its authentication with a
    given body, and how its answers look."""

    name: str
    mock: str
    method: str
    path: str
    style: Callable[[Answer], None]
    fields: tuple[str, ...] = ()
    """Parameter names it reads, so junk can carry them with absurd values."""
    json_body: bool = False
    signer: Callable[[Mocks, Endpoint, str, bytes, list[Header]], list[Header]] = field(
        default=lambda mocks, endpoint, target, body, headers: [])

    def base(self, mocks: Mocks) -> str:
        manifest = mocks.manifest
        if self.mock == "ledger":
            return manifest.ledger_url
        if self.mock == "alerts":
            return manifest.alerts_url.removesuffix("/alerts")
        return manifest.vendors[self.mock].url

    def target(self, mocks: Mocks, query: str = "") -> str:
        path = self.path
        if "{sid}" in path:
            path = path.replace("{sid}", mocks.manifest.vendors["twilio"].credentials[
                "account_sid"])
        return path + (f"?{query}" if query else "")

    def send(self, mocks: Mocks, body: bytes = b"", headers: list[Header] | None = None, *,
             query: str = "", signed: bool = True, method: str | None = None,
             length: bool = True) -> Answer:
        """Send junk: `headers` and `body` as given, signed (unless not `signed`) as a client
        holding the mock's credentials would sign exactly these bytes."""
        base = self.base(mocks)
        target = self.target(mocks, query)
        headers = list(headers or [])
        if signed:
            headers += self.signer(mocks, self, target, body, headers)
        raw = request_bytes(method or self.method, target, urlsplit(base).netloc, headers,
                            body, length=length)
        return exchange(mocks, base, raw)


def _basic(user: str, password: str) -> list[Header]:
    return [("Authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode()))]


def twilio_signer(mocks: Mocks, endpoint: Endpoint, target: str, body: bytes,
                  headers: list[Header]) -> list[Header]:
    credentials = mocks.manifest.vendors["twilio"].credentials
    return _basic(credentials["account_sid"], credentials["auth_token"])


def vonage_signer(mocks: Mocks, endpoint: Endpoint, target: str, body: bytes,
                  headers: list[Header]) -> list[Header]:
    credentials = mocks.manifest.vendors["vonage"].credentials
    return _basic(credentials["api_key"], credentials["api_secret"])


def aliyun_target(mocks: Mocks, business: dict[str, str],
                  posted: dict[str, str] | None = None) -> str:
    """`/?...` with SendSms signed V1 for these business parameters and the `posted` ones
    (which the caller sends in a form body instead of the query)."""
    posted = posted or {}
    params = aliyun_signed(mocks.manifest.vendors["aliyun"], business | posted)
    return "/?" + "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}"
                           for k, v in params.items() if k not in posted)


def tencent_signer(mocks: Mocks, endpoint: Endpoint, target: str, body: bytes,
                   headers: list[Header]) -> list[Header]:
    vendor = mocks.manifest.vendors["tencent"]
    host = urlsplit(vendor.url).netloc
    signed = tencent_tc3_headers(vendor.credentials["secret_id"], vendor.credentials["secret_key"],
                                 host, body)
    given = {name.lower() for name, _ in headers}
    return [(name, value.encode()) for name, value in signed.items()
            if name.lower() not in given and name != "Host"]


def sns_signer(mocks: Mocks, endpoint: Endpoint, target: str, body: bytes,
               headers: list[Header]) -> list[Header]:
    vendor = mocks.manifest.vendors["sns"]
    credentials = Credentials(vendor.credentials["access_key_id"],
                              vendor.credentials["secret_access_key"])
    request = AWSRequest(method=endpoint.method, url=vendor.url + target, data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(credentials, "sns", "eu-west-1").add_auth(request)
    given = {name.lower() for name, _ in headers}
    return [(name, str(value).encode()) for name, value in request.headers.items()
            if name.lower() not in given and name.lower() != "host"]


def control_signer(mocks: Mocks, endpoint: Endpoint, target: str, body: bytes,
                   headers: list[Header]) -> list[Header]:
    return [(name, value.encode()) for name, value in CONTROL.items()]


# --- Styles: each asserts an answer is in the mock's own format -----------------------------

def _json_object(answer: Answer) -> dict[str, object]:
    assert "json" in answer.headers.get("content-type", ""), answer
    body = answer.json()
    assert isinstance(body, dict), answer
    return body


def twilio_style(answer: Answer) -> None:
    body = _json_object(answer)
    if answer.status >= 400:
        assert isinstance(body["code"], int) and body["status"] == answer.status, answer
        assert isinstance(body["message"], str) and "more_info" in body, answer


def vonage_style(answer: Answer) -> None:
    body = _json_object(answer)
    if answer.status == 200:
        messages = body["messages"]
        assert isinstance(messages, list) and messages, answer
        assert all(isinstance(m, dict) and isinstance(m["status"], str) for m in messages)
    else:
        assert answer.headers["content-type"].startswith("application/problem+json"), answer
        assert isinstance(body["title"], str) and "type" in body, answer


def aliyun_style(answer: Answer) -> None:
    body = _json_object(answer)
    assert isinstance(body["Code"], str) and isinstance(body["RequestId"], str), answer
    if answer.status >= 400:
        assert {"HostId", "Message", "Recommend"} <= body.keys(), answer
    elif body["Code"] != "OK":
        assert isinstance(body["Message"], str), answer


def tencent_style(answer: Answer) -> None:
    body = _json_object(answer)
    response = body["Response"]
    assert isinstance(response, dict) and isinstance(response["RequestId"], str), answer
    error = response.get("Error")
    if error is not None or answer.status != 200:
        assert isinstance(error, dict) and isinstance(error["Code"], str), answer
        assert isinstance(error["Message"], str), answer
    else:
        assert isinstance(response["SendStatusSet"], list), answer


def sns_style(answer: Answer) -> None:
    assert answer.headers.get("content-type", "").startswith("text/xml"), answer
    root = ElementTree.fromstring(answer.body)
    namespace = "{http://sns.amazonaws.com/doc/2010-03-31/}"
    if answer.status >= 400:
        assert root.tag == namespace + "ErrorResponse", answer
        code = root.find(f"{namespace}Error/{namespace}Code")
        assert code is not None and code.text, answer
        assert root.find(f"{namespace}Error/{namespace}Type") is not None, answer
    else:
        assert root.tag == namespace + "PublishResponse", answer


def sns_record_style(answer: Answer) -> None:
    """LocalStack's record: JSON, and the mocks' own JSON error when refused."""
    body = _json_object(answer)
    assert isinstance(body["error"], str) if answer.status >= 400 else "sms_messages" in body, (
        answer)


def control_style(answer: Answer) -> None:
    """The mocks' own APIs: JSON, and `{"error": ...}` when refused."""
    if answer.status >= 400:
        body = _json_object(answer)
        assert isinstance(body["error"], str | list), answer
    elif answer.status != 204:
        assert answer.headers.get("content-type", "").startswith(
            ("application/json", "application/octet-stream")), answer


TWILIO_FIELDS = ("To", "From", "Body", "StatusCallback", "MessagingServiceSid")
ALIYUN_FIELDS = ("PhoneNumbers", "SignName", "TemplateCode", "TemplateParam", "OutId", "Action",
                 "Version", "SendDate", "PageSize", "CurrentPage", "PhoneNumber", "BizId")
VONAGE_FIELDS = ("api_key", "api_secret", "sig", "timestamp", "to", "from", "text", "type",
                 "client-ref", "callback")
TENCENT_FIELDS = ("PhoneNumberSet", "SmsSdkAppId", "SignName", "TemplateId", "TemplateParamSet",
                  "SessionContext")
SNS_FIELDS = ("Action", "PhoneNumber", "Message", "MessageAttributes.entry.1.Name",
              "MessageAttributes.entry.1.Value.DataType",
              "MessageAttributes.entry.1.Value.StringValue")
FAULT_FIELDS = ("outage", "throttle", "latency", "drop", "response_lost", "invalid_numbers",
                "barred_numbers", "partial", "dlr_delay", "dlr_loss", "dlr_duplicate",
                "dlr_reorder", "lag", "drift", "drift_field", "duplicate", "schema_change")

MESSAGES = "/2010-04-01/Accounts/{sid}/Messages"
VENDOR_ENDPOINTS = (
    Endpoint("twilio create", "twilio", "POST", MESSAGES + ".json", twilio_style,
             TWILIO_FIELDS, signer=twilio_signer),
    Endpoint("twilio list", "twilio", "GET", MESSAGES + ".json", twilio_style,
             ("To", "From", "DateSent", "Page", "PageSize"), signer=twilio_signer),
    Endpoint("twilio fetch", "twilio", "GET", MESSAGES + "/SM0123.json", twilio_style,
             signer=twilio_signer),
    Endpoint("vonage send", "vonage", "POST", "/sms/json", vonage_style, VONAGE_FIELDS,
             signer=vonage_signer),
    Endpoint("aliyun rpc post", "aliyun", "POST", "/", aliyun_style, ALIYUN_FIELDS),
    Endpoint("aliyun rpc get", "aliyun", "GET", "/", aliyun_style, ALIYUN_FIELDS),
    Endpoint("tencent send", "tencent", "POST", "/", tencent_style, TENCENT_FIELDS,
             json_body=True, signer=tencent_signer),
    Endpoint("sns publish", "sns", "POST", "/", sns_style, SNS_FIELDS, signer=sns_signer),
    Endpoint("sns query get", "sns", "GET", "/", sns_style, SNS_FIELDS, signer=sns_signer),
)
MOCK_NAMES = ("twilio", "vonage", "aliyun", "tencent", "sns", "ledger")
CONTROL_ENDPOINTS = tuple(
    Endpoint(f"{mock} faults {method}", mock, method, "/__notifychaos/faults", control_style,
             FAULT_FIELDS, json_body=True, signer=control_signer)
    for mock in MOCK_NAMES for method in ("GET", "PUT", "DELETE"))
OWN_ENDPOINTS = (
    *CONTROL_ENDPOINTS,
    *(Endpoint(f"{mock} sends", mock, "GET", "/__notifychaos/sends", control_style,
               signer=control_signer) for mock in MOCK_NAMES[:-1]),
    *(Endpoint(f"{mock} canary {method}", mock, method, "/__notifychaos/canary", control_style,
               ("bytes",)) for mock in ("twilio", "ledger") for method in ("GET", "POST")),
    Endpoint("sns record", "sns", "GET", "/_aws/sns/sms-messages", sns_record_style,
             ("region", "phoneNumber")),
    Endpoint("ledger changes", "ledger", "GET", "/v1/reminders/changes", control_style,
             ("cursor", "limit")),
    Endpoint("ledger primary", "ledger", "GET", "/v1/reminders/ML-000001-001", control_style),
    Endpoint("ledger ticks", "ledger", "POST", "/admin/ticks", control_style,
             ("due_date", "borrower"), json_body=True, signer=control_signer),
    Endpoint("ledger health", "ledger", "GET", "/healthz", control_style),
    Endpoint("alert sink", "alerts", "POST", "/alerts", control_style, ("alert", "severity"),
             json_body=True),
)
ENDPOINTS = (*VENDOR_ENDPOINTS, *OWN_ENDPOINTS)


def sound(endpoint: Endpoint, answer: Answer) -> None:
    """What every answer to junk must be: fast, no 500, no traceback, in the mock's style."""
    assert answer.elapsed < DEADLINE, answer
    assert answer.status != 500 and answer.status < 600, answer
    assert b"Traceback" not in answer.body, answer
    endpoint.style(answer)
