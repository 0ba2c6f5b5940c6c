"""The push service mock against Google's own clients: the Firebase Admin SDK sends through it
(its OAuth2 grant from the run's service-account file, FCM HTTP v1 `messages:send`) and meets
each of FCM's errors as the SDK raises them; google-auth is refused a JWT it did not sign with
the account's key. The real mock process, with borrowers' tokens from a Bank of its seed."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import firebase_admin
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import credentials, exceptions, messaging
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account
from hypothesis import given, settings
from hypothesis import strategies as st
from mockkit import CONTROL
from pushkit import JournalTail, Push, push_faults, running_push

from harness.journal import FaultTouched, MockFaultsChanged, SendRecorded, VendorCall
from mocks.bank import Population
from mocks.paths import CANARY_PATH

# The SDK deprecates Message.token for Message.fid (an installation id); FCM still takes tokens,
# and a token is what the ledger serves.
pytestmark = pytest.mark.filterwarnings("ignore:Message.token is deprecated:DeprecationWarning")

SEED = 11
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@pytest.fixture(scope="module")
def push(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Push]:
    population = Population(borrowers=40, app_users=0.8, stale_tokens=0.4)
    with running_push(tmp_path_factory.mktemp("push"), seed=SEED, population=population,
                      reminders=12) as served:
        assert len(served.live) >= 2 and served.stale, "the seed must give both kinds of token"
        yield served


@pytest.fixture
def app(push: Push, monkeypatch: pytest.MonkeyPatch) -> Iterator[firebase_admin.App]:
    """A Firebase app on the run's service account, its messaging pointed at the mock (the
    SDK builds the URL from this class attribute when the app's messaging service is made)."""
    monkeypatch.setattr(messaging._MessagingService, "FCM_URL",
                        push.endpoint.url + "/v1/projects/{0}/messages:send")
    made = firebase_admin.initialize_app(
        credentials.Certificate(push.endpoint.values["credentials_file"]),
        {"projectId": push.endpoint.values["project"], "httpTimeout": 10},
        name=uuid.uuid4().hex)
    try:
        yield made
    finally:
        firebase_admin.delete_app(made)


def _message(token: str, ref: str = "R1", **target: str) -> messaging.Message:
    return messaging.Message(
        token=token, notification=messaging.Notification("还款提醒", "您的房贷本期应还 1234.00 元"),
        data={"ref": ref}, **target)


def _account(push: Push) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(
        Path(push.endpoint.values["credentials_file"]).read_text(encoding="utf-8"))
    return info


def _access_token(push: Push) -> str:
    """An access token granted by the mock to google-auth on the run's service account."""
    creds = service_account.Credentials.from_service_account_info(_account(push),
                                                                  scopes=[SCOPE])
    creds.refresh(Request())
    token: str = creds.token
    return token


