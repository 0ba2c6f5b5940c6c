"""The benchmark's load generators: wrk (closed loop, peak) and bench/fixedrate.py (open loop).

Both run pinned to the load core. Every measurement also says how much CPU the server used and
how much other processes of the machine took meanwhile (a 2-core machine may be shared).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.fixedrate import Outcome

HERE = Path(__file__).resolve().parent
SERVER_CORE, LOAD_CORE = "0", "1"
FORM = ("To=%2B8613800000001&From=%2B15005550006"
        "&Body=Your+mortgage+repayment+is+due+ref%3ABENCH001")
_TICK = os.sysconf("SC_CLK_TCK")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Target:
    """One server's send endpoint and the Authorization header it accepts."""

    base_url: str
    path: str
    authorization: str


@dataclass(frozen=True)
class Point:
    """One measurement: the load, what the server achieved, and who else used the CPU."""

    server: str
    load: str  # "peak" (closed loop) or "half-peak" (open loop, fixed rate)
    connections: int
    offered_rate: float | None  # requests/s asked for (open loop only)
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    p999_ms: float | None  # open loop only
    errors: int
    server_cpu: float  # cores
    other_cpu: float  # cores used by every other process on the machine meanwhile
    server_rss_mb: float  # after the point


def _cpu_jiffies(pid: str) -> int:
    """User + system clock ticks of a process and all its threads (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def _all_processes() -> dict[str, int]:
    return {entry.name: _cpu_jiffies(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit()}


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(_find(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


class CpuMeter:
    """CPU use during one measurement, in cores: the server's, and that of every other process
    on the machine except this one and the load generator (which has ended by then)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = str(server_pid)
        self.server_cpu = self.other_cpu = self.server_rss_mb = 0.0

    def __enter__(self) -> CpuMeter:
        self._wall = time.monotonic()
        self._before = _all_processes()
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.monotonic() - self._wall
        after = _all_processes()
        used = {pid: ticks - self._before.get(pid, 0) for pid, ticks in after.items()}
        self.server_cpu = used.pop(self.server_pid, 0) / _TICK / wall
        used.pop(str(os.getpid()), None)
        self.other_cpu = sum(used.values()) / _TICK / wall
        self.server_rss_mb = _rss_mb(int(self.server_pid))


def _pinned(argv: list[str]) -> list[str]:
    return ["taskset", "-c", LOAD_CORE, *argv]


def _find(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"bench: no {pattern!r} in the load generator's output:\n{text}")
    return match


def wrk(target: Target, connections: int, seconds: int) -> tuple[float, float, float, int]:
    """Closed loop, `connections` keep-alive connections, one wrk thread: (requests/s, p50 ms,
    p99 ms, errors)."""
    out = subprocess.run(
        _pinned(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                 "--timeout", "5s", "-s", str(HERE / "send.lua"), target.base_url]),
        env={**os.environ, "BENCH_PATH": target.path, "BENCH_AUTH": target.authorization,
             "BENCH_FORM": FORM},
        capture_output=True, text=True, check=True).stdout

    def percentile(p: str) -> float:
        value, unit = _find(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * _UNITS[unit]

    rps = float(_find(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket = re.search(r"Socket errors: (.*)", out)
    if socket:
        errors += sum(int(n) for n in re.findall(r"\d+", socket.group(1)))
    return rps, percentile("50"), percentile("99"), errors


def fixed_rate(target: Target, rate: int, seconds: int, connections: int) -> Outcome:
    """Open loop at `rate` requests/s over `connections` keep-alive connections (bench/fixedrate.py,
    latency counted from when each request was due)."""
    out = subprocess.run(
        _pinned([sys.executable, "-m", "bench.fixedrate", target.base_url + target.path,
                 str(rate), str(seconds), str(connections)]),
        env={**os.environ, "BENCH_AUTH": target.authorization, "BENCH_FORM": FORM},
        capture_output=True, text=True, check=True).stdout
    return Outcome(**json.loads(out))
