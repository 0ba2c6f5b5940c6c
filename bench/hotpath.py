"""Benchmark: the CPU each component of the demo's topology spends per owed reminder, by rate.

Run it with `bench/hotpath`. For each rate it runs the demo scenario
(scenarios/primary-vendor-outage.yaml) with no faults as a user would, `notifychaos run` with
`--set` overrides: the real Toxiproxy server, the mocks, the reference notifier and Locust.
Meanwhile it samples the CPU time (utime + stime) of every process of the run's tree from /proc
(bench/procstat.py), by component: mocks, toxiproxy, locust, harness (the notifychaos process
itself and its watchdog), notifier. The figure is CPU seconds during the load phase (from the
journal's `load.started` to its `load.finished`, counters interpolated between samples) divided
by the reminders owed (scorecard.json), in microseconds. Beside it: the same over load and drain
(to `run.ended`), and the steady state (from SETTLE seconds after the first reminder was
scheduled to the last, divided by the reminders scheduled in it): no start-up, and the sends of
the reminders scheduled before it (`reminders.lead` later) balance those left after it.
Locust's users (4 up to 2000/s: each request carries every tick due since the user's last) and
the notifier's WORKERS grow with the rate (users_for, workers_for), so that neither's
concurrency is what gives out first; the time each component was ready to run but
waited for a core is shown too (the machine may be shared), and the messages the vendors
accepted per second of the load phase with the notifier's CPU per message (once it is behind,
fewer than fell due: per owed reminder undercounts it).
Prints a table and writes bench/results/hotpath-latest.json and hotpath-latest.md.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.procstat import COMPONENTS, TICK, Counts, RunMeter, machine_busy_ticks

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "primary-vendor-outage.yaml"
RESULTS = ROOT / "bench" / "results"
RUNS = ROOT / "bench" / ".cache" / "hotpath"
SAMPLE_EVERY = 0.2
"""Seconds between samples of the run's CPU: at each edge of a phase, interpolation can be off
by at most one interval's CPU."""
SETTLE = 10.0
"""Seconds after the first reminder before the steady state: Locust's users are up and the
first reminders' sends (`reminders.lead`, 5 s in the demo) are under way."""
HARNESS_GOAL_US = 200.0
CONTINUITY_GOAL = 0.99
TICKS_PER_USER = 500.0
"""Ticks per second asked of each Locust user: a user asks for every tick due since its last
request, at most every harness.ticking.REQUEST_INTERVAL (0.2 s: about 100 ticks a request at
this rate), so that even a slow answer keeps the rate; more users only add requests."""
SENDS_PER_WORKER = 20.0
"""Sends per second asked of each of the notifier's workers (its WORKERS, 4 in the demo), when
the benchmark scales them: each sends one reminder at a time, so 50 ms a send still keeps the
rate (at 4 workers, 200/s gave out on a shared machine with the notifier at 0.23 cores), and
the notifier's concurrency is not what gives out first."""


@dataclass(frozen=True)
class Sample:
    """The run's counters by component, and the whole machine's busy ticks, at wall time `t`."""

    t: float
    counts: Counts
    machine: int


@dataclass(frozen=True)
class Phases:
    """Wall times (epoch seconds) from the run's journal."""

    load_started: float
    load_finished: float
    run_ended: float


@dataclass(frozen=True)
class Point:
    """One rate's run: what it owed and achieved, and each component's CPU."""

    rate: float
    users: int  # Locust's
    workers: int  # the notifier's
    exit_code: int
    owed: int
    ticked_rate: float  # reminders Locust made fall due per second of the asked duration
    continuity: float | None
    p95_s: float | None
    load_s: float  # the load phase's length
    tail_s: float  # load and drain
    cpu_s: dict[str, float]  # by component, during the load phase
    us_per_owed: dict[str, float]  # by component, during the load phase
    harness_us: float  # everything but the notifier, during the load phase
    notifier_us: float
    tail_us_per_owed: dict[str, float]  # by component, load and drain
    steady_reminders: int  # scheduled in the steady window
    steady_us_per_reminder: dict[str, float]  # by component, in the steady window
    cores: dict[str, float]  # by component: CPU seconds per second of the load phase
    waited_cores: dict[str, float]  # by component: seconds ready but waiting for a core, per s
    other_cores: float  # the rest of the machine during the load phase (other tenants)
    sampler_cores: float  # this benchmark's own sampling, over the whole run (in other_cores)
    load_average: str  # `uptime`'s three figures as the run began
    sent_rate: float = math.nan  # messages the vendors accepted per second of the load phase
    notifier_us_per_send: float = math.nan  # the notifier's CPU in the load phase per such send


