"""AWS SNS mock: `Publish` to a phone (query protocol, SigV4, XML) and a LocalStack-style record."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import string
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from aiohttp import web

from mocks.catalogue import pick
from mocks.control import Rule
from mocks.guard import guard
from mocks.sends import raw_request
from mocks.vendor import ResponseLost, VendorMock

CREDENTIAL_KEYS = ("access_key_id", "secret_access_key")
SECRET_KEYS = frozenset({"secret_access_key"})
_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                   r"\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$")


def issue_credentials(rng: random.Random) -> dict[str, str]:
    """An access key pair in AWS's shape."""
    return {"access_key_id": "AKIA" + pick(rng, string.ascii_uppercase + string.digits, 16),
            "secret_access_key": pick(rng, string.ascii_letters + string.digits + "/+", 40)}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_query(query: str) -> str:
    """The query string as SigV4 canonicalises it: names and values URI-encoded, then sorted."""
    pairs = sorted((quote(name, safe=""), quote(value, safe=""))
                   for name, value in parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{name}={value}" for name, value in pairs)


def sigv4_signature(secret: str, method: str, path: str, query: str,
                    headers: Mapping[str, str], signed: list[str], body: bytes, scope: str,
                    amz_date: str) -> str:
    """Signature Version 4 as AWS computes it (scope: date/region/service/aws4_request)."""
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n"
                                for name in signed)
    canonical = "\n".join([method, path or "/", canonical_query(query), canonical_headers,
                           ";".join(signed), hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _scope_error(day: str, service: str, amz_date: str) -> str | None:
    """What AWS says of a credential scope that is not this service's, or not of the request's
    day (the region may be any: the mock stands in for every region)."""
    if service != "sns":
        return "Credential should be scoped to correct service: 'sns'. "
    if amz_date[:8] != day:
        return ("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{day}' != '{amz_date[:8]}', from '{amz_date}'.")
    return None


def _xml(status: int, body: str, request_id: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/xml",
                        headers={"x-amzn-RequestId": request_id})


def _error(status: int, code: str, message: str, kind: str = "Sender") -> web.Response:
    request_id = str(uuid.uuid4())
    # A message may quote the request, whose characters XML 1.0 may not allow.
    text = escape(_NOT_XML.sub("\ufffd", message))
    return _xml(status, f'<ErrorResponse xmlns="{_XMLNS}"><Error><Type>{kind}</Type>'
                f"<Code>{code}</Code><Message>{text}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>", request_id)


class _Style:
    """SNS's way of failing: XML errors; throttling as the query APIs' `Throttling`."""

    def outage(self, status: int) -> web.Response:
        code = "ServiceUnavailable" if status == 503 else "InternalError"
        return _error(status, code, "Service is unavailable" if status == 503
                      else "An internal error occurred", kind="Receiver")

    def junk(self, status: int, reason: str) -> web.Response:
        codes = {404: "InvalidAction", 405: "InvalidHttpRequest", 408: "RequestTimeout",
                 413: "RequestEntityTooLarge", 500: "InternalFailure"}
        return _error(status, codes.get(status, "MalformedQueryString"), reason,
                      kind="Receiver" if status >= 500 else "Sender")

    def throttled(self) -> web.Response:
        # SNS's model gives `Throttled` (429) to the SMS-settings and sandbox operations only;
        # Publish answers the query APIs' common `Throttling`, which botocore retries.
        return _error(400, "Throttling", "Rate exceeded")

    def rejected(self, rule: Rule) -> web.Response:
        # Publish's modelled error for a parameter that breaks the account's registrations.
        attribute = "AWS.MM.SMS.TemplateId" if rule == "template" else "AWS.SNS.SMS.SenderID"
        return _error(400, "InvalidParameter", f"Invalid parameter: MessageAttributes Reason: "
                      f"{attribute} is not registered for this origination identity")


def create_app(vendor: VendorMock) -> web.Application:
    """An SNS-compatible query API for one access key, with LocalStack's SMS record."""
    key_id = vendor.credentials["access_key_id"]
    secret = vendor.credentials["secret_access_key"]
    style = _Style()
    published: dict[str, dict[str, list[dict[str, object]]]] = {}  # region → phone → messages

    def check_signature(request: web.Request, body: bytes) -> web.Response | str:
        """The region the request was signed for, or the error AWS would answer."""
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return _error(403, "MissingAuthenticationToken",
                          "Request is missing Authentication Token")
        match = _AUTH.match(authorization)
        if match is None:
            return _error(403, "IncompleteSignature",
                          "The request signature does not conform to AWS standards.")
        access_key, day, region, service, signed, signature = match.groups()
        if access_key != key_id:
            return _error(403, "InvalidClientTokenId",
                          "The security token included in the request is invalid.")
        headers = {name.lower(): value for name, value in request.headers.items()}
        amz_date = headers.get("x-amz-date", "")
        scope_error = _scope_error(day, service, amz_date)
        if scope_error is not None:
            return _error(403, "SignatureDoesNotMatch", scope_error)
        expected = sigv4_signature(secret, request.method, request.path,
                                   request.rel_url.raw_query_string, headers, signed.split(";"),
                                   body, f"{day}/{region}/{service}/aws4_request", amz_date)
        if not hmac.compare_digest(expected, signature):
            return _error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                          "does not match the signature you provided. Check your AWS Secret "
                          "Access Key and signing method. Consult the service documentation "
                          "for details.")
        return region

    async def query_api(request: web.Request) -> web.Response:
        body = await request.read()
        region = check_signature(request, body)
        if isinstance(region, web.Response):
            return region
        # The query protocol takes its parameters from the query string or the form body.
        params = {**request.query,
                  **dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))}
        if params.get("Action") != "Publish":
            return _error(400, "InvalidAction", f"Could not find operation {params.get('Action')}")
        refused = await vendor.admit(style)
        if refused is not None:
            return refused
        phone, message = params.get("PhoneNumber", ""), params.get("Message", "")
        fate = vendor.fate(phone, message)
        if not _E164.match(phone) or fate != "ok":
            # Real SNS accepts a publish to an opted-out phone and only logs the failure; the
            # barred-numbers fault means a refusal, so it takes Publish's modelled error.
            reason = "is opted out" if fate == "barred" else "is not valid to publish to"
            return _error(400, "InvalidParameter",
                          f"Invalid parameter: PhoneNumber Reason: {phone} {reason}")
        if not message:
            return _error(400, "InvalidParameter", "Invalid parameter: Empty message")
        rejected = vendor.reject(style)
        if rejected is not None:
            return rejected
        message_id = str(uuid.uuid4())
        attributes = _attributes(params)
        sender = attributes.get("AWS.SNS.SMS.SenderID", {}).get("StringValue", "")
        vendor.accept(message_id=message_id, to=phone, sender=sender, body=message,
                      client_ref=None, request=await raw_request(request), reports=None)
        published.setdefault(region, {}).setdefault(phone, []).append({
            "PhoneNumber": phone, "TopicArn": None, "SubscriptionArn": None,
            "MessageId": message_id, "Message": message, "MessageAttributes": attributes,
            "MessageStructure": None, "Subject": None})
        if vendor.lose_response():
            raise ResponseLost
        request_id = str(uuid.uuid4())
        return _xml(200, f'<PublishResponse xmlns="{_XMLNS}"><PublishResult><MessageId>'
                    f"{message_id}</MessageId></PublishResult><ResponseMetadata><RequestId>"
                    f"{request_id}</RequestId></ResponseMetadata></PublishResponse>", request_id)

    async def sms_messages(request: web.Request) -> web.Response:
        region = request.query.get("region", "us-east-1")
        messages = published.get(region, {})
        phone = request.query.get("phoneNumber")
        if phone:
            messages = {phone: messages.get(phone, [])}
        return web.json_response({"sms_messages": messages, "region": region})

    app = vendor.application()
    app.middlewares.append(guard(style, passing=(ResponseLost,)))
    app.router.add_post("/", query_api)
    app.router.add_get("/", query_api)
    app.router.add_get("/_aws/sns/sms-messages", sms_messages)
    return app


def _attributes(params: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`MessageAttributes.entry.N.Name` / `.Value.*` as LocalStack records them: name → type and
    value."""
    attributes: dict[str, dict[str, str]] = {}
    for key, name in params.items():
        entry = re.fullmatch(r"(MessageAttributes\.entry\.\d+)\.Name", key)
        if entry is not None:
            value = f"{entry.group(1)}.Value."
            attributes[name] = {field: params[value + field] for field in
                                ("DataType", "StringValue", "BinaryValue")
                                if value + field in params}
    return attributes
