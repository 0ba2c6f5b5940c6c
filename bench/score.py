"""Benchmark: `notifychaos report` on synthetic run folders of 10^5, 10^6 and 10^7 owed
reminders, checked against what was planted, beside DuckDB's bare classification of the same
files.

Run it with `bench/score` (`--help`). For each size it writes the run folder once
(bench/synthetic_journal.py, cached by size and seed under bench/.cache/), runs the real command
as a subprocess and measures its wall time, CPU time and peak memory (`os.wait4`'s rusage; the
process tree's resident memory sampled every 0.1 s, for workers alive at once), stopping
it past `--max-seconds` or `--max-rss-gb` ("did not finish"); then checks the scorecard's owed,
outcomes, duplicates, unmatched, cancelled, opted-out and continuity figures against the
planted ones. DuckDB (bench/score_duckdb.py) is measured the same way and checked the same way.
Prints a table, writes bench/results/score-latest.json and score-latest.md, and exits 1 when a
figure differs from what was planted (a run that did not finish is reported, not a mismatch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.synthetic_journal import Planted, cached_run

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
GIB = 1 << 30
POLL = 0.1
"""Seconds between looks at a measured process (its exit, its memory)."""


@dataclass(frozen=True)
class Measured:
    """One process run to its end, or stopped: its wall time, peak memory and exit code."""

    seconds: float
    cpu_seconds: float
    """User and system CPU time of the process (and any child it waited for): less noisy than
    the wall time on a shared machine."""
    peak_rss: int
    """Bytes, the most resident memory of the process and its children: the larger of
    `ru_maxrss` and the most their sum was when sampled."""
    exit_code: int
    stopped: str | None
    """Why it was stopped ("time" or "memory"), None when it ended by itself."""
    output: str

    @property
    def finished(self) -> bool:
        return self.stopped is None


@dataclass(frozen=True)
class Side:
    """One contender at one size: how it ran and how its figures compared with the planted."""

    measured: Measured
    mismatches: tuple[str, ...]
    """One line per figure that differs from the planted one (empty: all match)."""
    checked: bool
    """Whether figures were there to check (it finished and wrote them)."""


@dataclass(frozen=True)
class Row:
    """One size: the folder, the scorer and DuckDB."""

    reminders: int
    events: int
    journal_bytes: int
    written_seconds: float | None
    """How long writing the folder took, None when it came from the cache."""
    scorer: Side
    duckdb: Side

    @property
    def compared(self) -> bool:
        """Whether both finished and gave figures: only then are their costs compared."""
        return self.scorer.checked and self.duckdb.checked

    @property
    def time_ratio(self) -> float | None:
        if not self.compared:
            return None
        return self.scorer.measured.seconds / self.duckdb.measured.seconds

    @property
    def cpu_ratio(self) -> float | None:
        if not self.compared:
            return None
        return self.scorer.measured.cpu_seconds / self.duckdb.measured.cpu_seconds

    @property
    def memory_ratio(self) -> float | None:
        if not self.compared:
            return None
        return self.scorer.measured.peak_rss / self.duckdb.measured.peak_rss


def measure(command: list[str], max_seconds: float, max_rss: int) -> Measured:
    """Run `command` in its own process group to its end, or stop it (the whole group) once it
    has run `max_seconds` or holds more than `max_rss` bytes."""
    with tempfile.TemporaryFile() as output:
        began = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        stopped: str | None = None
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - began
            tree = _rss(process.pid)
            tree_peak = max(tree_peak, tree)
            if stopped is None and elapsed > max_seconds:
                stopped = "time"
            elif stopped is None and tree > max_rss:
                stopped = "memory"
            if stopped is not None:
                os.killpg(process.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(POLL)
        seconds = time.monotonic() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    # ru_maxrss (kilobytes on Linux) is the largest single process; workers alive at once
    # add up, which only the samples of the whole tree see.
    return Measured(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,
                    peak_rss=max(usage.ru_maxrss * 1024, tree_peak),
                    exit_code=process.returncode, stopped=stopped, output=text)


def _rss(pid: int) -> int:
    """Bytes resident now in `pid` and all its descendants (0 once they are gone)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text(encoding="ascii")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in
                               (task / "children").read_text(encoding="ascii").split())
        except OSError:
            continue  # it ended meanwhile
        line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), "")
        total += int(line.split()[1]) * 1024 if line else 0
    return total