def users_for(rate: float) -> int:
    """Locust users enough for `rate` ticks per second (the demo's 4 at the least)."""
    return max(4, math.ceil(rate / TICKS_PER_USER))


def workers_for(rate: float) -> int:
    """The notifier's workers enough for `rate` sends per second (the demo's 4 at the least)."""
    return max(4, math.ceil(rate / SENDS_PER_WORKER))


def overrides(rate: float, seconds: int, users: int, workers: int) -> list[str]:
    """The `--set` values that make the demo a fault-free run at a fixed rate."""
    return [f"name=hotpath-{rate:g}", f"reminders.rate={rate:g}", f"duration={seconds}s",
            f"load.users={users}", f"load.spawn_rate={users}", "timeline=[]",
            'gates=["continuity >= 0.99"]', f"target.env.WORKERS='{workers}'"]


def counter_at(samples: Sequence[Sample], t: float, value: Callable[[Sample], float]) -> float:
    """A counter (`value` of a sample) at `t`, linear between the samples either side; held at
    the first or last sample outside them."""
    if not samples:
        raise ValueError("no samples of the run's CPU")
    times = [sample.t for sample in samples]
    after = bisect.bisect_left(times, t)
    if after == 0:
        return float(value(samples[0]))
    if after == len(samples):
        return float(value(samples[-1]))
    before, later = samples[after - 1], samples[after]
    share = (t - before.t) / (later.t - before.t)
    return value(before) + share * (value(later) - value(before))


def _between(samples: Sequence[Sample], start: float, end: float,
             value: Callable[[Sample], float]) -> float:
    return counter_at(samples, end, value) - counter_at(samples, start, value)


def cpu_between(samples: Sequence[Sample], start: float, end: float) -> dict[str, float]:
    """Each component's CPU seconds from `start` to `end`."""
    def cpu_of(component: str) -> Callable[[Sample], float]:
        return lambda sample: sample.counts.cpu[component]

    return {component: _between(samples, start, end, cpu_of(component)) / TICK
            for component in COMPONENTS}


def waited_between(samples: Sequence[Sample], start: float, end: float) -> dict[str, float]:
    """Each component's seconds ready but waiting for a core from `start` to `end`."""
    def waited_of(component: str) -> Callable[[Sample], float]:
        return lambda sample: sample.counts.waited[component]

    return {component: _between(samples, start, end, waited_of(component))
            for component in COMPONENTS}


def per_owed_us(cpu_s: dict[str, float], owed: int) -> dict[str, float]:
    """CPU seconds by component as microseconds per owed reminder (nan with nothing owed)."""
    return {component: (seconds * 1e6 / owed if owed else math.nan)
            for component, seconds in cpu_s.items()}


def harness_share(us: dict[str, float]) -> float:
    """Everything but the notifier under test."""
    return sum(value for component, value in us.items() if component != "notifier")


def highest_passing(points: Sequence[Point]) -> float | None:
    """The highest rate whose continuity reached the goal, None if none did."""
    passing = [point.rate for point in points
               if point.continuity is not None and point.continuity >= CONTINUITY_GOAL]
    return max(passing, default=None)


def scheduled_times(journal_dir: Path) -> list[float]:
    """When each reminder was scheduled (epoch seconds, in order), from every journal file."""
    times: list[float] = []
    for path in journal_dir.glob("*.jsonl"):
        with path.open(encoding="utf-8") as lines:
            times.extend(float(json.loads(line)["t"]) for line in lines
                         if '"reminder.scheduled"' in line)
    return sorted(times)


