"""AWS SNS mock: `Publish` to a phone (query protocol, SigV4, XML) and a LocalStack-style record."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import string
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from aiohttp import web

from mocks.catalogue import pick
from mocks.sends import raw_request
from mocks.vendor import ResponseLost, VendorMock

CREDENTIAL_KEYS = ("access_key_id", "secret_access_key")
_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                   r"\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$")


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """An access key pair in AWS's shape."""
    return {"access_key_id": "AKIA" + pick(rng, string.ascii_uppercase + string.digits, 16),
            "secret_access_key": pick(rng, string.ascii_letters + string.digits + "/+", 40)}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_signature(secret: str, method: str, path: str, query: str,
                    headers: Mapping[str, str], signed: list[str], body: bytes, scope: str,
                    amz_date: str) -> str:
    """Signature Version 4 as AWS computes it (scope: date/region/service/aws4_request)."""
    canonical_query = "&".join(sorted(f"{k}={v}" for k, v in (
        part.split("=", 1) if "=" in part else (part, "") for part in query.split("&") if part)))
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n"
                                for name in signed)
    canonical = "\n".join([method, path or "/", canonical_query, canonical_headers,
                           ";".join(signed), hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _error(status: int, code: str, message: str, kind: str = "Sender") -> web.Response:
    body = (f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return web.Response(status=status, text=body, content_type="text/xml")


class _Style:
    """SNS's way of failing: XML errors; throttling as the query APIs' `Throttling`."""

    def outage(self, status: int) -> web.Response:
        code = "ServiceUnavailable" if status == 503 else "InternalError"
        return _error(status, code, "Service is unavailable" if status == 503
                      else "An internal error occurred", kind="Receiver")

    def throttled(self) -> web.Response:
        return _error(400, "Throttling", "Rate exceeded")


def create_app(vendor: VendorMock) -> web.Application:
    """An SNS-compatible query API for one access key, with LocalStack's SMS record."""
    key_id = vendor.credentials["access_key_id"]
    secret = vendor.credentials["secret_access_key"]
    style = _Style()
    published: dict[str, dict[str, list[dict[str, object]]]] = {}  # region → phone → messages

    def check_signature(request: web.Request, body: bytes) -> web.Response | str:
        """The region the request was signed for, or the error AWS would answer."""
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if match is None:
            return _error(403, "IncompleteSignature", "Missing or malformed Authorization")
        access_key, day, region, service, signed, signature = match.groups()
        if access_key != key_id:
            return _error(403, "InvalidClientTokenId",
                          "The security token included in the request is invalid.")
        headers = {name.lower(): value for name, value in request.headers.items()}
        expected = sigv4_signature(secret, request.method, request.path,
                                   request.rel_url.raw_query_string, headers, signed.split(";"),
                                   body, f"{day}/{region}/{service}/aws4_request",
                                   headers.get("x-amz-date", ""))
        if not hmac.compare_digest(expected, signature):
            return _error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                          "does not match the signature you provided.")
        return region

    async def query_api(request: web.Request) -> web.Response:
        body = await request.read()
        region = check_signature(request, body)
        if isinstance(region, web.Response):
            return region
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if params.get("Action") != "Publish":
            return _error(400, "InvalidAction", f"Could not find operation {params.get('Action')}")
        refused = await vendor.admit(style)
        if refused is not None:
            return refused
        phone, message = params.get("PhoneNumber", ""), params.get("Message", "")
        if not _E164.match(phone) or vendor.fate(phone) != "ok":
            reason = "is not valid to publish to" if vendor.fate(phone) != "barred" \
                else "is opted out"
            return _error(400, "InvalidParameter",
                          f"Invalid parameter: PhoneNumber Reason: {phone} {reason}")
        if not message:
            return _error(400, "InvalidParameter", "Invalid parameter: Message")
        message_id = str(uuid.uuid4())
        attributes = _attributes(params)
        vendor.accept(message_id=message_id, to=phone,
                      sender=attributes.get("AWS.SNS.SMS.SenderID", ""), body=message,
                      client_ref=None, request=await raw_request(request), reports=None)
        published.setdefault(region, {}).setdefault(phone, []).append({
            "PhoneNumber": phone, "TopicArn": None, "SubscriptionArn": None,
            "MessageId": message_id, "Message": message,
            "MessageAttributes": {name: {"DataType": "String", "StringValue": value}
                                  for name, value in attributes.items()},
            "MessageStructure": None, "Subject": None})
        if vendor.lose_response():
            raise ResponseLost
        return web.Response(text=(
            f'<PublishResponse xmlns="{_XMLNS}"><PublishResult><MessageId>{message_id}'
            f"</MessageId></PublishResult><ResponseMetadata><RequestId>{uuid.uuid4()}"
            "</RequestId></ResponseMetadata></PublishResponse>"), content_type="text/xml")

    async def sms_messages(request: web.Request) -> web.Response:
        region = request.query.get("region", "us-east-1")
        messages = published.get(region, {})
        phone = request.query.get("phoneNumber")
        if phone:
            messages = {phone: messages.get(phone, [])}
        return web.json_response({"sms_messages": messages, "region": region})

    app = vendor.application()
    app.router.add_post("/", query_api)
    app.router.add_get("/_aws/sns/sms-messages", sms_messages)
    return app


def _attributes(params: Mapping[str, str]) -> dict[str, str]:
    """`MessageAttributes.entry.N.Name` / `.Value.StringValue` pairs as a name → value map."""
    names = {key.split(".")[2]: value for key, value in params.items()
             if re.fullmatch(r"MessageAttributes\.entry\.\d+\.Name", key)}
    return {name: params.get(f"MessageAttributes.entry.{n}.Value.StringValue", "")
            for n, name in names.items()}
