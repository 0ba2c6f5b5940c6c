"""Helpers for the mock tests: a webhook receiver, deadline polling, and the vendors' signatures
computed here from the vendors' documentation (never by importing the mocks' own code)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from mocks.bank import Changes, Population
from mocks.handsets import HandsetConfig
from mocks.manifest import TOKEN_HEADER, Manifest, MocksConfig, VendorConfig, VendorEndpoint

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 20.0
LEAD = 5.0
SIGN_NAME = "示例银行"
TEMPLATES = {"SMS_T1": "尊敬的${name}，还款${amount}元，ref:${ref}"}
REPORT_PATH = "/aliyun/report"
TOKEN = secrets.token_urlsafe(32)
"""The token of every mock process these tests start (one per test session)."""
CONTROL = {TOKEN_HEADER: TOKEN}
"""Headers of a call to the mocks' control APIs (faults, sends, the ledger's admin)."""


@dataclass(frozen=True)
class Mocks:
    """A running mock process: what it serves (its manifest) and where it journals."""

    manifest: Manifest
    journal_dir: Path
    process: subprocess.Popen[bytes]
    log: Path


def wait_until(probe: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    """Call `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class Received:
    """One request that reached a Receiver."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A tiny threaded HTTP server on 127.0.0.1 that records every request and answers 200
    with `{"code": 0}` (what an Alibaba SmsReport receiver answers; Twilio ignores the body)."""

    def __init__(self, *, keep_alive: bool = False) -> None:
        self.requests: list[Received] = []
        self.connections = 0
        """TCP connections accepted so far (HTTP/1.1 keep-alive with `keep_alive`)."""
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self) -> None:  # once per accepted connection
                super().setup()
                with receiver._lock:
                    receiver.connections += 1

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(Received(
                        self.command, self.path, dict(self.headers.items()), body))
                answer = b'{"code": 0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def on(self, path: str) -> list[Received]:
        """The requests received so far on `path` (query string included), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` requests on `path`, once that many have arrived."""
        wait_until(lambda: len(self.on(path)) >= count, f"{count} request(s) on {path}", timeout)
        return self.on(path)[:count]


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


Switch = Callable[..., None]
"""Puts the given faults in force on one vendor mock (none: clears them)."""


@contextmanager
def fault_switch(mocks: Mocks, vendor: str) -> Iterator[Switch]:
    """A switch for `vendor`'s faults through its control API; the faults are cleared after."""
    control = mocks.manifest.vendors[vendor].control_url
    tls = ssl.create_default_context(cafile=mocks.manifest.ca_bundle)
    with httpx.Client(verify=tls, timeout=5, headers=CONTROL) as client:
        yield lambda **values: client.put(control, json=values).raise_for_status()
        client.delete(control).raise_for_status()


def marker() -> str:
    """A unique tag to find this test's traffic among what other tests sent to the same mock."""
    return uuid.uuid4().hex[:8].upper()


# --- Twilio -------------------------------------------------------------------------------------

def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """`X-Twilio-Signature` as Twilio documents it: base64(HMAC-SHA1(auth_token,
    full URL + every POST param name and value, sorted by name, concatenated))."""
    payload = url
    for name in sorted(params):
        payload += name + params[name]
    mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def twilio_send(client: httpx.Client, vendor: VendorEndpoint, form: dict[str, str],
                auth_token: str | None = None) -> httpx.Response:
    """POST Messages.json for the vendor's account with HTTP Basic auth."""
    sid = vendor.credentials["account_sid"]
    token = vendor.credentials["auth_token"] if auth_token is None else auth_token
    return client.post(f"{vendor.url}/2010-04-01/Accounts/{sid}/Messages.json",
                       data=form, auth=(sid, token))


# --- Alibaba Cloud ------------------------------------------------------------------------------

def _encode(text: str) -> str:
    return quote(text, safe="~")


def aliyun_v1_signature(secret: str, params: dict[str, str], method: str = "POST") -> str:
    """The RPC V1 signature of a request to `/`: HMAC-SHA1 with key secret + '&' over
    METHOD + '&%2F&' + encode(sorted 'k=v' pairs joined by '&'), base64."""
    canonical = "&".join(f"{_encode(k)}={_encode(params[k])}" for k in sorted(params))
    string_to_sign = f"{method}&%2F&" + _encode(canonical)
    mac = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def aliyun_signed(vendor: VendorEndpoint, business: dict[str, str], *,
                  key_id: str | None = None, secret: str | None = None,
                  nonce: str | None = None) -> dict[str, str]:
    """SendSms parameters as a V1-signing client builds them, `Signature` included."""
    params = {
        "Action": "SendSms",
        "Version": "2017-05-25",
        "Format": "JSON",
        "AccessKeyId": key_id or vendor.credentials["access_key_id"],
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **business,
    }
    params["Signature"] = aliyun_v1_signature(
        secret or vendor.credentials["access_key_secret"], params)
    return params


def aliyun_post(client: httpx.Client, vendor: VendorEndpoint,
                params: dict[str, str]) -> httpx.Response:
    """`POST /` with every parameter in the query string and an empty body, as the SDK does."""
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items())
    return client.post(f"{vendor.url}/?{query}")


def aliyun_send(client: httpx.Client, vendor: VendorEndpoint, business: dict[str, str], *,
                key_id: str | None = None, secret: str | None = None,
                nonce: str | None = None) -> httpx.Response:
    """Sign SendSms and post it."""
    params = aliyun_signed(vendor, business, key_id=key_id, secret=secret, nonce=nonce)
    return aliyun_post(client, vendor, params)


