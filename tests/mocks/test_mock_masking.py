"""The record of sends keeps no secret: every vendor's authorization (Basic auth, signatures,
secrets in a query, a form, a multipart or a JSON body) and the run's token are masked in the
journal; and a call to many recipients is journaled once, not once per recipient."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from mockkit import (
    CONTROL,
    SIGN_NAME,
    TOKEN,
    Mocks,
    aliyun_post,
    aliyun_signed,
    marker,
    template_param,
    tencent_tc3_headers,
    twilio_send,
    vonage_sig,
)

from harness.journal import SendRecorded, read_journal
from mocks.catalogue import all_secret_keys
from mocks.manifest import TOKEN_HEADER
from mocks.sends import MASK, Secrets, mask_header, mask_text

TO = "+8613912345678"


@pytest.fixture(scope="module")
def https(mocks: Mocks) -> Iterator[httpx.Client]:
    """A client of the notifier's kind (no token) that trusts the test CA."""
    tls = ssl.create_default_context(cafile=mocks.manifest.ca_bundle)
    with httpx.Client(verify=tls, timeout=5) as client:
        yield client


def sends_of(mocks: Mocks, ref: str) -> list[SendRecorded]:
    return [s for s in read_journal(mocks.journal_dir).of(SendRecorded)
            if ref in s.body or s.client_ref == ref]


def journal_bytes(mocks: Mocks) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(mocks.journal_dir.glob("*.jsonl")))


def test_masking_keeps_everything_but_the_secret_values() -> None:
    assert mask_text("api_key=k1&api_secret=s3cr3t&to=86138") == (
        "api_key=k1&api_secret=***&to=86138")
    assert mask_text("Signature=a%2Bb%3D&SignatureMethod=HMAC-SHA1&SignatureNonce=n") == (
        "Signature=***&SignatureMethod=HMAC-SHA1&SignatureNonce=n")
    assert mask_text("SIG=abc&sigma=1") == "SIG=***&sigma=1"
    assert mask_text('{"api_key": "k", "api_secret": "a\\"b", "text": "api_secret=x"}') == (
        '{"api_key": "k", "api_secret": "***", "text": "api_secret=x"}')
    multipart = ('--b\r\nContent-Disposition: form-data; name="api_secret"\r\n\r\nhush\r\n'
                 '--b\r\nContent-Disposition: form-data; name="to"\r\n\r\n86138\r\n--b--\r\n')
    assert mask_text(multipart) == multipart.replace("hush", MASK)
    assert mask_text("") == ""


def test_a_vendors_secrets_are_masked_in_every_form_wherever_they_are() -> None:
    credentials = {"account_sid": "AC1", "auth_token": "to/ken+1", "from": "+1555"}
    basic = base64.b64encode(b"AC1:to/ken+1").decode()
    secrets = Secrets.of(credentials, {"auth_token"})
    request: dict[str, object] = {
        "method": "POST", "path": "/to/ken+1", "query": "x=to%2Fken%2B1&y=to%2Fken%2B1",
        "headers": {"X-Note": f"Basic {basic}", "to/ken+1": "1"},
        "body": f'{{"n": ["to/ken+1"], "b": "{quote(basic, safe="")}", "sid": "AC1"}}'}
    before = json.dumps(request)

    assert secrets.mask(request) == {
        "method": "POST", "path": f"/{MASK}", "query": f"x={MASK}&y={MASK}",
        "headers": {"X-Note": f"Basic {MASK}", MASK: "1"},
        "body": f'{{"n": ["{MASK}"], "b": "{MASK}", "sid": "AC1"}}'}
    assert json.dumps(request) == before  # the request given is left as it was
    assert Secrets.of(credentials, set()).mask(request) == request


def test_an_authorization_keeps_its_scheme_only() -> None:
    assert mask_header("Authorization", "Basic QUM6dG9rZW4=") == f"Basic {MASK}"
    assert mask_header("authorization", "TC3-HMAC-SHA256 Credential=AKID/x, Signature=ff") == (
        f"TC3-HMAC-SHA256 {MASK}")
    assert mask_header("Authorization", "opaque") == MASK
    assert mask_header(TOKEN_HEADER.lower(), TOKEN) == MASK
    assert mask_header("X-Amz-Security-Token", "session") == MASK
    assert mask_header("Content-Type", "application/json") == "application/json"


