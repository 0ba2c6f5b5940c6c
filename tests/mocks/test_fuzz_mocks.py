"""Junk sent to every endpoint of every mock (the real mock process): a corpus of known-bad
requests, one hypothesis fuzz per endpoint, and the limits that keep one request from holding
the fleet. Every answer comes within a deadline, is never a 500, never shows a traceback, and
is in the mock's own error style, parsed in its format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from junkkit import (
    CONTROL_ENDPOINTS,
    ENDPOINTS,
    VENDOR_ENDPOINTS,
    Answer,
    Endpoint,
    Header,
    aliyun_target,
    exchange,
    request_bytes,
    sound,
)
from mockkit import CONTROL, SIGN_NAME, Mocks, template_param

FORM = ("Content-Type", b"application/x-www-form-urlencoded")
JSON = ("Content-Type", b"application/json")


def _multipart(boundary: bytes, *parts: bytes, end: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if end else b"")


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


MULTIPART_B = ("Content-Type", b"multipart/form-data; boundary=b")
TO_PART = b'Content-Disposition: form-data; name="To"\r\n\r\n+15005550006'

# Junk any endpoint may get: (what it is, body, headers).
GENERIC: list[tuple[str, bytes, list[Header]]] = [
    ("empty body", b"", []),
    ("form with invalid UTF-8", b"To=%2B15005550006&Body=\xff\xfe\xfd", [FORM]),
    ("latin-1 form declared UTF-8", "Body=café&To=+1".encode("latin-1"),
     [("Content-Type", b"application/x-www-form-urlencoded; charset=utf-8")]),
    ("form in an unknown charset", b"To=1&Body=x",
     [("Content-Type", b"application/x-www-form-urlencoded; charset=klingon")]),
    ("form in UTF-16 with an odd byte", b"T\x00o\x00=\x00\xd8",
     [("Content-Type", b"application/x-www-form-urlencoded; charset=utf-16")]),
    ("form with NUL bytes", b"To=\x00\x00&Body=\x00", [FORM]),
    ("form with 20,000 fields", b"&".join(b"f%d=1" % i for i in range(20_000)), [FORM]),
    ("form field repeated", b"To=%2B1&" * 2000, [FORM]),
    ("multipart without a boundary", b"--x\r\n\r\n", [("Content-Type", b"multipart/form-data")]),
    ("multipart with another boundary", _multipart(b"zzz", TO_PART), [MULTIPART_B]),
    ("multipart cut off", _multipart(b"b", TO_PART, end=False)[:-4], [MULTIPART_B]),
    ("multipart part without a name",
     _multipart(b"b", b"Content-Disposition: form-data\r\n\r\nx"), [MULTIPART_B]),
    ("multipart file field", _multipart(
        b"b", b'Content-Disposition: form-data; name="Body"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello"), [MULTIPART_B]),
    ("multipart unknown transfer encoding", _multipart(
        b"b", b'Content-Disposition: form-data; name="To"\r\n'
        b"Content-Transfer-Encoding: rot13\r\n\r\nx"), [MULTIPART_B]),
    ("multipart broken base64", _multipart(
        b"b", b'Content-Disposition: form-data; name="To"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!*"), [MULTIPART_B]),
    ("multipart in an unknown charset", _multipart(
        b"b", b'Content-Disposition: form-data; name="To"\r\n'
        b"Content-Type: text/plain; charset=klingon\r\n\r\nx"), [MULTIPART_B]),
    ("multipart part with invalid UTF-8", _multipart(
        b"b", b'Content-Disposition: form-data; name="To"\r\n\r\n\xff\xfe'), [MULTIPART_B]),
    ("JSON 100,000 arrays deep", b"[" * 100_000 + b"]" * 100_000, [JSON]),
    ("JSON 50,000 objects deep, unclosed", b'{"a":' * 50_000, [JSON]),
    ("JSON 40 objects deep", _nested(40), [JSON]),
    ("JSON with NaN", b'{"To": NaN, "latency": Infinity}', [JSON]),
    ("JSON with a lone surrogate", b'{"To": "\\ud800", "text": "\\udfff"}', [JSON]),
    ("JSON in invalid UTF-8", b'{"To": "\xff"}', [JSON]),
    ("JSON array", b"[1, 2, 3]", [JSON]),
    ("JSON string", b'"PhoneNumberSet"', [JSON]),
    ("JSON null", b"null", [JSON]),
    ("JSON of 2 MB", b'{"a": "' + b"x" * 2_000_000 + b'"}', [JSON]),
    ("form of 2 MB", b"Body=" + b"x" * 2_000_000, [FORM]),
    ("XML body", b"<?xml version='1.0'?><Publish/>", [("Content-Type", b"application/xml")]),
    ("JSON sent as text/plain", b'{"To": "+15005550006"}', [("Content-Type", b"text/plain")]),
    ("JSON declared a form", b'{"To": "+15005550006"}', [FORM]),
    ("form declared JSON", b"To=%2B15005550006&Body=hi", [JSON]),
    ("content type junk", b"x", [("Content-Type", b";;;===;charset")]),
    ("binary noise", bytes(range(256)) * 8, [("Content-Type", b"application/octet-stream")]),
    ("gzip that is not", b"certainly not gzip", [FORM, ("Content-Encoding", b"gzip")]),
    ("deflate that is not", b"nor deflate", [FORM, ("Content-Encoding", b"deflate")]),
    ("header in invalid UTF-8", b"", [("X-Junk", b"\xff\xfe\xfd")]),
    ("header of 8,000 bytes", b"", [("X-Junk", b"a" * 8000)]),
    ("Expect not UTF-8", b"", [("Expect", b"\x80\xff")]),
    ("an unknown expectation", b"", [("Expect", b"x-wait-for-it")]),
    ("100-continue", b"To=%2B15005550006", [FORM, ("Expect", b"100-continue")]),
]


def _answer(endpoint: Endpoint, mocks: Mocks, body: bytes, headers: list[Header], **options: object
            ) -> Answer:
    answer = endpoint.send(mocks, body, headers, **options)  # type: ignore[arg-type]
    sound(endpoint, answer)
    return answer


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_generic_junk_is_answered_in_style(mocks: Mocks, endpoint: Endpoint) -> None:
    for what, body, headers in GENERIC:
        try:
            _answer(endpoint, mocks, body, headers)
        except AssertionError as failure:
            raise AssertionError(f"{endpoint.name}, {what}: {failure}") from None


@pytest.mark.parametrize("endpoint", VENDOR_ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_a_wrong_method_is_refused_in_style(mocks: Mocks, endpoint: Endpoint,
                                            method: str) -> None:
    answer = _answer(endpoint, mocks, b"", [], method=method)
    if endpoint.mock == "tencent":  # request-level errors come inside a 200
        assert answer.json()["Response"]["Error"]["Code"] == (  # type: ignore[index]
            "UnsupportedProtocol")
    else:
        assert answer.status in (404, 405)


@pytest.mark.parametrize("endpoint", VENDOR_ENDPOINTS, ids=lambda e: e.name)
def test_an_unknown_path_is_refused_in_style(mocks: Mocks, endpoint: Endpoint) -> None:
    for path in ("/nope", "/2010-04-01/Accounts/AC0/Calls.json", "/" + "x" * 5000, "/%FF%00"):
        for method in ("GET", "POST"):
            elsewhere = Endpoint(endpoint.name, endpoint.mock, method, path, endpoint.style)
            answer = _answer(elsewhere, mocks, b"", [("Expect", b"\x80")])
            assert answer.status in (200, 400) if endpoint.mock == "tencent" else (
                answer.status in (400, 404)), (path, answer)
    for mock in ("twilio", "ledger"):
        lost = Endpoint("control", mock, "GET", "/__notifychaos/nope", endpoint.style)
        assert lost.send(mocks, signed=False).status == 401
        found = lost.send(mocks, headers=[(name, value.encode()) for name, value in
                                          CONTROL.items()], signed=False)
        assert found.status == 404 and "error" in found.json(), found  # type: ignore[operator]


@pytest.mark.parametrize("endpoint", VENDOR_ENDPOINTS, ids=lambda e: e.name)
def test_unsigned_junk_is_refused_in_style(mocks: Mocks, endpoint: Endpoint) -> None:
    for what, body, headers in GENERIC[:12]:
        try:
            _answer(endpoint, mocks, body, [*headers, ("Authorization", b"Basic \xff\xfe")],
                    signed=False)
        except AssertionError as failure:
            raise AssertionError(f"{endpoint.name}, {what}: {failure}") from None


def test_broken_framing_is_answered_without_a_500(mocks: Mocks) -> None:
    """Junk below HTTP (a broken chunked body, a request line of 100 KB): aiohttp's parser
    refuses it before any handler (a plain 400), or while the body is read (the mock's style)."""
    chunked = [FORM, ("Transfer-Encoding", b"chunked")]
    for endpoint in ENDPOINTS:
        for body in (b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX\r\n0\r\n\r\n",
                     b"-5\r\nhello\r\n0\r\n\r\n"):
            answer = endpoint.send(mocks, body, chunked, length=False)
            assert answer.status == 400 and b"Traceback" not in answer.body, (endpoint, answer)
        answer = endpoint.send(mocks, query="a=" + "x" * 100_000)
        assert answer.status == 400 and b"Traceback" not in answer.body, (endpoint, answer)


def _by_name(name: str) -> Endpoint:
    return next(e for e in ENDPOINTS if e.name == name)


def _form(**fields: str) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields.items()).encode()


