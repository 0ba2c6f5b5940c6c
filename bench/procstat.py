"""CPU time of a run's processes by component, read from /proc/<pid>/stat of its process tree.

A run is the harness process and everything it starts; each process belongs to the component
of the harness's child it descends from (named by that child's command line), and the harness
counts only its own time. CPU time is utime + stime, plus cutime + cstime (children a process
has waited for, which then vanish from the tree) for every process but the harness: the harness
waits for its components, whose time it would otherwise count again. Beside the CPU it counts
the time each component's threads were ready to run but waited for a core (the second field of
/proc/<pid>/task/<tid>/schedstat): on a shared machine, that is the time others took from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second, the unit of /proc/<pid>/stat's times."""

COMPONENTS = ("mocks", "toxiproxy", "locust", "harness", "notifier")
"""The groups a run's CPU is counted in, in the order they are printed."""


@dataclass(frozen=True)
class ProcStat:
    """What one /proc/<pid>/stat line says that the count needs; times in clock ticks."""

    pid: int
    ppid: int
    own: int  # utime + stime: the process and all its threads
    waited: int  # cutime + cstime: its children that have ended and been waited for


def parse_stat(line: str) -> ProcStat:
    """One /proc/<pid>/stat line; the command name (in parentheses) may hold spaces and
    parentheses itself, so the fields are counted from its last ')'."""
    head, close = line.find(" ("), line.rfind(")")
    if head < 0 or close < head:
        raise ValueError(f"not a /proc/<pid>/stat line: {line[:80]!r}")
    fields = line[close + 2:].split()
    if len(fields) < 15:
        raise ValueError(f"a /proc/<pid>/stat line with {len(fields)} fields after the name, "
                         f"expected at least 15: {line[:80]!r}")
    # fields[0] is the state (field 3 of proc(5)); utime is field 14, cstime field 17.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcStat(pid=int(line[:head]), ppid=int(fields[1]), own=utime + stime,
                    waited=cutime + cstime)


def component_of(argv: tuple[str, ...]) -> str:
    """Which component a child of the harness is, by its command line: Toxiproxy's server, the
    mocks, Locust, the harness's own watchdog, or else the notifier under test."""
    if argv and Path(argv[0]).name.startswith("toxiproxy"):
        return "toxiproxy"
    module = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m"), "")
    if module == "mocks" or module.startswith("mocks."):
        return "mocks"
    if module == "locust" or Path(argv[0] if argv else "").name == "locust":
        return "locust"
    if module.startswith("harness."):
        return "harness"
    return "notifier"


def read_table(proc: Path = Path("/proc"),
               pids: Iterable[int] | None = None) -> dict[int, ProcStat]:
    """The stat lines now of `pids` (None: every process); those that end while being read
    are left out."""
    if pids is None:
        pids = (int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
    table = {}
    for pid in pids:
        try:
            table[pid] = parse_stat((proc / str(pid) / "stat").read_text())
        except (OSError, ValueError):
            continue  # gone meanwhile
    return table


def read_argv(pid: int, proc: Path = Path("/proc")) -> tuple[str, ...]:
    """A process's command line (empty once it is gone)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def run_queue_wait(pid: int, proc: Path = Path("/proc")) -> int:
    """Nanoseconds the threads of a process alive now have waited, ready, for a core (0 once
    the process is gone; a thread that has ended takes its share with it)."""
    total = 0
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return total


def tree_ticks(table: Mapping[int, ProcStat], root: int,
               kinds: Mapping[int, str]) -> dict[int, tuple[str, int]]:
    """The run's processes in `table` below `root` (the harness), each with its component and
    its CPU ticks: `kinds` names the component of each child of the root; the root itself is
    "harness" with only its own time."""
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: dict[int, tuple[str, int]] = {}
    if root in table:
        found[root] = ("harness", table[root].own)
    stack = [(child, kinds.get(child, "notifier")) for child in children.get(root, ())]
    while stack:
        pid, kind = stack.pop()
        found[pid] = (kind, table[pid].own + table[pid].waited)
        stack.extend((child, kind) for child in children.get(pid, ()))
    return found


@dataclass(frozen=True)
class Counts:
    """A run's counters by component (every one of COMPONENTS): CPU in clock ticks, and
    seconds spent ready but waiting for a core."""

    cpu: dict[str, int]
    waited: dict[str, float]


class RunMeter:
    """Counts a run's CPU by component across samples. A child of the harness that has ended
    keeps its last count (the harness waited for it, and only its own time is the harness's);
    a deeper process that ended moved into its parent's waited-for time, counted there. Each
    process's wait for a core is the most seen of it (its ended threads take theirs away).

    Only every `rescan` seconds does a sample read all of /proc to find new processes; between
    them it reads the run's known ones. The counters are cumulative, so a process found late
    is counted whole, and one that ended unseen is in its parent's waited-for time."""

    def __init__(self, root: int, proc: Path = Path("/proc"), rescan: float = 1.0) -> None:
        self.root = root
        self._proc = proc
        self._rescan = rescan
        self._scanned = -rescan
        self._known: set[int] = set()
        self._kinds: dict[int, str] = {}
        self._ended_children: dict[int, tuple[str, int]] = {}
        self._last_children: dict[int, tuple[str, int]] = {}
        self._waits: dict[int, tuple[str, int]] = {}

    def sample(self, table: Mapping[int, ProcStat] | None = None) -> Counts:
        """The run's counters so far (from `table` if given, else from /proc)."""
        if table is None:
            now = time.monotonic()
            if now - self._scanned >= self._rescan:
                table, self._scanned = read_table(self._proc), now
            else:
                table = read_table(self._proc, {self.root, *self._known})
        for pid in (stat.pid for stat in table.values() if stat.ppid == self.root):
            if pid not in self._kinds:
                self._kinds[pid] = component_of(read_argv(pid, self._proc))
        found = tree_ticks(table, self.root, self._kinds)
        self._known = set(found)
        children = {pid: found[pid] for pid in self._kinds if pid in found}
        for pid, counted in self._last_children.items():
            if pid not in children:
                self._ended_children[pid] = counted
        self._last_children = children
        for pid, (kind, _) in found.items():
            seen = self._waits.get(pid, (kind, 0))[1]
            self._waits[pid] = (kind, max(seen, run_queue_wait(pid, self._proc)))
        waited = totals(self._waits.values())
        return Counts(cpu=totals((*found.values(), *self._ended_children.values())),
                      waited={kind: ns / 1e9 for kind, ns in waited.items()})


def totals(counted: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Ticks summed by component, every one of COMPONENTS present."""
    summed = dict.fromkeys(COMPONENTS, 0)
    for kind, ticks in counted:
        summed[kind] += ticks
    return summed


def machine_busy_ticks(proc: Path = Path("/proc")) -> int:
    """Ticks every core of the machine spent busy since boot (all of /proc/stat's cpu line but
    idle and iowait)."""
    first = (proc / "stat").read_text().split("\n", 1)[0].split()
    values = [int(value) for value in first[1:9]]
    return sum(values) - values[3] - values[4]