def test_no_vendors_secret_signature_or_the_token_reaches_the_journal(
        mocks: Mocks, https: httpx.Client) -> None:
    vendors, ref = mocks.manifest.vendors, marker()
    # Every request also carries the run's token, as a confused notifier might.
    token = {TOKEN_HEADER: TOKEN}
    signatures: list[str] = []

    twilio = vendors["twilio"]
    form = {"To": TO, "From": twilio.credentials["from"], "Body": f"twilio ref:{ref}"}
    https.headers.update(token)
    try:
        assert twilio_send(https, twilio, form).status_code == 201

        vonage = vendors["vonage"]
        url = f"{vonage.url}/sms/json"
        secret = {"api_key": vonage.credentials["api_key"],
                  "api_secret": vonage.credentials["api_secret"], "to": TO[1:], "from": "BANK"}
        assert https.post(url, data=secret | {"text": f"form ref:{ref}"}).status_code == 200
        assert https.post(url, json=secret | {"text": f"json ref:{ref}"}).status_code == 200
        assert https.post(url, files={"text": (None, f"multipart ref:{ref}")} | {
            key: (None, value) for key, value in secret.items()}).status_code == 200
        signed = {"api_key": vonage.credentials["api_key"], "to": TO[1:], "from": "BANK",
                  "text": f"signed ref:{ref}", "timestamp": "1795890000"}
        signed["sig"] = vonage_sig(vonage.credentials["signature_secret"], signed)
        signatures.append(signed["sig"])
        assert https.post(url, data=signed).json()["messages"][0]["status"] == "0"

        aliyun = vendors["aliyun"]
        params = aliyun_signed(aliyun, {
            "PhoneNumbers": TO[3:], "SignName": SIGN_NAME, "TemplateCode": "SMS_T1",
            "TemplateParam": template_param(name="王", amount="1.00", ref=ref), "OutId": ref})
        signatures.append(params["Signature"])
        assert aliyun_post(https, aliyun, params).json()["Code"] == "OK"

        tencent = vendors["tencent"]
        body = json.dumps({"PhoneNumberSet": [TO], "SmsSdkAppId": tencent.credentials[
            "sdk_app_id"], "SignName": SIGN_NAME, "TemplateId": "1234567",
            "TemplateParamSet": ["王", "1.00", ref], "SessionContext": ref}).encode()
        headers = tencent_tc3_headers(tencent.credentials["secret_id"],
                                      tencent.credentials["secret_key"],
                                      urlsplit(tencent.url).netloc, body)
        signatures.append(headers["Authorization"].rsplit("Signature=", 1)[1])
        answer = https.post(tencent.url + "/", content=body, headers=headers).json()
        assert answer["Response"]["SendStatusSet"][0]["Code"] == "Ok"
    finally:
        del https.headers[TOKEN_HEADER]

    sns = vendors["sns"]
    boto3.client("sns", endpoint_url=sns.url, region_name="ap-southeast-1",
                 aws_access_key_id=sns.credentials["access_key_id"],
                 aws_secret_access_key=sns.credentials["secret_access_key"],
                 config=Config(retries={"total_max_attempts": 1})).publish(
        PhoneNumber=TO, Message=f"sns ref:{ref}")

    sends = sends_of(mocks, ref)
    assert sorted(s.vendor for s in sends) == sorted(
        ["twilio", *["vonage"] * 4, "aliyun", "tencent", "sns"])
    secrets = {f"{name}.{key}": value for name, vendor in vendors.items()
               for key, value in vendor.credentials.items() if key in all_secret_keys()}
    assert {name.split(".")[0] for name in secrets} == set(vendors)  # each has a secret
    sid, auth_token = twilio.credentials["account_sid"], twilio.credentials["auth_token"]
    secrets["twilio basic auth"] = base64.b64encode(f"{sid}:{auth_token}".encode()).decode()
    secrets["token"] = TOKEN
    secrets |= {f"signature {n}": s for n, s in enumerate(signatures)}
    secrets |= {f"signature {n}, quoted": quote(s, safe="") for n, s in enumerate(signatures)}
    recorded = journal_bytes(mocks)
    assert [name for name, value in secrets.items() if value.encode() in recorded] == []
    # A multipart body is journaled as it was sent, but for its secret.
    [multipart] = [s for s in sends if s.body == f"multipart ref:{ref}"]
    sent = str(multipart.request["body"])
    assert f"multipart ref:{ref}" in sent and f'name="api_secret"\r\n\r\n{MASK}\r\n' in sent
    by_vendor = {s.vendor: s.request for s in sends if s.request}
    assert by_vendor["twilio"]["headers"]["Authorization"] == f"Basic {MASK}"
    assert by_vendor["twilio"]["headers"][TOKEN_HEADER] == MASK
    assert by_vendor["tencent"]["headers"]["Authorization"] == f"TC3-HMAC-SHA256 {MASK}"
    assert by_vendor["sns"]["headers"]["Authorization"] == f"AWS4-HMAC-SHA256 {MASK}"
    query = dict(parse_qsl(str(by_vendor["aliyun"]["query"])))
    assert (query["Signature"], query["AccessKeyId"]) == (MASK, params["AccessKeyId"])


