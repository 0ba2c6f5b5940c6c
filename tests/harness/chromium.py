"""Real headless Chromium driven over the DevTools protocol on a pipe, for the HTML report's test.

`--remote-debugging-pipe` speaks NUL-terminated JSON on the browser's fds 3 (in) and 4 (out), so
no websocket library and no TCP port are needed. Every read waits on a deadline; the browser's
whole process group is killed on exit.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

TIMEOUT = 30.0
"""Seconds any one exchange with the browser may take (start, a command, a page load)."""


def chromium_binary() -> str:
    """Debian's chromium; the test skips only where it cannot be installed (no apt-get)."""
    found = shutil.which("chromium")
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("Debian's chromium is not installed and there is no apt-get to install it "
                    "(./dev setup installs it with apt-get where it can)")
    pytest.fail("chromium is not installed: run ./dev setup, which installs Debian's "
                "chromium package with apt-get")


@dataclass(frozen=True)
class Visit:
    """What one page did in the browser: the text it shows, the text of its SVG, the console
    messages and errors it logged, every URL it requested, and its screenshot."""

    text: str
    svg_text: list[str]
    chart_width: float
    console: list[str]
    requests: list[str]
    screenshot: Path


def _high_fd(fd: int) -> int:
    """The same pipe end on a descriptor above 9, so bash's 3< and 4> cannot clobber it (dash
    takes single-digit descriptors only, hence bash)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Chromium:
    """One headless browser for the duration of a `with` block."""

    def __init__(self, profile: Path) -> None:
        self._profile = profile
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._next_id = 0

    def __enter__(self) -> Chromium:
        binary = chromium_binary()
        self._profile.mkdir(parents=True, exist_ok=True)
        browser_in, self._to_browser = os.pipe()
        self._from_browser, browser_out = os.pipe()
        browser_in, browser_out = _high_fd(browser_in), _high_fd(browser_out)
        command = [
            binary, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update",
            "--disable-extensions", "--disable-sync", "--no-first-run",
            "--no-default-browser-check", "--hide-scrollbars",
            # anything that tries the network finds no host, so a leak cannot reach out
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={self._profile}", "--remote-debugging-pipe", "about:blank"]
        with (self._profile / "chromium.log").open("wb") as log:
            self._process = subprocess.Popen(
                ["bash", "-c", f'exec "$@" 3<&{browser_in} 4>&{browser_out} '
                 f'{browser_in}<&- {browser_out}>&-', "bash", *command],
                pass_fds=(browser_in, browser_out), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True)
        os.close(browser_in)
        os.close(browser_out)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            if self._process.poll() is None:
                os.write(self._to_browser, json.dumps(
                    {"id": self._take_id(), "method": "Browser.close"}).encode() + b"\0")
                self._process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass  # killed below either way
        finally:
            with contextlib.suppress(ProcessLookupError):  # it closed with all its children
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=5)
            os.close(self._to_browser)
            os.close(self._from_browser)

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time; see "
                                   f"{self._profile / 'chromium.log'}")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed its DevTools pipe; see "
                                      f"{self._profile / 'chromium.log'}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        ident = self._take_id()
        request: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            if "method" in message:
                self._events.append(message)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(e["method"] == method and e.get("sessionId") == session
                      for e in self._events):
            message = self._receive(deadline)
            if "method" in message:
                self._events.append(message)

    def visit(self, page: Path, screenshot: Path) -> Visit:
        """Open a file in a fresh tab, wait for it to load and report what it did."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session: str = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session)
        self.call("Page.navigate", {"url": page.as_uri()}, session=session)
        self._wait_for("Page.loadEventFired", session)

        def evaluate(expression: str) -> Any:
            answer = self.call("Runtime.evaluate", {
                "expression": expression, "returnByValue": True}, session=session)
            return answer["result"].get("value")

        text = evaluate("document.body.innerText")
        svg_text = evaluate("[...document.querySelectorAll('svg text')].map(t => t.textContent)")
        width = evaluate("document.querySelector('svg')?.getBoundingClientRect().width ?? 0")
        shot = self.call("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        events = [e for e in self._events if e.get("sessionId") == session]
        self.call("Target.closeTarget", {"targetId": target})
        return Visit(text=text, svg_text=svg_text, chart_width=float(width),
                     console=[_console_line(e) for e in events if _is_complaint(e)],
                     requests=[e["params"]["request"]["url"] for e in events
                               if e["method"] == "Network.requestWillBeSent"],
                     screenshot=screenshot)


def _is_complaint(event: dict[str, Any]) -> bool:
    """Console output of any kind, an uncaught exception, or a browser log entry (a failed
    load, a blocked resource) at warning level or above."""
    method = event["method"]
    if method in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown"):
        return True
    return method == "Log.entryAdded" and event["params"]["entry"]["level"] in ("warning",
                                                                                  "error")


def _console_line(event: dict[str, Any]) -> str:
    params = event["params"]
    if event["method"] == "Runtime.consoleAPICalled":
        words = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
        return f"console.{params['type']}: {words}"
    if event["method"] == "Runtime.exceptionThrown":
        return f"exception: {params['exceptionDetails'].get('text', '')}"
    entry = params["entry"]
    return f"log {entry['level']} ({entry['source']}): {entry['text']} {entry.get('url', '')}"