def sends_between(journal_dir: Path, start: float, end: float) -> int:
    """The messages the vendor mocks accepted from `start` to `end` (epoch seconds): what the
    notifier got done in that time, which falls short of what fell due once it is behind."""
    count = 0
    for path in journal_dir.glob("*.jsonl"):
        with path.open(encoding="utf-8") as lines:
            count += sum(1 for line in lines if '"send.recorded"' in line
                         and start <= float(json.loads(line)["t"]) <= end)
    return count


def steady_window(scheduled: Sequence[float]) -> tuple[float, float, int] | None:
    """(start, end, reminders scheduled in it) of the steady state: SETTLE seconds after the
    first reminder to the last; None when the load was too short to have one (under 5 s)."""
    if not scheduled or scheduled[-1] - scheduled[0] < SETTLE + 5.0:
        return None
    start, end = scheduled[0] + SETTLE, scheduled[-1]
    count = bisect.bisect_right(scheduled, end) - bisect.bisect_left(scheduled, start)
    return start, end, count


def phases_of(journal: Path) -> Phases:
    """The load's start and end and the run's end, from the harness's journal file."""
    seen: dict[str, float] = {}
    for line in journal.read_text(encoding="utf-8").splitlines():
        if '"load.' not in line and '"run.ended"' not in line:
            continue
        event = json.loads(line)
        seen.setdefault(event["kind"], float(event["t"]))
    missing = {"load.started", "load.finished", "run.ended"} - seen.keys()
    if missing:
        raise SystemExit(f"bench: {journal} has no {', '.join(sorted(missing))}")
    return Phases(seen["load.started"], seen["load.finished"], seen["run.ended"])


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fixed_and_marginal(points: Sequence[Point], notifier: bool) -> tuple[float, float] | None:
    """A least-squares line through the runs that kept up, of cores during load against the
    rate that fell due: (cores at no load, µs per further reminder), for the notifier or for
    everything but it; None without two such runs at different rates."""
    kept = [point for point in points if kept_up(point)]
    xs = [point.ticked_rate for point in kept]
    ys = [point.cores["notifier"] if notifier
          else sum(point.cores.values()) - point.cores["notifier"] for point in kept]
    if len(set(xs)) < 2:
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
             / sum((x - mean_x) ** 2 for x in xs))
    return mean_y - slope * mean_x, slope * 1e6


def kept_up(point: Point) -> bool:
    """Whether Locust made (nearly) the asked rate fall due: else the run was starved, and the
    sends it owed happened mostly in the drain, outside the load phase's figures."""
    return point.ticked_rate >= 0.95 * point.rate