def test_twilio_absurd_values(mocks: Mocks) -> None:
    create, listing = _by_name("twilio create"), _by_name("twilio list")
    too_long = _answer(create, mocks, _form(To="+15005550006", From="+15005550001",
                                            Body="x" * 1601), [FORM]).json()
    assert too_long["code"] == 21617  # type: ignore[index]
    assert _answer(create, mocks, _form(To="+1" * 5000, Body="x"), [FORM]).status == 400
    for query in ("PageSize=-1", "Page=99999999999999", "PageSize=%D9%A3", "Page=" + "9" * 5000,
                  "PageSize=0", "DateSent%3C=%00", "To=%FF%FE"):
        assert _answer(listing, mocks, b"", [], query=query).status in (200, 400), query


def test_vonage_reads_credentials_before_the_body(mocks: Mocks) -> None:
    send = _by_name("vonage send")
    for body in (b"[" * 100_000, b'{"api_key": ', b'{"to": "\\ud800"}', b"[]"):
        unsigned = _answer(send, mocks, body, [JSON], signed=False)
        assert unsigned.status == 200
        assert unsigned.json()["messages"][0]["status"] == "4"  # type: ignore[index]
        signed = _answer(send, mocks, body, [JSON])
        assert signed.json()["messages"][0]["status"] == "2"  # type: ignore[index]
    key = mocks.manifest.vendors["vonage"].credentials["api_key"]
    for sig in ("é" * 32, "\u0660" * 40, "0" * 64):
        answer = _answer(send, mocks, _form(api_key=key, sig=sig, timestamp="1", to="1", text="x",
                                            **{"from": "x"}), [FORM], signed=False)
        assert answer.json()["messages"][0]["status"] == "14"  # type: ignore[index]
    long_text = _answer(send, mocks, _form(to="447700900000", text="x" * 5000,
                                           **{"from": "Bank"}), [FORM]).json()
    assert long_text["messages"][0]["status"] == "3"  # type: ignore[index]


