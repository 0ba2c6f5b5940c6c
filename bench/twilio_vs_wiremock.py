"""Benchmark: our Twilio mock's send endpoint against WireMock standalone, same load, same run.

Run it with `bench/run`, which installs wrk and the WireMock jar first. The server under test
gets core 0 and the load generator core 1 (taskset). Each server is warmed up until its
throughput levels off (the JVM needs about a minute on one core), then measured at peak (wrk,
closed loop, keep-alive, a few connection counts) and at half of its own peak (bench/fixedrate.py,
open loop at a fixed rate, keep-alive, latency counted from when each request was due). A
reference aiohttp app that only answers (bench/reference.py) is measured at our mock's half-peak
rate: the floor of this machine for any aiohttp server. Prints a table and writes
bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx

from bench.loads import FORM, LOAD_CORE, SERVER_CORE, CpuMeter, Point, Target, fixed_rate, wrk
from harness.processes import ManagedProcess, poll_until
from mocks.manifest import Manifest, MocksConfig, VendorConfig

HERE = Path(__file__).resolve().parent
OURS, WIREMOCK, REFERENCE = "notifychaos mock", "WireMock", "reference aiohttp app"
P99_GOAL_MS = 5.0


@dataclass(frozen=True)
class Settings:
    """How long and how hard to push each server."""

    seconds: int  # per peak point
    rate_seconds: int  # per fixed-rate point
    connections: tuple[int, ...]  # peak points
    rate_connections: int  # at the fixed rate
    warmup_max: float


@dataclass(frozen=True)
class Server:
    """A server under test, started and reachable."""

    name: str
    version: str
    process: ManagedProcess
    target: Target
    warm_up: float  # seconds at least


def _port_in_log(log: Path, process: ManagedProcess, timeout: float) -> str:
    def port() -> str | None:
        found = re.search(r"^port:\s+(\d+)", log.read_text(errors="replace"), re.MULTILINE)
        return found.group(1) if found else None

    found = poll_until(port, timeout=timeout, interval=0.2, watch=process)
    if found is None:
        raise SystemExit(f"bench: {process.name} did not start:\n{process.log_tail()}")
    return found


def start_ours(workdir: Path) -> Server:
    """`python -m mocks CONFIG MANIFEST` as the harness starts it, with one Twilio vendor and its
    journal (group-committed: each send in the file before its answer leaves) in `workdir`."""
    config = workdir / "mocks-config.json"
    config.write_text(MocksConfig(journal_dir=str(workdir / "journal"),
                                  vendors={"twilio": VendorConfig(kind="twilio")})
                      .model_dump_json(indent=2), encoding="utf-8")
    manifest_path = workdir / "mocks-manifest.json"
    process = ManagedProcess("mocks", ["taskset", "-c", SERVER_CORE, sys.executable, "-m",
                                       "mocks", str(config), str(manifest_path)],
                             log_path=workdir / "mocks.log", env=os.environ)
    if poll_until(lambda: manifest_path.exists() or None, timeout=15, watch=process) is None:
        raise SystemExit(f"bench: the mocks wrote no manifest:\n{process.log_tail()}")
    manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    twilio = manifest.vendors["twilio"]
    sid, token = twilio.credentials["account_sid"], twilio.credentials["auth_token"]
    auth = "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()
    return Server(OURS, f"mocks.front (plain sends) before aiohttp {aiohttp.__version__} (all "
                  f"else), uvloop, Python {platform.python_version()}",
                  process, Target(twilio.url, f"/2010-04-01/Accounts/{sid}/Messages.json", auth),
                  warm_up=10)


def start_reference(workdir: Path, like: Target) -> Server:
    """bench/reference.py, sent the very requests that `like` is sent."""
    log = workdir / "reference.log"
    process = ManagedProcess("reference", ["taskset", "-c", SERVER_CORE, sys.executable, "-m",
                                           "bench.reference"], log_path=log, env=os.environ)
    port = _port_in_log(log, process, 15)
    return Server(REFERENCE, f"aiohttp {aiohttp.__version__}, uvloop, static body", process,
                  Target(f"http://127.0.0.1:{port}", like.path, like.authorization), warm_up=0)


def start_wiremock(workdir: Path, jar: Path, version: str, threads: int,
                   like: Target) -> Server:
    """WireMock standalone on a free port (`--port 0`) serving bench/wiremock/mappings, sent
    the very requests that `like` is sent."""
    log = workdir / "wiremock.log"
    process = ManagedProcess("wiremock", [
        "taskset", "-c", SERVER_CORE, "java", "-jar", str(jar), "--port", "0",
        "--bind-address", "127.0.0.1", "--root-dir", str(HERE / "wiremock"),
        "--no-request-journal", "--disable-request-logging", "--disable-banner",
        "--container-threads", str(threads), "--use-chunked-encoding", "never",
        "--disable-gzip"], log_path=log)
    port = _port_in_log(log, process, 60)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    # On one core the JIT compilers share the CPU with the load: about a minute to full speed.
    return Server(WIREMOCK, f"{version} ({java.splitlines()[0]}, {threads} container threads)",
                  process, Target(f"http://127.0.0.1:{port}", like.path, like.authorization),
                  warm_up=60)


def check(server: Server) -> dict[str, object]:
    """One send with and one without credentials: the endpoint answers as the benchmark
    expects (201 JSON, refused without the Authorization header; the reference always 201)."""
    url = server.target.base_url + server.target.path
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    sent = httpx.post(url, content=FORM, headers={**form,
                                                  "Authorization": server.target.authorization})
    refused = httpx.post(url, content=FORM, headers=form)
    if sent.status_code != 201 or (refused.status_code == 201) != (server.name == REFERENCE):
        raise SystemExit(f"bench: {server.name} answered {sent.status_code} to a send and "
                         f"{refused.status_code} without credentials")
    return {"version": server.version, "status": sent.status_code,
            "content_type": sent.headers.get("content-type"), "response_bytes": len(sent.content),
            "status_without_credentials": refused.status_code}


def warm_up(target: Target, least: float, most: float) -> list[float]:
    """Load the server in 5 s slices for at least `least` seconds and then until a slice is no
    more than 2 % faster than the best before it (or `most` seconds; one slice if `least` is
    0): requests/s per slice."""
    began, slices = time.monotonic(), list[float]()
    while time.monotonic() - began < most:
        slices.append(wrk(target, 16, 5)[0])
        settled = len(slices) > 1 and slices[-1] < 1.02 * max(slices[:-1])
        if time.monotonic() - began >= least and (settled or not least):
            break
    return slices


def measure(server: Server, settings: Settings, info: dict[str, object],
            connections: tuple[int, ...], rate: Callable[[float], int]) -> list[Point]:
    """Warm up, then the peak points, then the fixed rate `rate(best peak)`."""
    pid, target = server.process.pid, server.target
    info["warmup_rps"] = slices = warm_up(target, server.warm_up, settings.warmup_max)
    print(f"  {server.name}: warmed up for {5 * len(slices)} s, {slices[-1]:,.0f} requests/s",
          flush=True)
    points = []
    for count in connections:
        with CpuMeter(pid) as cpu:
            rps, p50, p99, errors = wrk(target, count, settings.seconds)
        points.append(Point(server.name, "peak", count, None, rps, p50, p99, None, errors,
                            cpu.server_cpu, cpu.other_cpu, cpu.server_rss_mb))
        print(f"  {server.name}: {count} connections, {rps:,.0f} requests/s", flush=True)
    offered = rate(max(p.requests_per_second for p in points))
    with CpuMeter(pid) as cpu:
        seen = fixed_rate(target, offered, settings.rate_seconds, settings.rate_connections)
    points.append(Point(server.name, "half-peak", settings.rate_connections, offered,
                        seen.answered / settings.rate_seconds, seen.p50_ms, seen.p99_ms,
                        seen.p999_ms, seen.errors, cpu.server_cpu, cpu.other_cpu,
                        cpu.server_rss_mb))
    print(f"  {server.name}: {offered:,}/s fixed, p99 {seen.p99_ms:.2f} ms", flush=True)
    return points


@dataclass(frozen=True)
class Summary:
    """Each server's peak (best connection count), their ratio, the half-peak p99s, the goals."""

    peak_rps: dict[str, float]
    ratio: float
    half_peak_p99_ms: dict[str, float]
    goal_ratio_met: bool
    goal_p99_met: bool