def measure(rate: float, seconds: int, workers: int, extra: Sequence[str], keep: bool) -> Point:
    """One run of the demo at `rate` (`extra` more `--set` values) with CPU sampled
    throughout."""
    users = users_for(rate)
    out = RUNS / f"rate-{rate:g}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [str(ROOT / ".venv" / "bin" / "notifychaos"), "run", str(SCENARIO), "--out", str(out),
            *(arg for value in (*overrides(rate, seconds, users, workers), *extra)
              for arg in ("--set", value))]
    load_average = _load_average()
    samples: list[Sample] = []
    with (out / "harness-output.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=ROOT)
        meter = RunMeter(process.pid)
        started, sampler_started = time.monotonic(), time.process_time()
        while process.poll() is None:
            samples.append(Sample(time.time(), meter.sample(), machine_busy_ticks()))
            time.sleep(SAMPLE_EVERY)
        sampler_cores = (time.process_time() - sampler_started) / (time.monotonic() - started)
    run_dirs = [path for path in out.iterdir() if path.is_dir()]
    if process.returncode == 2 or len(run_dirs) != 1:
        raise SystemExit(f"bench: the run at {rate:g}/s could not run (exit code "
                         f"{process.returncode}; see {out / 'harness-output.log'})")
    run_dir = run_dirs[0]
    phases = phases_of(run_dir / "journal" / "harness.jsonl")
    card = json.loads((run_dir / "scorecard.json").read_text(encoding="utf-8"))
    owed = int(card["owed"])
    load_s = phases.load_finished - phases.load_started
    cpu = cpu_between(samples, phases.load_started, phases.load_finished)
    us = per_owed_us(cpu, owed)
    run_cpu_s = sum(cpu.values())
    machine_s = _between(samples, phases.load_started, phases.load_finished,
                         lambda sample: sample.machine) / TICK
    waited = waited_between(samples, phases.load_started, phases.load_finished)
    steady = steady_window(scheduled_times(run_dir / "journal"))
    sent = sends_between(run_dir / "journal", phases.load_started, phases.load_finished)
    steady_us = (per_owed_us(cpu_between(samples, steady[0], steady[1]), steady[2])
                 if steady else dict.fromkeys(COMPONENTS, math.nan))
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return Point(
        rate=rate, users=users, workers=workers, exit_code=process.returncode, owed=owed,
        ticked_rate=owed / seconds,
        continuity=card.get("continuity"), p95_s=(card.get("latency") or {}).get("p95"),
        load_s=load_s, tail_s=phases.run_ended - phases.load_started, cpu_s=cpu,
        us_per_owed=us, harness_us=harness_share(us), notifier_us=us["notifier"],
        tail_us_per_owed=per_owed_us(
            cpu_between(samples, phases.load_started, phases.run_ended), owed),
        steady_reminders=steady[2] if steady else 0, steady_us_per_reminder=steady_us,
        cores={component: value / load_s for component, value in cpu.items()},
        waited_cores={component: value / load_s for component, value in waited.items()},
        other_cores=max(0.0, machine_s - run_cpu_s) / load_s, sampler_cores=sampler_cores,
        load_average=load_average, sent_rate=sent / load_s,
        notifier_us_per_send=cpu["notifier"] * 1e6 / sent if sent else math.nan)


def _figure(value: float | None, form: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, form)


def table(points: Sequence[Point]) -> str:
    """The results as a Markdown table, one row per rate."""
    head = ["rate/s", "ticked/s", "sent/s", "owed", "continuity", "p95 s",
            *(f"{c} µs" for c in COMPONENTS),
            "all but notifier µs", "(load+drain)", "(steady)", "notifier (steady)",
            "notifier µs/send", "notifier cores", "others' cores"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for point in points:
        ticked = f"{point.ticked_rate:.0f}" + ("" if kept_up(point) else " (behind)")
        cells = [f"{point.rate:g}", ticked, _figure(point.sent_rate, ".0f"), str(point.owed),
                 _figure(point.continuity, ".4f"),
                 _figure(point.p95_s, ".3f"),
                 *(_figure(point.us_per_owed[c], ".0f") for c in COMPONENTS),
                 f"**{_figure(point.harness_us, '.0f')}**",
                 _figure(harness_share(point.tail_us_per_owed), ".0f"),
                 _figure(harness_share(point.steady_us_per_reminder), ".0f"),
                 _figure(point.steady_us_per_reminder["notifier"], ".0f"),
                 _figure(point.notifier_us_per_send, ".0f"),
                 _figure(point.cores["notifier"], ".2f"), _figure(point.other_cores, ".2f")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summary(points: Sequence[Point]) -> list[str]:
    """The verdict lines under the table: the goals, and what was busiest where the rate gave
    out."""
    lines = []
    best = highest_passing(points)
    lines.append(f"highest rate with continuity >= {CONTINUITY_GOAL}: "
                 + (f"{best:g}/s" if best is not None else "none of those measured")
                 + " (goal >= 2000/s)")
    for name, notifier in (("everything but the notifier", False), ("the notifier", True)):
        line = fixed_and_marginal(points, notifier)
        if line is not None:
            lines.append(f"{name}, fitted over the runs that kept up: {line[0]:.2f} cores at no "
                         f"load + {line[1]:.0f} µs per further reminder")
    for point in points:
        verdict = "meets" if point.harness_us <= HARNESS_GOAL_US else "misses"
        busiest = max(COMPONENTS, key=lambda c: point.cores[c])
        cores = ", ".join(f"{c} {point.cores[c]:.2f} (+{point.waited_cores[c]:.2f} waiting)"
                          for c in COMPONENTS)
        behind = "" if kept_up(point) else (
            f", BEHIND: {point.ticked_rate:.0f}/s fell due and their sends were mostly in "
            "the drain, so the load phase undercounts the mocks and the notifier (see "
            "load+drain)")
        lines.append(f"{point.rate:g}/s ({point.users} Locust users, {point.workers} notifier "
                     f"workers{behind}; the vendors accepted {point.sent_rate:.0f} messages a "
                     f"second, the notifier spending {point.notifier_us_per_send:.0f} µs of CPU "
                     f"on each): all but the notifier {point.harness_us:.0f} µs per owed "
                     f"reminder ({verdict} the {HARNESS_GOAL_US:.0f} µs goal), notifier "
                     f"{point.notifier_us:.0f} µs; cores during load, and cores' worth of "
                     f"time ready but waiting for one: {cores} (the run "
                     f"{sum(point.cores.values()):.2f}, other processes "
                     f"{point.other_cores:.2f}, of which this sampler "
                     f"{point.sampler_cores:.2f}); busiest {busiest}; load average at start "
                     f"{point.load_average}")
    return lines


def write_results(points: Sequence[Point], seconds: int, extra: Sequence[str]) -> None:
    """bench/results/hotpath-latest.json and .md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {"when": stamp, "host": platform.node(), "cores": os.cpu_count(),
            "seconds_per_rate": seconds, "extra_overrides": list(extra),
            "scenario": str(SCENARIO.relative_to(ROOT)),
            "window": "load phase: journal load.started to load.finished",
            "highest_rate_at_goal": highest_passing(points)}
    (RESULTS / "hotpath-latest.json").write_text(
        json.dumps({**meta, "points": [asdict(point) for point in points]}, indent=2) + "\n",
        encoding="utf-8")
    text = [f"# Hot-path CPU per owed reminder ({stamp}, {os.cpu_count()} cores)", "",
            f"`bench/hotpath --seconds {seconds}"
            + "".join(f" --set {value}" for value in extra)
            + f"`: {meta['scenario']} without faults; CPU "
            "during the load phase (load.started to load.finished) per owed reminder, in µs. "
            "(load+drain): everything but the notifier, to run.ended; (steady): from "
            f"{SETTLE:g} s after the first reminder to the last, per reminder scheduled "
            "then.", "",
            table(points), "", *(f"- {line}" for line in summary(points)), ""]
    (RESULTS / "hotpath-latest.md").write_text("\n".join(text), encoding="utf-8")


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--rates {text!r}: expected reminders per second separated by commas, "
            "e.g. 100,400") from None
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"--rates {text!r}: expected positive rates")
    return rates


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/hotpath", description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=_rates, default=[100.0, 400.0, 1000.0, 2000.0],
                        help="reminders per second, comma-separated (default 100,400,1000,2000)")
    parser.add_argument("--seconds", type=int, default=30,
                        help="load phase per rate (default 30)")
    parser.add_argument("--notifier-workers", type=int, default=0, metavar="N",
                        help="the notifier's WORKERS (default 0: scaled with the rate, "
                        f"{SENDS_PER_WORKER:g} sends/s each, at least the demo's 4)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="extra", help="one more override for notifychaos run (repeatable)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run folders under bench/.cache/hotpath/")
    args = parser.parse_args(argv)
    points = []
    for rate in args.rates:
        print(f"hotpath: {rate:g} reminders/s for {args.seconds}s "
              f"(load average {_load_average()})", file=sys.stderr, flush=True)
        workers = args.notifier_workers or workers_for(rate)
        point = measure(rate, args.seconds, workers, args.extra, args.keep)
        points.append(point)
        print(f"hotpath: {rate:g}/s: {point.owed} owed, continuity {point.continuity}, "
              f"all but notifier {point.harness_us:.0f} µs, notifier {point.notifier_us:.0f} µs",
              file=sys.stderr, flush=True)
    write_results(points, args.seconds, args.extra)
    print(table(points))
    print("\n".join(summary(points)))


if __name__ == "__main__":
    main()