def test_a_secret_under_an_unknown_name_or_in_free_text_is_masked(
        mocks: Mocks, https: httpx.Client) -> None:
    vendors, ref = mocks.manifest.vendors, marker()
    twilio, vonage = vendors["twilio"], vendors["vonage"]
    sid, auth_token = twilio.credentials["account_sid"], twilio.credentials["auth_token"]
    basic = base64.b64encode(f"{sid}:{auth_token}".encode()).decode()
    form = {"To": TO, "From": twilio.credentials["from"], "Body": f"twilio ref:{ref}",
            "Memo": f"token {auth_token}, basic {basic}", "Key": quote(auth_token, safe="")}
    assert twilio_send(https, twilio, form).status_code == 201
    api_secret = vonage.credentials["api_secret"]
    signature_secret = vonage.credentials["signature_secret"]
    body = {"api_key": vonage.credentials["api_key"], "api_secret": api_secret, "to": TO[1:],
            "from": "BANK", "text": f"json ref:{ref}",
            "extra": {"signature_secret": [signature_secret], "notes": f"s={api_secret}"}}
    assert https.post(f"{vonage.url}/sms/json", json=body).status_code == 200

    by_vendor = {s.vendor: s.request for s in sends_of(mocks, ref) if s.request}
    assert sorted(by_vendor) == ["twilio", "vonage"]
    recorded = journal_bytes(mocks)
    leaked = {"auth_token": auth_token, "basic": basic, "api_secret": api_secret,
              "signature_secret": signature_secret}
    assert [name for name, value in leaked.items() if value.encode() in recorded] == []
    sent = dict(parse_qsl(str(by_vendor["twilio"]["body"])))
    assert (sent["Memo"], sent["Key"], sent["Body"]) == (
        f"token {MASK}, basic {MASK}", MASK, f"twilio ref:{ref}")
    assert json.loads(str(by_vendor["vonage"]["body"]))["extra"] == {
        "signature_secret": [MASK], "notes": f"s={MASK}"}


def test_the_runs_control_calls_are_not_in_the_record(mocks: Mocks, client: httpx.Client) -> None:
    # The listing of sends is read with the token; it is never a send of its own.
    assert client.get(mocks.manifest.vendors["twilio"].sends_url).status_code == 200
    assert CONTROL[TOKEN_HEADER].encode() not in journal_bytes(mocks)


def test_a_call_to_many_recipients_is_journaled_once(mocks: Mocks, https: httpx.Client) -> None:
    ref = marker()
    numbers = [f"1390000{n:04d}" for n in range(50)]
    aliyun = mocks.manifest.vendors["aliyun"]
    params = aliyun_signed(aliyun, {
        "PhoneNumbers": ",".join(numbers), "SignName": SIGN_NAME, "TemplateCode": "SMS_T1",
        "TemplateParam": template_param(name="王", amount="1.00", ref=ref), "OutId": ref})
    biz_id = aliyun_post(https, aliyun, params).json()["BizId"]

    sends = [s for s in sends_of(mocks, ref) if s.vendor == "aliyun"]
    assert sorted(s.to for s in sends) == sorted(f"+86{n}" for n in numbers)
    [carrier] = [s for s in sends if s.request]
    assert carrier.request_of is None and carrier.message_id == biz_id
    assert {s.request_of for s in sends if s is not carrier} == {biz_id}
    # The request (its 50 numbers) is in the journal once, not 50 times.
    assert journal_bytes(mocks).count(quote(",".join(numbers)).encode()) == 1


def test_each_tencent_recipient_points_at_the_send_with_the_request(
        mocks: Mocks, https: httpx.Client) -> None:
    ref = marker()
    tencent = mocks.manifest.vendors["tencent"]
    numbers = [f"+86139000{n:05d}" for n in range(3)]
    body = json.dumps({"PhoneNumberSet": numbers, "SmsSdkAppId": tencent.credentials[
        "sdk_app_id"], "SignName": SIGN_NAME, "TemplateId": "1234567",
        "TemplateParamSet": ["王", "1.00", ref], "SessionContext": ref}).encode()
    headers = tencent_tc3_headers(tencent.credentials["secret_id"],
                                  tencent.credentials["secret_key"],
                                  urlsplit(tencent.url).netloc, body)
    statuses = https.post(tencent.url + "/", content=body, headers=headers).json()[
        "Response"]["SendStatusSet"]

    sends = sorted((s for s in sends_of(mocks, ref) if s.vendor == "tencent"),
                   key=lambda s: s.seq)
    assert [s.message_id for s in sends] == [status["SerialNo"] for status in statuses]
    first, *others = sends
    assert first.request["body"] == body.decode() and first.request_of is None
    assert [(s.request, s.request_of) for s in others] == [({}, first.message_id)] * 2