def _aliyun_send(mocks: Mocks, numbers: list[str], template: str | None = None) -> Answer:
    """SendSms signed V1 over every parameter, the numbers and template values posted in a
    form (too long for a request line), the others in the query."""
    rpc = _by_name("aliyun rpc post")
    posted = {"PhoneNumbers": ",".join(numbers),
              "TemplateParam": template_param(name="王", amount="1", ref="X")
              if template is None else template}
    target = aliyun_target(mocks, {"SignName": SIGN_NAME, "TemplateCode": "SMS_T1"}, posted)
    answer = exchange_target(rpc, mocks, target, _form(**posted))
    sound(rpc, answer)
    return answer


def exchange_target(endpoint: Endpoint, mocks: Mocks, target: str, body: bytes) -> Answer:
    """A request to an explicit target (the Alibaba V1 signature lives in the query)."""
    base = endpoint.base(mocks)
    host = base.split("//", 1)[1]
    return exchange(mocks, base, request_bytes(endpoint.method, target, host, [FORM], body))


def test_alibaba_refuses_more_than_1000_numbers_at_once(mocks: Mocks) -> None:
    numbers = [f"139{i:08d}" for i in range(20_000)]
    many = _aliyun_send(mocks, numbers)
    assert (many.status, many.json()["Code"]) == (200, "isv.MOBILE_COUNT_OVER_LIMIT")  # type: ignore[index]
    assert _aliyun_send(mocks, numbers[:1001]).json()["Code"] == (  # type: ignore[index]
        "isv.MOBILE_COUNT_OVER_LIMIT")
    assert _aliyun_send(mocks, numbers[:1000]).json()["Code"] == "OK"  # type: ignore[index]
    for template in ("[" * 100_000, '{"name": NaN}', '"text"', "\ud7ff"):
        answer = _aliyun_send(mocks, numbers[:1], template)
        assert answer.json()["Code"] == "isv.INVALID_JSON_PARAM", template  # type: ignore[index]


