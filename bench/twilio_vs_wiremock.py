"""Benchmark: our Twilio mock's send endpoint against WireMock standalone, same load, same run.

Each server gets one core and wrk the other (taskset); both are warmed up, then measured at
peak (many keep-alive connections) and at light load (two connections), which stands in for
"half of peak" because wrk has no fixed-rate mode. Prints a table and writes
bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness.processes import ManagedProcess, free_port, poll_until
from mocks.manifest import Manifest, MocksConfig, VendorConfig

HERE = Path(__file__).resolve().parent
JAR = HERE / ".cache" / "wiremock-standalone-3.13.2.jar"
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Figures:
    """What wrk measured for one server at one load."""

    server: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _find(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"bench: wrk printed no {pattern!r}:\n{text}")
    return match


def wrk(url: str, path: str, auth: str, connections: int, seconds: int) -> tuple[float, float,
                                                                                  float, int]:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
         "--latency", "-s", str(HERE / "send.lua"), url],
        env={**os.environ, "BENCH_PATH": path, "BENCH_AUTH": auth},
        capture_output=True, text=True, check=True).stdout
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p: str) -> float:
        value, unit = _find(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * _UNITS[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, percentile("50"), percentile("99"), errors


def measure(server: str, url: str, path: str, auth: str) -> list[Figures]:
    wrk(url, path, auth, 16, 5)  # warm-up (the JVM especially)
    return [Figures(server, c, *wrk(url, path, auth, c, SECONDS)) for c in (32, 2)]


def ours(workdir: Path) -> tuple[ManagedProcess, str, str, str]:
    config = workdir / "mocks.json"
    config.write_text(MocksConfig(journal_dir=str(workdir / "journal"),
                                  vendors={"twilio": VendorConfig(kind="twilio")})
                      .model_dump_json())
    manifest_path = workdir / "manifest.json"
    process = ManagedProcess("mocks", ["taskset", "-c", "0", sys.executable, "-m", "mocks",
                                       str(config), str(manifest_path)],
                             log_path=workdir / "mocks.log")
    poll_until(lambda: manifest_path.exists() or None, timeout=15, watch=process)
    twilio = Manifest.model_validate_json(manifest_path.read_text()).vendors["twilio"]
    sid, token = twilio.credentials["account_sid"], twilio.credentials["auth_token"]
    auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    return process, twilio.url, f"/2010-04-01/Accounts/{sid}/Messages.json", auth


def wiremock(workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess("wiremock", [
        "taskset", "-c", "0", "java", "-jar", str(JAR), "--port", str(port),
        "--bind-address", "127.0.0.1", "--root-dir", str(HERE / "wiremock"),
        "--no-request-journal", "--disable-request-logging", "--container-threads", "32",
        "--async-response-enabled", "false"], log_path=workdir / "wiremock.log")
    url = f"http://127.0.0.1:{port}"

    def up() -> bool | None:
        try:
            return httpx.get(f"{url}/__admin/mappings", timeout=1).is_success or None
        except httpx.HTTPError:
            return None

    poll_until(up, timeout=60, interval=0.5, watch=process)
    return process, url


def main() -> None:
    """Run both servers, print and save the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        mock, url, path, auth = ours(workdir)
        try:
            results = measure("notifychaos mock", url, path, auth)
        finally:
            mock.stop()
        server, wm_url = wiremock(workdir)
        try:
            results += measure("WireMock 3.13.2", wm_url, path, auth)
        finally:
            server.stop()
    peak = {f.server: f.requests_per_second for f in results if f.connections == 32}
    ratio_value = peak["notifychaos mock"] / peak["WireMock 3.13.2"]
    lines = ["| server | connections | requests/s | p50 | p99 | errors |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {f.server} | {f.connections} | {f.requests_per_second:,.0f} | "
              f"{f.p50_ms:.2f} ms | {f.p99_ms:.2f} ms | {f.errors} |" for f in results]
    lines.append(f"\nratio (ours / WireMock, requests/s at 32 connections): **{ratio_value:.2f}**")
    table = "\n".join(lines)
    print(table)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    (out / "latest.json").write_text(json.dumps(
        {"when": when, "seconds": SECONDS, "ratio": ratio_value,
         "figures": [asdict(f) for f in results]}, indent=2))
    (out / "latest.md").write_text(f"Measured {when}, {SECONDS} s per point.\n\n{table}\n")


if __name__ == "__main__":
    main()