def compare(figures: dict[str, object], planted: Planted) -> tuple[str, ...]:
    """The figures that differ from the planted ones, one line each."""
    wanted = planted.figures()
    lines: list[str] = []
    for name, value in wanted.items():
        got = figures.get(name)
        if isinstance(value, dict) and isinstance(got, dict):
            lines.extend(f"outcomes.{outcome}: got {got.get(outcome)}, planted {count}"
                         for outcome, count in value.items() if got.get(outcome) != count)
        elif got != value:
            lines.append(f"{name}: got {got}, planted {value}")
    return tuple(lines)


def run_scorer(run_dir: Path, planted: Planted, max_seconds: float, max_rss: int) -> Side:
    """`notifychaos report` on `run_dir`'s journal, measured, and its scorecard checked.

    The reports go to a folder of this measurement's own (its `journal` a link to the cached
    one), so that two benchmarks on one cached folder never read each other's scorecard."""
    with tempfile.TemporaryDirectory(dir=run_dir, prefix="report-") as own:
        folder = Path(own)
        (folder / "journal").symlink_to(run_dir / "journal", target_is_directory=True)
        command = [str(Path(sys.executable).parent / "notifychaos"), "report", str(folder)]
        measured = measure(command, max_seconds, max_rss)
        scorecard = folder / "scorecard.json"
        if not measured.finished or not scorecard.is_file():
            return Side(measured, (), checked=False)
        card = json.loads(scorecard.read_text(encoding="utf-8"))
    return Side(measured, compare(card, planted), checked=True)


def run_duckdb(run_dir: Path, planted: Planted, max_seconds: float, max_rss: int) -> Side:
    """bench/score_duckdb.py on `run_dir`'s journal, measured, and its figures checked."""
    command = [sys.executable, "-m", "bench.score_duckdb", str(run_dir / "journal")]
    measured = measure(command, max_seconds, max_rss)
    if not measured.finished or measured.exit_code != 0:
        return Side(measured, (), checked=False)
    figures = json.loads(measured.output.strip().splitlines()[-1])
    return Side(measured, compare(figures, planted), checked=True)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _gb(size: int) -> str:
    return f"{size / GIB:.2f} GiB"


def _cell_time(side: Side) -> str:
    m = side.measured
    if m.stopped == "time":
        return f"did not finish (> {m.seconds:.0f} s)"
    if m.stopped == "memory":
        return f"did not finish (memory, at {m.seconds:.0f} s)"
    return f"{m.seconds:.1f} s ({m.cpu_seconds:.1f} s)"


def _cell_checks(side: Side) -> str:
    if not side.checked:
        return "-" if not side.measured.finished else f"no figures (exit {side.measured.exit_code})"
    return "all match" if not side.mismatches else f"{len(side.mismatches)} mismatches"


def table(rows: list[Row]) -> list[str]:
    """The results as Markdown table lines."""
    lines = ["| reminders | journal | scorer time (CPU) | scorer peak RSS | scorer checks | "
             "DuckDB time (CPU) | DuckDB peak RSS | DuckDB checks | ratio: time (CPU) | "
             "ratio: memory |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = ("-" if row.time_ratio is None or row.cpu_ratio is None
                 else f"{row.time_ratio:.1f}x ({row.cpu_ratio:.1f}x)")
        memory = "-" if row.memory_ratio is None else f"{row.memory_ratio:.1f}x"
        lines.append(
            f"| {row.reminders:,} | {_gb(row.journal_bytes)}, {row.events:,} events | "
            f"{_cell_time(row.scorer)} | {_gb(row.scorer.measured.peak_rss)} | "
            f"{_cell_checks(row.scorer)} | {_cell_time(row.duckdb)} | "
            f"{_gb(row.duckdb.measured.peak_rss)} | {_cell_checks(row.duckdb)} | {ratio} | "
            f"{memory} |")
    return lines


def _machine() -> dict[str, object]:
    try:
        import duckdb
        version = duckdb.__version__
    except ImportError:
        version = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=False).stdout.strip()
    return {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PHYS_PAGES")
                                                        * os.sysconf("SC_PAGE_SIZE") / GIB, 1),
            "python": platform.python_version(), "duckdb": version, "commit": commit}