def test_alibaba_v3_junk_is_refused_in_style(mocks: Mocks) -> None:
    rpc = _by_name("aliyun rpc post")
    key_id = mocks.manifest.vendors["aliyun"].credentials["access_key_id"]
    acs = [("x-acs-action", b"SendSms"), ("x-acs-version", b"2017-05-25")]
    for authorization in (b"ACS3-HMAC-SHA256 ", b"ACS3-HMAC-SHA256 ===,,,=",
                          "ACS3-HMAC-SHA256 Credential=é,Signature=é".encode(),
                          f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders=;;host;;,"
                          "Signature=zz".encode(),
                          f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders=x-acs-action,"
                          "Signature=é".encode()):
        answer = _answer(rpc, mocks, b"", [*acs, ("Authorization", authorization),
                                           ("x-acs-content-sha256", b"\xc3\xa9")])
        assert answer.status in (400, 404), authorization


def test_alibaba_query_absurd_values(mocks: Mocks) -> None:
    for business in ({"SendDate": "2026-99-99", "PageSize": "1", "CurrentPage": "1"},
                     {"SendDate": "20269999", "PageSize": "1", "CurrentPage": "1"},
                     {"SendDate": "20261201", "PageSize": "9" * 5000, "CurrentPage": "1"},
                     {"SendDate": "20261201", "PageSize": "1", "CurrentPage": "-5"}):
        rpc = _by_name("aliyun rpc get")
        params = {"Action": "QuerySendDetails", "PhoneNumber": "13912345678", **business}
        answer = exchange_target(rpc, mocks, aliyun_target(mocks, params), b"")
        sound(rpc, answer)
        assert answer.status == 400, business


def _tencent(mocks: Mocks, payload: object, headers: list[Header] | None = None) -> Answer:
    return _answer(_by_name("tencent send"), mocks, json.dumps(payload).encode(),
                   [JSON, *(headers or [])])


def test_tencent_absurd_values(mocks: Mocks) -> None:
    app_id = mocks.manifest.vendors["tencent"].credentials["sdk_app_id"]
    base = {"SmsSdkAppId": app_id, "SignName": SIGN_NAME, "TemplateId": "1234567",
            "TemplateParamSet": ["王", "1", "X"]}
    many = _tencent(mocks, base | {"PhoneNumberSet": [f"+86139{i:08d}" for i in range(20_000)]})
    assert many.json()["Response"]["Error"]["Code"] == (  # type: ignore[index]
        "LimitExceeded.PhoneNumberCountLimit")
    for numbers in ("+8613912345678", {"a": 1}, [None, 1, {}, []], [[["x"]]]):
        answer = _tencent(mocks, base | {"PhoneNumberSet": numbers})
        assert answer.status == 200, numbers
    assert _tencent(mocks, base | {"PhoneNumberSet": ["+8613912345678"],
                                   "TemplateParamSet": {"1": "x"}}).status == 200
    for stamp in (b"9" * 5000, "²".encode(), b"-1", b""):
        answer = _tencent(mocks, base, [("X-TC-Timestamp", stamp)])
        assert answer.json()["Response"]["Error"]["Code"].startswith(  # type: ignore[index]
            "AuthFailure"), stamp