def summarise(points: list[Point]) -> Summary:
    """The figures the issue asks about, from all points."""
    peak = {name: max(p.requests_per_second for p in points
                      if p.server == name and p.load == "peak")
            for name in (OURS, WIREMOCK, REFERENCE)}
    p99 = {p.server: p.p99_ms for p in points if p.load == "half-peak"}
    ratio = peak[OURS] / peak[WIREMOCK]
    return Summary(peak, ratio, p99, ratio >= 1.0, p99[OURS] <= P99_GOAL_MS)


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def render(points: list[Point], summary: Summary, when: str, settings: Settings) -> str:
    """The markdown snippet: figures table, ratio and goals, and how it was measured."""
    rows = ["| server | load | conns | requests/s | p50 | p99 | p99.9 | errors | server CPU "
            "| server RSS | other CPU |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        load = ("peak, closed loop" if p.offered_rate is None
                else f"{p.offered_rate:,.0f}/s fixed")
        rows.append(f"| {p.server} | {load} | {p.connections} | {p.requests_per_second:,.0f} | "
                    f"{_ms(p.p50_ms)} | {_ms(p.p99_ms)} | {_ms(p.p999_ms)} | {p.errors} | "
                    f"{p.server_cpu:.2f} | {p.server_rss_mb:,.0f} MB | {p.other_cpu:.2f} |")
    peaks, p99s = summary.peak_rps, summary.half_peak_p99_ms
    verdict = {True: "met", False: "not met"}
    noisy = max(p.other_cpu for p in points)
    lines = [
        f"Measured {when} with `bench/run`: {os.cpu_count()} cores, server pinned to core "
        f"{SERVER_CORE}, load generator to core {LOAD_CORE} (taskset); {settings.seconds} s "
        f"per peak point, {settings.rate_seconds} s per fixed-rate point.", "",
        *rows, "",
        f"- peak (best connection count): {OURS} {peaks[OURS]:,.0f} requests/s, {WIREMOCK} "
        f"{peaks[WIREMOCK]:,.0f} requests/s: **ratio ours / WireMock {summary.ratio:.2f}** "
        f"(goal ≥ 1.0: {verdict[summary.goal_ratio_met]})",
        f"- p99 at half of its own peak: {OURS} **{_ms(p99s[OURS])}** (goal ≤ {P99_GOAL_MS:g} "
        f"ms: {verdict[summary.goal_p99_met]}), {WIREMOCK} {_ms(p99s[WIREMOCK])}; the "
        f"{REFERENCE}, at our mock's half-peak rate: {_ms(p99s[REFERENCE])}",
        "- peak: wrk, one thread; fixed rate: bench/fixedrate.py over "
        f"{settings.rate_connections} connections, latency from when each request was due "
        "(coordinated omission corrected, as wrk2 does); keep-alive throughout; each server "
        "warmed up first (WireMock at least 60 s: its JIT shares the core)",
        f"- WireMock answers a fixed body; {OURS} parses the form, makes a new SID and date and "
        "journals every send (a line per send and per call, in the file before the answer "
        "leaves: one write per event-loop turn), as in a run, its plain sends answered by its "
        "lean front (mocks/front.py), everything else by aiohttp; the "
        f"{REFERENCE} only answers a fixed body (what aiohttp alone costs)",
        "- server CPU and other CPU in cores; other CPU is every other process on the machine "
        "during the point"]
    if noisy > 0.1:
        lines.append(f"- **other processes used up to {noisy:.2f} cores during a point: the "
                     "figures are disturbed; run again on a quiet machine**")
    lines += [f"- **{p.server} answered only {p.requests_per_second:,.0f} of the "
              f"{p.offered_rate:,.0f} requests/s offered**" for p in points
              if p.offered_rate and p.requests_per_second < 0.97 * p.offered_rate]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Run the three servers one after the other, print and save the figures."""
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="per peak point (8)")
    parser.add_argument("--rate-seconds", type=int, default=12, help="per fixed-rate point (12)")
    parser.add_argument("--connections", default="16,64", help="peak points (16,64)")
    parser.add_argument("--rate-connections", type=int, default=16, help="at the fixed rate")
    parser.add_argument("--warmup-max", type=float, default=100, help="seconds at most (100)")
    parser.add_argument("--container-threads", type=int, default=32, help="WireMock's (32)")
    args = parser.parse_args(argv)
    settings = Settings(args.seconds, args.rate_seconds,
                        tuple(int(c) for c in args.connections.split(",")),
                        args.rate_connections, args.warmup_max)
    jar = Path(os.environ["BENCH_WIREMOCK_JAR"])
    tools = {"wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True)
             .stdout.split("\n", 1)[0], "fixed rate": "bench/fixedrate.py",
             "wiremock": os.environ["BENCH_WIREMOCK_VERSION"]}
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    points: list[Point] = []
    servers: dict[str, dict[str, object]] = {}

    def half(peak: float) -> int:
        return round(peak / 2)

    with tempfile.TemporaryDirectory(prefix="notifychaos-bench-") as tmp:
        workdir = Path(tmp)
        ours = start_ours(workdir)
        try:
            servers[OURS] = check(ours)
            points += measure(ours, settings, servers[OURS], settings.connections, half)
        finally:
            ours.process.stop()
        servers[OURS]["journal_lines"] = (
            workdir / "journal" / "mocks.jsonl").read_bytes().count(b"\n")
        our_rate = next(p.offered_rate for p in points if p.offered_rate)
        reference = start_reference(workdir, ours.target)
        try:
            servers[REFERENCE] = check(reference)
            points += measure(reference, settings, servers[REFERENCE], (16,),
                              lambda _: round(our_rate or 0))
        finally:
            reference.process.stop()
        wiremock = start_wiremock(workdir, jar, tools["wiremock"], args.container_threads,
                                  ours.target)
        try:
            servers[WIREMOCK] = check(wiremock)
            points += measure(wiremock, settings, servers[WIREMOCK], settings.connections, half)
        finally:
            wiremock.process.stop()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    summary = summarise(points)
    snippet = render(points, summary, when, settings)
    print("\n" + snippet)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({
        "when": when, "command": " ".join(["bench/run", *argv]),
        "machine": {"cores": os.cpu_count(), "server_core": SERVER_CORE,
                    "load_core": LOAD_CORE, "loadavg_before": loadavg,
                    "loadavg_after": Path("/proc/loadavg").read_text().split()[:3]},
        "tools": tools, "settings": asdict(settings), "servers": servers,
        "points": [asdict(p) for p in points], "summary": asdict(summary)}, indent=2) + "\n")
    (out / "latest.md").write_text(snippet)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