def _changed() -> list[str]:
    """The scorer's files that differ from the commit: what `notifychaos report` ran is the
    working tree, other work in progress included."""
    status = subprocess.run(["git", "status", "--short", "--", "harness"], cwd=ROOT, text=True,
                            capture_output=True, check=False).stdout
    return [line.strip() for line in status.splitlines() if line.strip()]


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes: {text!r} is not a list of numbers (expected e.g. 1e5,1e6)") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r}: expected positive counts")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_parse_sizes, default=[10**5, 10**6, 10**7],
                        help="owed reminders per run folder, comma-separated (default 1e5,1e6,1e7)")
    parser.add_argument("--seed", type=int, default=42, help="the draws' seed (default 42)")
    parser.add_argument("--max-seconds", type=float, default=900.0,
                        help="stop a contender after this long (default 900)")
    parser.add_argument("--max-rss-gb", type=float, default=20.0,
                        help="stop a contender holding more GiB than this (default 20)")
    args = parser.parse_args()
    # The scorer measured is the working tree as it is now: say so before it can change.
    machine, changed = _machine(), _changed()
    max_rss = int(args.max_rss_gb * GIB)
    rows: list[Row] = []
    loads: list[dict[str, object]] = []
    for n in args.sizes:
        began = time.monotonic()
        run_dir, planted, written = cached_run(CACHE, n, args.seed)
        written_seconds = time.monotonic() - began if written else None
        how = "cached" if written_seconds is None else f"written in {written_seconds:.0f} s"
        print(f"{n:,} reminders: {run_dir.relative_to(ROOT)} ({how}, "
              f"{_gb(planted.bytes)}); load {_load()}", flush=True)
        scorer = run_scorer(run_dir, planted, args.max_seconds, max_rss)
        print(f"  notifychaos report: {_cell_time(scorer)}, {_gb(scorer.measured.peak_rss)}, "
              f"{_cell_checks(scorer)}; load {_load()}", flush=True)
        duck = run_duckdb(run_dir, planted, args.max_seconds, max_rss)
        print(f"  DuckDB: {_cell_time(duck)}, {_gb(duck.measured.peak_rss)}, "
              f"{_cell_checks(duck)}; load {_load()}", flush=True)
        for name, side in (("notifychaos report", scorer), ("DuckDB", duck)):
            for line in side.mismatches:
                print(f"  MISMATCH {name}: {line}", flush=True)
            if side.measured.finished and not side.checked:
                print(f"  {name} wrote no figures; its output ends:\n"
                      f"{side.measured.output[-2000:]}", flush=True)
        rows.append(Row(reminders=n, events=planted.events, journal_bytes=planted.bytes,
                        written_seconds=written_seconds, scorer=scorer, duckdb=duck))
        loads.append({"reminders": n, "load_after": _load()})
    lines = table(rows)
    print("\n".join(lines))
    _write(rows, lines, loads, args, machine, changed)
    if any(side.mismatches for row in rows for side in (row.scorer, row.duckdb)):
        sys.exit(1)


def _side_json(side: Side) -> dict[str, object]:
    measured = asdict(side.measured)
    measured["output"] = side.measured.output[-2000:]  # the tail says why it failed, if it did
    return {**measured, "finished": side.measured.finished, "checked": side.checked,
            "mismatches": list(side.mismatches)}


def _write(rows: list[Row], lines: list[str], loads: list[dict[str, object]],
           args: argparse.Namespace, machine: dict[str, object], changed: list[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    data = {"when": when, "machine": machine, "harness_changes_not_committed": changed,
            "seed": args.seed,
            "max_seconds": args.max_seconds, "max_rss_gb": args.max_rss_gb, "loads": loads,
            "rows": [{"reminders": row.reminders, "events": row.events,
                      "journal_bytes": row.journal_bytes, "written_seconds": row.written_seconds,
                      "scorer": _side_json(row.scorer), "duckdb": _side_json(row.duckdb),
                      "time_ratio": row.time_ratio, "cpu_ratio": row.cpu_ratio,
                      "memory_ratio": row.memory_ratio}
                     for row in rows]}
    (RESULTS / "score-latest.json").write_text(json.dumps(data, indent=2) + "\n",
                                               encoding="utf-8")
    load_text = "; ".join(f"{entry['reminders']:,}: {entry['load_after']}" for entry in loads)
    md = [f"# Scorer benchmark ({when}, commit {machine['commit']})", "",
          f"{machine['cpus']} CPUs, {machine['memory_gib']} GiB, Python {machine['python']}, "
          f"DuckDB {machine['duckdb']}; seed {args.seed}; limits {args.max_seconds:.0f} s, "
          f"{args.max_rss_gb:g} GiB; load average (1, 5, 15 min) after each size: {load_text}.",
          f"Scorer files changed since the commit: "
          f"{', '.join(changed) or 'none'}.",
          "", *lines, ""]
    (RESULTS / "score-latest.md").write_text("\n".join(md), encoding="utf-8")


if __name__ == "__main__":
    main()