def test_sns_absurd_values(mocks: Mocks) -> None:
    publish = _by_name("sns publish")
    for body in (b"Action=Publish&PhoneNumber=%FF%FE&Message=x",
                 b"Action=Publish&PhoneNumber=%2B8613800000001&Message=",
                 b"Action=Publish&PhoneNumber=%2B8613800000001&Message=x"
                 b"&MessageAttributes.entry.1.Name=%00",
                 b"Action=%00%00", b"Action=Publish&" + b"a=%zz&" * 5000):
        answer = _answer(publish, mocks, body, [FORM])
        assert answer.status in (200, 400), body[:60]


@pytest.mark.parametrize("endpoint", [e for e in CONTROL_ENDPOINTS if e.method == "PUT"],
                         ids=lambda e: e.name)
def test_fault_switches_refuse_unbounded_parameters(mocks: Mocks, endpoint: Endpoint) -> None:
    for payload in (b'{"latency": 1e999}', b'{"latency": NaN}', b'{"latency": 301}',
                    b'{"dlr_delay": Infinity}', b'{"lag": 1e308}', b'{"latency": -1}',
                    json.dumps({"invalid_numbers": [str(i) for i in range(10_001)]}).encode(),
                    json.dumps({"barred_numbers": ["1" * 33]}).encode(),
                    b'{"latency": "soon"}', b'{"outage": 200}', b"[" * 100_000):
        answer = _answer(endpoint, mocks, payload, [JSON])
        assert answer.status == 400, payload[:60]
        assert _answer(endpoint, mocks, payload, [JSON], signed=False).status == 401


def test_the_canary_bounds_its_size(mocks: Mocks) -> None:
    canary = _by_name("twilio canary GET")
    for size in ("9" * 5000, "%D9%A3", "-1", "99999999999", "16777217"):
        assert _answer(canary, mocks, b"", [], query=f"bytes={size}").status == 400, size
    assert _answer(canary, mocks, b"", [], query="bytes=3").body == b"..."


def test_a_tick_with_a_due_date_is_refused_and_pages_stay_readable(
        mocks: Mocks, client: httpx.Client) -> None:
    ticks = _by_name("ledger ticks")
    for body in (b'{"due_date": "2026-99-99"}', b'{"due_date": "2026-12-01"}', b"[" * 100_000,
                 b'{"borrower": {"phone": "x"}}', b"{}x"):
        answer = _answer(ticks, mocks, body, [JSON])
        assert answer.status == 400, body[:40]
    assert _answer(ticks, mocks, b"{}", [JSON]).status == 201
    control = mocks.manifest.ledger_control_url
    client.put(control, json={"schema_change": "date_format"}).raise_for_status()
    try:
        page = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/changes")
        assert page.status_code == 200
        assert all(len(c["installment"]["due_date"]) == 10 for c in page.json()["changes"])
    finally:
        client.delete(control).raise_for_status()


def test_ledger_paging_absurd_values(mocks: Mocks) -> None:
    changes = _by_name("ledger changes")
    for query in ("cursor=-1", "cursor=" + "9" * 5000, "limit=0", "limit=1000000000",
                  "cursor=%FF", "limit=NaN", "cursor=1e3"):
        assert _answer(changes, mocks, b"", [], query=query).status == 400, query


# --- Hypothesis: junk built from each endpoint's own parameters ------------------------------

VALUES = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.sampled_from(["", "NaN", "-1", "1e999", "9" * 5000, "+8613800000000", "\u0663", "\x00",
                     "2026-99-99", "[" * 50, "{}", "null", ",,,,", "+" * 100]),
    st.binary(max_size=30).map(lambda raw: raw.decode("latin-1")),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
HEADER_NAMES = st.sampled_from([
    "Authorization", "X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Content-SHA256",
    "x-acs-action", "x-acs-version", "x-acs-signature-nonce", "x-acs-content-sha256",
    "X-Amz-Date", "Content-Encoding", "Accept-Charset", "X-Notifychaos-Token", "Expect"])