def template_param(**values: str) -> str:
    """TemplateParam: a JSON string, as the SDK sends it."""
    return json.dumps(values, ensure_ascii=False)


# --- Vonage -------------------------------------------------------------------------------------

def vonage_sig(secret: str, params: dict[str, str], digest: str = "md5") -> str:
    """`sig` as Vonage documents signing: hex HMAC (md5 by default) of `&key=value` for every
    parameter sorted by key, with `&` and `=` inside values replaced by `_`."""
    text = "".join(f"&{k}={params[k].replace('&', '_').replace('=', '_')}" for k in sorted(params))
    return hmac.new(secret.encode(), text.encode(), digest).hexdigest()


# --- Tencent Cloud ------------------------------------------------------------------------------

def tencent_tc3_headers(secret_id: str, secret_key: str, host: str, body: bytes, *,
                        timestamp: int | None = None, service: str = "sms") -> dict[str, str]:
    """Headers of a signed SendSms request as Tencent documents TC3-HMAC-SHA256: content-type
    and host signed, the key derived from `TC3`+SecretKey through date, service, tc3_request."""
    stamp = int(time.time()) if timestamp is None else timestamp
    date = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
    canonical = (f"POST\n/\n\ncontent-type:application/json\nhost:{host}\n\n"
                 f"content-type;host\n{hashlib.sha256(body).hexdigest()}")
    scope = f"{date}/{service}/tc3_request"
    to_sign = (f"TC3-HMAC-SHA256\n{stamp}\n{scope}\n"
               f"{hashlib.sha256(canonical.encode()).hexdigest()}")
    key = hmac.new(f"TC3{secret_key}".encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, service.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Host": host, "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11", "X-TC-Timestamp": str(stamp),
            "X-TC-Region": "ap-guangzhou",
            "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
                             f"SignedHeaders=content-type;host, Signature={signature}"}


# --- The mock process ---------------------------------------------------------------------------

def _log_tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""


@contextmanager
def running_mocks(workdir: Path, report_url: str, *, inbound_url: str | None = None,
                  handsets: HandsetConfig | None = None, seed: int = 7, lead: float = LEAD,
                  population: Population | None = None,
                  changes: Changes | None = None, app: bool = False) -> Iterator[Mocks]:
    """Write a MocksConfig, start the mock process, wait for its manifest; stop it afterwards.
    With `app`, the ledger serves the borrower app's API too."""
    journal_dir = workdir / "journal"
    config = MocksConfig(
        seed=seed, window=WINDOW, lead=lead, journal_dir=str(journal_dir),
        population=population or Population(), changes=changes or Changes(),
        handsets=handsets or HandsetConfig(), token=TOKEN, app=app,
        vendors={
            "twilio": VendorConfig(kind="twilio", inbound_url=inbound_url),
            "aliyun": VendorConfig(kind="aliyun", sign_name=SIGN_NAME, templates=TEMPLATES,
                                   report_url=report_url, inbound_url=inbound_url),
            "sns": VendorConfig(kind="sns"),
            "vonage": VendorConfig(kind="vonage", report_url=report_url, inbound_url=inbound_url),
            "tencent": VendorConfig(kind="tencent", sign_name=SIGN_NAME,
                                    templates={"1234567": "尊敬的{1}，还款{2}元，ref:{3}"},
                                    report_url=report_url, inbound_url=inbound_url),
        })
    with serving(workdir, config) as mocks:
        yield mocks


@contextmanager
def serving(workdir: Path, config: MocksConfig) -> Iterator[Mocks]:
    """The mock process serving `config` (its files in `workdir`) until the block ends."""
    config_path, manifest_path = workdir / "mocks.json", workdir / "manifest.json"
    config_path.write_text(config.model_dump_json(), encoding="utf-8")
    log = workdir / "mocks.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mocks", str(config_path), str(manifest_path)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        def manifest_written() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"mock process exited with {process.returncode}:\n{_log_tail(log)}")
            return manifest_path.exists()

        wait_until(manifest_written, "the mock process's manifest", timeout=15)
        manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
        yield Mocks(manifest, Path(config.journal_dir), process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


# --- The ledger ---------------------------------------------------------------------------------

def tick(client: httpx.Client, mocks: Mocks) -> dict[str, str]:
    """POST /admin/ticks, as Locust does: the ledger schedules its next reminder."""
    response = client.post(f"{mocks.manifest.ledger_url}/admin/ticks")
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


def feed(client: httpx.Client, mocks: Mocks, cursor: int = 0,
         limit: int = 500) -> dict[str, Any]:
    """One page of the change feed."""
    response = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/changes",
                          params={"cursor": cursor, "limit": limit})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def feed_entries(client: httpx.Client, mocks: Mocks, cursor: int = 0) -> list[dict[str, Any]]:
    """Every entry the feed shows now after `cursor`, page after page."""
    entries: list[dict[str, Any]] = []
    while True:
        body = feed(client, mocks, cursor)
        entries += body["changes"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return entries


def primary(client: httpx.Client, mocks: Mocks, reminder_id: str) -> dict[str, Any]:
    """The primary record of one reminder."""
    response = client.get(f"{mocks.manifest.ledger_url}/v1/reminders/{reminder_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record
