"""Benchmark: the CPU one Twilio send costs our mock, on its fast path and on aiohttp's slow path,
against the reference aiohttp app's, in rounds under the same load (a figure a busy machine
distorts far less than throughput).

`python -m bench.sendcpu [--rounds N] [--seconds S]` (run it under bench.lock: it uses wrk).
The slow path is the same mock process with a fault switched on that no benchmark send meets
(an invalid number nobody sends to): the front then hands every connection to aiohttp. Prints a
table; writes bench/results/sendcpu-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.loads import CpuMeter, wrk
from bench.twilio_vs_wiremock import HERE, Server, check, start_ours, start_reference, warm_up
from mocks.manifest import TOKEN_HEADER, Manifest

FAST, SLOW, REFERENCE = "mock, fast path", "mock, slow path (aiohttp)", "reference aiohttp app"
UNMET_FAULT = {"invalid_numbers": ["+19999999999"]}
"""A fault no benchmark send meets: it switches the fast path off and changes nothing else."""


def _switch(manifest: Manifest, faults: dict[str, object] | None) -> None:
    twilio = manifest.vendors["twilio"]
    headers = {TOKEN_HEADER: manifest.token}
    if faults is None:
        answer = httpx.delete(twilio.control_url, headers=headers, timeout=5)
    else:
        answer = httpx.put(twilio.control_url, json=faults, headers=headers, timeout=5)
    answer.raise_for_status()


def _point(server: Server, seconds: int, connections: int) -> dict[str, float]:
    with CpuMeter(server.process.pid) as cpu:
        rps, p50, p99, errors = wrk(server.target, connections, seconds)
    if errors:
        raise SystemExit(f"bench: {server.name} answered {errors} requests with errors")
    return {"requests_per_second": rps, "p50_ms": p50, "p99_ms": p99,
            "server_cpu": cpu.server_cpu, "other_cpu": cpu.other_cpu,
            "cpu_us_per_request": cpu.server_cpu / rps * 1e6}


def main(argv: list[str]) -> int:
    """Alternate the three servers' points for `--rounds` rounds; print the medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.sendcpu",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--seconds", type=int, default=8, help="per point (8)")
    parser.add_argument("--connections", type=int, default=16, help="wrk's (16)")
    args = parser.parse_args(argv)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    points: dict[str, list[dict[str, float]]] = {FAST: [], SLOW: [], REFERENCE: []}
    with tempfile.TemporaryDirectory(prefix="notifychaos-sendcpu-") as tmp:
        workdir = Path(tmp)
        ours = start_ours(workdir)
        manifest = Manifest.model_validate_json(
            (workdir / "mocks-manifest.json").read_text(encoding="utf-8"))
        reference = start_reference(workdir, ours.target)
        try:
            check(ours)
            check(reference)
            warm_up(ours.target, 5, 20)
            warm_up(reference.target, 5, 20)
            for round_ in range(args.rounds):
                _switch(manifest, None)
                points[FAST].append(_point(ours, args.seconds, args.connections))
                _switch(manifest, UNMET_FAULT)
                points[SLOW].append(_point(ours, args.seconds, args.connections))
                points[REFERENCE].append(_point(reference, args.seconds, args.connections))
                print(f"  round {round_ + 1}: " + ", ".join(
                    f"{name} {runs[-1]['cpu_us_per_request']:.0f} µs "
                    f"({runs[-1]['requests_per_second']:,.0f}/s)"
                    for name, runs in points.items()), flush=True)
        finally:
            ours.process.stop()
            reference.process.stop()
    median = {name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
              for name, runs in points.items()}
    base = median[REFERENCE]["cpu_us_per_request"]
    when = datetime.now(UTC).isoformat(timespec="seconds")
    after = Path("/proc/loadavg").read_text().split()[:3]
    rows = ["| server | requests/s | p99 | server CPU | CPU per request | × reference |",
            "|---|---|---|---|---|---|"]
    rows += [f"| {name} | {m['requests_per_second']:,.0f} | {m['p99_ms']:.2f} ms | "
             f"{m['server_cpu']:.2f} | {m['cpu_us_per_request']:.0f} µs | "
             f"{m['cpu_us_per_request'] / base:.2f} |" for name, m in median.items()]
    snippet = "\n".join([
        f"Measured {when} with `python -m bench.sendcpu`: medians of {args.rounds} rounds, "
        f"wrk {args.connections} connections, {args.seconds} s per point, server on one core; "
        f"load average {' '.join(loadavg)} before, {' '.join(after)} after; other processes "
        f"up to {max(p['other_cpu'] for runs in points.values() for p in runs):.2f} cores.",
        "", *rows]) + "\n"
    print("\n" + snippet)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "sendcpu-latest.json").write_text(json.dumps(
        {"when": when, "loadavg_before": loadavg, "loadavg_after": after,
         "settings": vars(args), "points": points, "median": median}, indent=2) + "\n")
    (out / "sendcpu-latest.md").write_text(snippet)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