HEADER_VALUES = st.one_of(
    st.sampled_from([b"ACS3-HMAC-SHA256 Credential=\xc3\xa9,SignedHeaders=;;;,Signature=",
                     b"TC3-HMAC-SHA256 Credential=x/2026-12-01/sms/tc3_request, SignedHeaders="
                     b"content-type;host, Signature=" + b"0" * 64, b"Basic Og==", b"gzip",
                     b"100-continue", b"UNSIGNED-PAYLOAD", b"9" * 5000]),
    # Header bytes aiohttp's parser lets through (no controls): printable ASCII and obs-text.
    st.binary(max_size=40).map(lambda raw: bytes(b for b in raw if 0x20 <= b < 0x7f or b >= 0x80)
                               .strip()))
CONTENT_TYPES = st.sampled_from([
    None, b"application/json", b"application/x-www-form-urlencoded",
    b"application/x-www-form-urlencoded; charset=latin-1", b"application/json; charset=utf-16",
    b"multipart/form-data", b"multipart/form-data; boundary=b", b"text/plain", b"text/xml",
    b"application/x-www-form-urlencoded; charset=nonsense"])


@st.composite
def junk(draw: st.DrawFn, endpoint: Endpoint) -> tuple[bytes, list[Header], str]:
    """A body, headers and a query string made of the endpoint's own parameter names (and some
    others) with absurd values, framed in any of several ways."""
    names = st.sampled_from(endpoint.fields or ("x",)) | st.text(max_size=12)
    fields = draw(st.dictionaries(names, VALUES, max_size=6))
    framing = draw(st.sampled_from(["form", "json", "raw", "query"]))
    if framing == "json":
        values = draw(st.dictionaries(names, JSON_VALUES | VALUES, max_size=6))
        body = json.dumps(values, ensure_ascii=draw(st.booleans())).encode()
    elif framing == "raw":
        body = draw(st.binary(max_size=300))
    elif framing == "form":
        body = "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='replace')}"
                        for k, v in fields.items()).encode()
    else:
        body = b""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='replace')}"
                     for k, v in (fields.items() if framing == "query" else ()))
    content_type = draw(CONTENT_TYPES)
    headers = [] if content_type is None else [("Content-Type", content_type)]
    headers += draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=3))
    return body, headers, query


def _clear_faults(mocks: Mocks, mock: str) -> None:
    """Switch `mock`'s faults off: a fuzzed PUT may have switched on a real one (a latency, an
    outage) that would change the answers every later request gets from the shared fleet."""
    clear = _by_name(f"{mock} faults DELETE")
    assert clear.send(mocks).status == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_fuzz(mocks: Mocks, endpoint: Endpoint) -> None:
    @settings(max_examples=30)
    @given(junk(endpoint), st.booleans())
    def answers_in_style(request: tuple[bytes, list[Header], str], signed: bool) -> None:
        body, headers, query = request
        try:
            answer = _answer(endpoint, mocks, body, headers, query=query, signed=signed)
        finally:
            if endpoint in CONTROL_ENDPOINTS:
                _clear_faults(mocks, endpoint.mock)
        if not signed and endpoint in CONTROL_ENDPOINTS:
            assert answer.status == 401, answer

    answers_in_style()


@pytest.fixture(autouse=True)
def _the_last_line_never_answered(mocks: Mocks) -> Iterator[None]:
    """After each test: every junk request it sent was handled by a parser, not by the guard's
    catch-all (which logs each failure it turns into an answer before the answer is sent, so
    the log is complete once the test has its answers)."""
    seen = mocks.log.stat().st_size
    yield
    with mocks.log.open("rb") as log:
        log.seek(seen)
        assert b"unexpected failure answering" not in log.read()


def test_without_the_token_control_calls_are_refused(mocks: Mocks, client: httpx.Client) -> None:
    plain = httpx.Client(timeout=5, verify=False)
    with plain:
        for endpoint in (e for e in ENDPOINTS if e.signer.__name__ == "control_signer"):
            url = endpoint.base(mocks) + endpoint.target(mocks)
            answer = plain.request(endpoint.method, url, content=b'{"latency": 1}')
            assert answer.status_code == 401 and "error" in answer.json(), endpoint.name
            wrong = plain.request(endpoint.method, url, headers={
                name: "wrong" for name in CONTROL})
            assert wrong.status_code == 401, endpoint.name
