"""The real Toxiproxy server: find it, start it, and drive it through toxiproxy-python.

toxiproxy-python has no timeouts and the server's control API can hang (Shopify/toxiproxy#558),
so every control call here goes through `requests` with a timeout, and every failure becomes a
FaultInjectionError that names the call.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import requests
import toxiproxy.api
from toxiproxy import Toxiproxy as _Client

from harness.errors import FaultInjectionError, StartupError
from harness.processes import ManagedProcess, free_port, poll_until

T = TypeVar("T")
_CLIENT_LOCK = threading.Lock()
SERVER_NAME = "toxiproxy-server"
PROJECT_TOOLS = Path(__file__).resolve().parent.parent / ".tools" / "bin"


class _TimedRequests:
    """Stands in for `requests` inside toxiproxy-python so that no control call waits forever."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return requests.get(url, timeout=self.timeout, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return requests.post(url, timeout=self.timeout, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return requests.delete(url, timeout=self.timeout, **kwargs)


def find_server(explicit: str | None = None) -> Path:
    """The server binary: `explicit`, $NOTIFYCHAOS_TOXIPROXY, the project's tools, or PATH."""
    candidates = [explicit, os.environ.get("NOTIFYCHAOS_TOXIPROXY"),
                  str(PROJECT_TOOLS / SERVER_NAME), shutil.which(SERVER_NAME)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise StartupError(
        "toxiproxy", f"no {SERVER_NAME} found (looked in {PROJECT_TOOLS} and on PATH); "
        "run ./dev setup, or pass --toxiproxy-url of a running server")


def _version_of(url: str) -> str | None:
    try:
        response = httpx.get(f"{url}/version", timeout=1.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return str(json.loads(response.text)["version"])
    except (ValueError, KeyError, TypeError):
        return response.text.strip()  # servers before 2.6 answer in plain text


class ToxiproxyServer:
    """A Toxiproxy server this run started on a free loopback port, with its log."""

    def __init__(self, binary: Path, log_path: Path, ready_timeout: float = 10.0, *,
                 stop_with: contextlib.ExitStack | None = None) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = ManagedProcess(
            "toxiproxy", [str(binary), "-host", "127.0.0.1", "-port", str(port)],
            log_path=log_path)
        # Registered before the wait, so that a signal while it starts still stops it.
        if stop_with is not None:
            stop_with.callback(self.stop)
        # A busy API port does not make the server exit, so readiness is /version answering.
        version = poll_until(lambda: _version_of(self.url), timeout=ready_timeout,
                             watch=self.process)
        if version is None:
            self.process.stop()
            raise StartupError("toxiproxy", f"no answer on {self.url}/version "
                               f"within {ready_timeout:g}s", self.process.log_tail())
        self.version = version

    def stop(self) -> None:
        """Stop the server (its proxies and toxics go with it)."""
        self.process.stop()


@dataclass(frozen=True)
class Link:
    """One proxied link of the topology: clients connect to `listen`, it forwards to `upstream`."""

    name: str
    listen_host: str
    listen_port: int
    upstream: str


class ToxiproxyControl:
    """The control API of one server, through toxiproxy-python, every call bounded in time.

    Links are called by their topology name (`ledger`); the proxy on the server is named
    `prefix` + that name, so that runs sharing a server (or a dead run's leftovers) never
    collide.
    """

    def __init__(self, url: str, timeout: float = 5.0, *, prefix: str = "") -> None:
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise StartupError(
                "toxiproxy", f"expected a URL such as http://127.0.0.1:8474, got {url!r}")
        self.url = url
        self.timeout = timeout
        self.prefix = prefix
        self._host, self._port = parts.hostname, parts.port
        toxiproxy.api.requests = _TimedRequests(timeout)
        self._client = _Client()
        self._links: dict[str, Link] = {}

    def _call(self, what: str, action: Callable[[], T]) -> T:
        # toxiproxy-python keeps the server's address in class attributes: runs in threads of
        # one process (the pytest plugin's) each point it at their own server, one call at a time.
        try:
            with _CLIENT_LOCK:
                self._client.update_api_consumer(self._host, self._port)
                return action()
        except requests.Timeout:
            raise FaultInjectionError(
                f"toxiproxy: {what}: no answer within {self.timeout:g}s from {self.url}") from None
        except Exception as exc:  # the client fails in many shapes: KeyError on a 500, ...
            raise FaultInjectionError(f"toxiproxy: {what}: {type(exc).__name__}: {exc}") from None

    def version(self) -> str:
        """The server's version string (`2.12.0`; `git` for builds without the version ldflags)."""
        raw = self._call("version", self._client.version)
        if raw is None:
            raise FaultInjectionError(f"toxiproxy: version: nothing listens on {self.url}")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            return str(json.loads(text)["version"])
        except (ValueError, KeyError, TypeError):
            return text.strip()

    def create_link(self, name: str, upstream: str) -> Link:
        """A new proxy for link `name` on a free loopback port, forwarding to `upstream`
        host:port."""
        proxy = self._call(f"create proxy {self.prefix}{name}",
                           lambda: self._client.create(upstream=upstream,
                                                       name=self.prefix + name,
                                                       listen="127.0.0.1:0"))
        host, _, port = str(proxy.listen).rpartition(":")
        link = Link(name, host, int(port), upstream)
        self._links[name] = link
        return link

    def _proxy(self, name: str) -> Any:
        proxy = self._call(f"find proxy {self.prefix}{name}",
                           lambda: self._client.get_proxy(self.prefix + name))
        if proxy is None:
            raise FaultInjectionError(
                f"toxiproxy: no proxy named {self.prefix + name!r} on {self.url}")
        return proxy

    def disable(self, name: str) -> None:
        """Take the link down: open connections drop, new ones are refused."""
        proxy = self._proxy(name)
        self._call(f"disable {name}", proxy.disable)

    def enable(self, name: str) -> None:
        """Bring the link back up on the same address."""
        proxy = self._proxy(name)
        self._call(f"enable {name}", proxy.enable)

    def add_toxic(self, link: str, toxic: str, *, type: str, stream: str, toxicity: float,
                  attributes: dict[str, int]) -> None:
        """Add toxic `toxic` of `type` to one direction of `link`."""
        proxy = self._proxy(link)
        self._call(f"add toxic {toxic} to {link}", lambda: proxy.add_toxic(
            name=toxic, type=type, stream=stream, toxicity=toxicity, attributes=attributes))

    def remove_toxic(self, link: str, toxic: str) -> None:
        """Remove toxic `toxic` from `link`."""
        proxy = self._proxy(link)
        removed = self._call(f"remove toxic {toxic} from {link}",
                             lambda: proxy.destroy_toxic(toxic))
        if not removed:
            raise FaultInjectionError(f"toxiproxy: remove toxic {toxic} from {link}: refused")

    def remove_links(self) -> None:
        """Delete every proxy this control created (their toxics go with them)."""
        for name in list(self._links):
            self._call(f"delete proxy {name}", self._proxy(name).destroy)
            del self._links[name]