def test_the_service_account_file_is_google_s_and_owner_only(push: Push) -> None:
    path = Path(push.endpoint.values["credentials_file"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    info = _account(push)
    assert info["type"] == "service_account"
    assert info["project_id"] == push.endpoint.values["project"]
    assert info["project_id"].startswith("notifychaos-")
    assert info["token_uri"] == push.endpoint.url + "/token"
    assert info["client_email"].endswith(f"@{info['project_id']}.iam.gserviceaccount.com")
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert push.endpoint.credentials == {}
    assert push.endpoint.control_url == push.endpoint.url + "/__notifychaos/faults"


def test_the_sdk_sends_and_the_record_holds_the_message(push: Push,
                                                        app: firebase_admin.App) -> None:
    tail, token = JournalTail(push), push.live[0]
    name = messaging.send(_message(token, ref="REF-SENT"), app=app)
    project = push.endpoint.values["project"]
    assert name.startswith(f"projects/{project}/messages/0:")
    sends = tail.new(SendRecorded)
    assert [(s.channel, s.vendor, s.to, s.client_ref, s.handset) for s in sends] == [
        ("push", "push", token, "REF-SENT", "delivered")]
    send = sends[0]
    assert send.body == "还款提醒\n您的房贷本期应还 1234.00 元"
    assert name == f"projects/{project}/messages/{send.message_id}"
    assert send.inbox_at is not None
    assert send.request["headers"]["Authorization"] == "Bearer ***"  # the access token masked
    assert json.loads(send.request["body"])["message"]["token"] == token
    calls = tail.new(VendorCall)
    # The grant (a read: it sends nothing), then the send.
    assert [(c.vendor, c.status, c.outcome) for c in calls] == [
        ("push", 200, "read"), ("push", 200, "accepted")]


def test_validate_only_records_nothing(push: Push, app: firebase_admin.App) -> None:
    tail = JournalTail(push)
    name = messaging.send(_message(push.live[0]), dry_run=True, app=app)
    assert name == f"projects/{push.endpoint.values['project']}/messages/fake_message_id"
    assert tail.new(SendRecorded) == []
    assert [c.outcome for c in tail.new(VendorCall)] == ["read", "read"]


def test_a_stale_token_and_nobody_s_token_are_unregistered(push: Push,
                                                           app: firebase_admin.App) -> None:
    tail = JournalTail(push)
    with pytest.raises(messaging.UnregisteredError) as stale:
        messaging.send(_message(push.stale[0]), app=app)
    assert stale.value.http_response.status_code == 404
    assert stale.value.code == exceptions.NOT_FOUND
    nobody = push.live[0][:-4] + "zzzz"  # well-formed, but no borrower's
    with pytest.raises(messaging.UnregisteredError):
        messaging.send(_message(nobody), app=app)
    assert tail.new(SendRecorded) == []
    assert [c.outcome for c in tail.new(VendorCall)][-2:] == ["rejected", "rejected"]


@pytest.mark.parametrize(("token", "target", "says"), [
    ("not a token", {}, "not a valid FCM registration token"),
    ("", {"topic": "reminders"}, "not supported by this mock"),
    ("", {"fid": "cKx3zY0qTfO1n2bQmW8eRt"}, "not supported by this mock"),
])
def test_what_fcm_refuses_as_an_invalid_argument(push: Push, app: firebase_admin.App,
                                                 token: str, target: dict[str, str],
                                                 says: str) -> None:
    tail = JournalTail(push)
    message = (_message(token) if token
               else messaging.Message(notification=messaging.Notification("t", "b"), **target))
    with pytest.raises(exceptions.InvalidArgumentError, match=says) as refused:
        messaging.send(message, app=app)
    assert refused.value.http_response.status_code == 400
    assert tail.new(SendRecorded) == []


def test_another_project_is_permission_denied(push: Push, monkeypatch: pytest.MonkeyPatch,
                                              app: firebase_admin.App) -> None:
    monkeypatch.setattr(messaging._MessagingService, "FCM_URL",
                        push.endpoint.url + "/v1/projects/someone-elses/messages:send")
    with pytest.raises(exceptions.PermissionDeniedError):
        messaging.send(_message(push.live[0]), app=app)


def test_quota_is_exceeded_with_a_retry_after(push: Push, app: firebase_admin.App) -> None:
    tail = JournalTail(push)
    with push_faults(push, quota=True), pytest.raises(messaging.QuotaExceededError) as refused:
        messaging.send(_message(push.live[0]), app=app)
    assert refused.value.http_response.status_code == 429
    assert refused.value.http_response.headers["Retry-After"] == "1"
    assert tail.new(SendRecorded) == []
    # The SDK honours Retry-After on a 429 and tries again (four times) before it raises.
    calls = [(c.status, c.outcome) for c in tail.new(VendorCall) if c.status != 200]
    assert calls and set(calls) == {(429, "refused")}
    assert [t.switch for t in tail.new(FaultTouched)] == ["quota"] * len(calls)
    changes = [c.faults for c in tail.new(MockFaultsChanged) if c.mock == "push"]
    assert changes == [{"quota": True}, {}]


def test_an_unavailable_service_is_unavailable(push: Push, app: firebase_admin.App) -> None:
    tail = JournalTail(push)
    with push_faults(push, unavailable=True), pytest.raises(exceptions.UnavailableError):
        messaging.send(_message(push.live[0]), app=app)
    assert tail.new(SendRecorded) == []
    refused = [c for c in tail.new(VendorCall) if c.outcome == "refused"]
    assert refused and all(c.status == 503 for c in refused)  # the SDK retries 503 itself
    assert len([t for t in tail.new(FaultTouched) if t.switch == "unavailable"]) == len(refused)


def test_latency_holds_the_answer(push: Push, app: firebase_admin.App) -> None:
    messaging.send(_message(push.live[1]), app=app)  # the grant, before the clock starts
    tail = JournalTail(push)
    with push_faults(push, latency=1.0):
        began = time.monotonic()
        messaging.send(_message(push.live[1]), app=app)
        assert time.monotonic() - began >= 1.0
    [call] = tail.new(VendorCall)
    assert call.outcome == "accepted" and call.latency >= 1.0
    assert [(t.switch, t.detail) for t in tail.new(FaultTouched)] == [
        ("latency", {"seconds": 1.0})]
    assert len(tail.new(SendRecorded)) == 1


def _other_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_jwt_signed_with_another_key_gets_invalid_grant(push: Push) -> None:
    forged = {**_account(push), "private_key": _other_key_pem()}
    creds = service_account.Credentials.from_service_account_info(forged, scopes=[SCOPE])
    with pytest.raises(auth_exceptions.RefreshError, match="invalid_grant"):
        creds.refresh(Request())


def test_the_grant_checks_issuer_audience_and_expiry(push: Push) -> None:
    info = _account(push)
    now = int(time.time())
    good = {"iss": info["client_email"], "aud": info["token_uri"], "scope": SCOPE,
            "iat": now, "exp": now + 3600}

    def grant(claims: dict[str, object], grant_type: str = "urn:ietf:params:oauth:grant-type:"
              "jwt-bearer", kid: str = info["private_key_id"]) -> httpx.Response:
        assertion = jwt.encode(claims, info["private_key"], algorithm="RS256",
                               headers={"kid": kid})
        return httpx.post(info["token_uri"], timeout=5,
                          data={"grant_type": grant_type, "assertion": assertion})

    answer = grant(good)
    assert answer.status_code == 200, answer.text
    assert answer.json()["expires_in"] == 3600 and answer.json()["token_type"] == "Bearer"
    # Google's own token URI is the audience google-auth signs, whatever the file says.
    assert grant({**good, "aud": "https://oauth2.googleapis.com/token"}).status_code == 200
    assert grant(good, kid="0" * 40).json()["error"] == "invalid_grant"
    for bad in ({"iss": "someone@else.iam.gserviceaccount.com"}, {"aud": "https://elsewhere"},
                {"iat": now - 7200, "exp": now - 3600}, {"exp": now + 7200}):
        refused = grant({**good, **bad})
        assert refused.status_code == 400, bad
        assert refused.json()["error"] == "invalid_grant", bad
    assert grant(good, grant_type="password").json()["error"] == "unsupported_grant_type"


@pytest.fixture(scope="module")
def session(push: Push) -> Iterator[AuthorizedSession]:
    """Plain HTTP as FCM documents it, with google-auth's access tokens from the mock."""
    with AuthorizedSession(service_account.Credentials.from_service_account_info(
            _account(push), scopes=[SCOPE])) as made:
        yield made


def _body(push: Push, **message: object) -> dict[str, object]:
    return {"message": {"token": push.live[0], "notification": {"title": "t", "body": "b"},
                        **message}}


def test_a_send_needs_a_granted_token_for_its_own_project(push: Push,
                                                          session: AuthorizedSession) -> None:
    unknown = httpx.post(push.send_url, json=_body(push), timeout=5,
                         headers={"Authorization": "Bearer ya29.not-granted"})
    assert unknown.status_code == 401
    assert unknown.json()["error"]["status"] == "UNAUTHENTICATED"
    other = push.send_url.replace(push.endpoint.values["project"], "someone-elses")
    denied = session.post(other, json=_body(push), timeout=5)
    assert denied.status_code == 403
    assert denied.json()["error"]["status"] == "PERMISSION_DENIED"
    assert session.post(push.send_url, json=_body(push), timeout=5).status_code == 200


@pytest.mark.parametrize(("message", "says"), [
    ({"tokn": "x"}, 'Unknown name "tokn"'),
    ({"data": {"ref": 7}}, "message.data.ref"),
    ({"data": {"from": "bank"}}, "Invalid data payload key: from"),
    ({"data": {"google.c.a": "1"}}, "Invalid data payload key: google.c.a"),
    ({"notification": {"title": "t", "subtitle": "s"}}, 'Unknown name "subtitle"'),
    ({"topic": "all"}, "oneof field 'target' is already set"),
])
def test_what_google_s_parser_refuses(push: Push, session: AuthorizedSession,
                                      message: dict[str, object], says: str) -> None:
    tail = JournalTail(push)
    refused = session.post(push.send_url, json=_body(push, **message), timeout=5)
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert says in refused.json()["error"]["message"]
    assert tail.new(SendRecorded) == []
    assert [c.outcome for c in tail.new(VendorCall)][-1] == "rejected"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
_FIELDS = st.sampled_from(["token", "topic", "notification", "data", "android", "title", "x"])


def test_any_json_gets_an_answer_in_google_s_shape(push: Push,
                                                   session: AuthorizedSession) -> None:
    @settings(max_examples=40, deadline=None)
    @given(st.dictionaries(st.sampled_from(["message", "validate_only", "x"]),
                           st.dictionaries(_FIELDS, _JSON, max_size=4) | _JSON, max_size=2))
    def check(body: dict[str, object]) -> None:
        answer = session.post(push.send_url, json=body, timeout=5)
        assert answer.status_code in (200, 400, 404), answer.text
        if answer.status_code != 200:
            error = answer.json()["error"]
            assert error["code"] == answer.status_code and error["status"], error

    check()


def test_junk_is_answered_in_google_s_shape(push: Push, session: AuthorizedSession) -> None:
    junk = session.post(push.send_url, data=b"{not json", timeout=5,
                        headers={"Content-Type": "application/json"})
    assert junk.status_code == 400 and junk.json()["error"]["status"] == "INVALID_ARGUMENT"
    nowhere = session.post(push.endpoint.url + "/v1/projects/x/messages:list", timeout=5)
    assert nowhere.status_code == 404 and nowhere.json()["error"]["status"] == "NOT_FOUND"


def test_the_control_api_needs_the_run_s_token(push: Push) -> None:
    control = push.endpoint.control_url
    assert httpx.put(control, json={"quota": True}, timeout=5).status_code == 401
    assert httpx.get(control, timeout=5).status_code == 401
    assert httpx.get(control, headers=CONTROL, timeout=5).json() == {
        "unavailable": False, "quota": False, "latency": 0.0}
    assert httpx.get(push.endpoint.url + CANARY_PATH, timeout=5).status_code == 200
    bad = httpx.put(control, json={"latency": -1}, headers=CONTROL, timeout=5)
    assert bad.status_code == 400
