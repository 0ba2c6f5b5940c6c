"""Real runs killed at seeded-random moments (SIGINT to a background job, SIGTERM, SIGKILL; in
start-up, load, a fault, the drain) leave no process, port, proxy or container behind, and a
killed run scores the same every time it is reported."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from harness.container import RUN_LABEL
from harness.journal import (
    KILLED,
    ComponentReady,
    Event,
    FaultApplied,
    FaultReverted,
    Journal,
    LoadFinished,
    LoadStarted,
    RunEnded,
    RunStarted,
    read_journal,
)
from harness.processes import free_port
from harness.runlock import LOCK_NAME, read_lock
from harness.toxiproxy import ToxiproxyServer, find_server
from tests.docker_engine import engine, notifier_image
from tests.e2e.conftest import ROOT, wait_for

pytestmark = pytest.mark.e2e

SEED = 8
CONCURRENCY = 4
MARK = "NOTIFYCHAOS_ABORT_CASE"
"""Every process a case's harness starts inherits this from it: what the scans look for."""
OVERRIDES = ("--set", "duration=6s", "--set", "drain=2s", "--set",
             "timeline=[{at: 1s, for: 2s, fault: proxy.down, link: vendors.twilio}]")


def _ready(component: str) -> Callable[[Journal], bool]:
    return lambda journal: any(c.component == component for c in journal.of(ComponentReady))


def _has(kind: type[Event]) -> Callable[[Journal], bool]:
    return lambda journal: bool(journal.of(kind))


# Where a kill is aimed: after which milestone, and up to how many seconds after it.
AIMS: dict[str, tuple[Callable[[Journal], bool], float]] = {
    "start-up": (lambda journal: True, 1.0), "toxiproxy": (_ready("toxiproxy"), 1.5),
    "mocks": (_ready("mocks"), 2.0), "load": (_has(LoadStarted), 2.0),
    "fault": (_has(FaultApplied), 1.0), "drain": (_has(LoadFinished), 1.0)}
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


@dataclass(frozen=True)
class Kill:
    """One planned kill: the signal, the milestone it follows, the delay, the shared server."""

    number: int
    signum: signal.Signals
    aim: str
    delay: float
    shared: bool


@dataclass(frozen=True)
class Outcome:
    """What one kill hit and what was found after it."""

    kill: Kill
    phase: str
    leftovers: list[str]


def plan() -> list[Kill]:
    """Each signal at every milestone once, at a seeded delay after it, every other kill on the
    shared server: 18 kills (more at random milestones would only repeat these cases)."""
    draw = random.Random(SEED)
    kills = []
    for number in range(len(AIMS) * len(SIGNALS)):
        aim = list(AIMS)[number // len(SIGNALS)]
        kills.append(Kill(number, SIGNALS[number % len(SIGNALS)], aim,
                          round(draw.uniform(0, AIMS[aim][1]), 2), number % 2 == 1))
    return kills


@pytest.fixture(scope="module")
def shared_toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Toxiproxy server the runs share (--toxiproxy-url), to look into after each is gone."""
    server = ToxiproxyServer(find_server(), tmp_path_factory.mktemp("tp") / "tp.log")
    yield server.url
    server.stop()


def pids() -> list[int]:
    with os.scandir("/proc") as entries:
        return [int(entry.name) for entry in entries if entry.name.isdigit()]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b""


def remaining(mark: str, run_dir: Path | None) -> list[str]:
    """Live processes that carry the case's mark, or whose cmdline or cwd names its folder."""
    found = []
    for pid in pids():
        stat = _read(f"/proc/{pid}/stat")
        if not stat or stat.rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
            continue
        cmdline = _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ")
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        marked = f"{MARK}={mark}".encode() in _read(f"/proc/{pid}/environ").split(b"\0")
        named = run_dir is not None and (str(run_dir).encode() in cmdline
                                          or cwd.startswith(str(run_dir)))
        if marked or named:
            found.append(f"pid {pid}: {cmdline.decode(errors='replace')[:120]}")
    return found


def listeners(ports: set[int]) -> set[int]:
    """Which of `ports` some socket listens on (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in _read(table).decode().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) in ports:
                found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return found


def run_ports(run_dir: Path) -> set[int]:
    """Every port the run listened on that its folder names (components, mocks)."""
    ports = set()
    with_urls = [c.address for c in read_journal(run_dir / "journal").of(ComponentReady)]
    manifest = run_dir / "mocks-manifest.json"
    if manifest.exists():
        with_urls += [str(value) for value in _strings(json.loads(manifest.read_text()))]
    for url in with_urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "tcp") and parts.port:
            ports.add(parts.port)
    return ports


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def phase_at(events: tuple[Event, ...], moment: float) -> str:
    """The run's phase at wall-clock `moment`, from its journal."""
    phase = "start-up"
    for event in events:
        if event.t > moment:
            break
        if event.source == "reaper":
            continue  # written after the kill (dated at the last event), not a phase
        if isinstance(event, RunStarted):
            phase = "start-up"
        elif isinstance(event, ComponentReady):
            phase = f"{event.component} up"
        elif isinstance(event, (LoadStarted, FaultReverted)):
            phase = "load"
        elif isinstance(event, FaultApplied):
            phase = "fault"
        elif isinstance(event, LoadFinished):
            phase = "drain"
        elif isinstance(event, RunEnded):
            phase = "teardown"
    return phase


def milestone(out: Path, aim: str) -> Path:
    """The run folder, once the kill's milestone is in its journal (or the folder exists)."""
    reached_in, _ = AIMS[aim]

    def reached() -> bool:
        folders = list(out.glob("*/journal"))
        return bool(folders) and reached_in(read_journal(folders[0]))

    wait_for(reached, 90, f"the run to reach {aim}")
    [run_dir] = out.iterdir()
    return run_dir


def harness(out: Path, mark: str, signum: signal.Signals, toxiproxy_url: str | None,
            *more: str) -> subprocess.Popen[str]:
    """`notifychaos run` of the short scenario in a session of its own, marked; for SIGINT, as
    a background job (the shell starts it with SIGINT ignored)."""
    extra = ("--toxiproxy-url", toxiproxy_url) if toxiproxy_url else ()
    argv = [sys.executable, "-m", "harness", "run",
            str(ROOT / "scenarios" / "primary-vendor-outage.yaml"), "--out", str(out),
            *OVERRIDES, *extra, *more]
    if signum == signal.SIGINT:
        argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
    return subprocess.Popen(argv, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, MARK: mark, "COLUMNS": "200"})


def abort(kill: Kill, tmp_path: Path, toxiproxy_url: str) -> Outcome:
    out, mark = tmp_path / f"kill-{kill.number}", f"{os.getpid()}-{kill.number}"
    process = harness(out, mark, kill.signum, toxiproxy_url if kill.shared else None)
    run_dir = milestone(out, kill.aim)
    time.sleep(kill.delay)  # the seeded moment after the milestone, not a wait for anything
    lock = read_lock(run_dir / LOCK_NAME)
    ready = {c.component: c for c in read_journal(run_dir / "journal").of(ComponentReady)}
    target, toxiproxy = ready.get("target"), ready.get("toxiproxy")
    if target is not None and toxiproxy is not None and target.pid is not None:
        # The target is never given Toxiproxy's control API.
        api = str(urlsplit(toxiproxy.address).port).encode()
        seen = _read(f"/proc/{target.pid}/environ") + _read(f"/proc/{target.pid}/cmdline")
        assert b":" + api not in seen, "the target was given Toxiproxy's API port"
    moment = time.time()
    process.send_signal(kill.signum)
    _, stderr = process.communicate(timeout=120)
    if kill.signum != signal.SIGKILL:
        assert process.returncode == 2, stderr
        assert "notifychaos: interrupted" in stderr and "Traceback" not in stderr, stderr
    # A killed harness's watchdog may still be at work: wait (on a deadline) for it to finish.
    deadline = time.monotonic() + 45
    while (leftovers := remaining(mark, run_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    shared = {urlsplit(toxiproxy_url).port}  # the test's own server, not the run's
    leftovers += [f"port {port}" for port in sorted(listeners(run_ports(run_dir) - shared))]
    if lock is not None and kill.shared:
        proxies = httpx.get(f"{toxiproxy_url}/proxies", timeout=5).json()
        leftovers += [f"proxy {name}" for name in proxies if name.startswith(lock.proxy_prefix)]
    if lock is not None:
        leftovers += ["run.lock"] if (run_dir / LOCK_NAME).exists() else []
    phase = phase_at(read_journal(run_dir / "journal").events, moment)
    _rescore_is_stable(run_dir, kill)
    return Outcome(kill, phase, leftovers)


def _rescore_is_stable(run_dir: Path, kill: Kill) -> None:
    reports = []
    for _ in range(2):
        report = subprocess.run([sys.executable, "-m", "harness", "report", str(run_dir)],
                                cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "COLUMNS": "200"})
        assert "Traceback" not in report.stderr, report.stderr
        card = (run_dir / "scorecard.json").read_text() if report.returncode != 2 else ""
        reports.append((report.returncode, report.stdout, card))
    assert reports[0] == reports[1], f"kill {kill}: two reports differ"
    code, stdout, card = reports[0]
    if card:
        status = json.loads(card)["status"]
        assert code == 1 and "NOT JUDGED" in stdout, stdout
        assert status == (KILLED if kill.signum == signal.SIGKILL else "interrupted")


def test_runs_killed_at_random_moments_leave_nothing_and_rescore_the_same(
        tmp_path: Path, shared_toxiproxy: str) -> None:
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        outcomes = list(pool.map(lambda kill: abort(kill, tmp_path, shared_toxiproxy), plan()))
    assert httpx.get(f"{shared_toxiproxy}/proxies", timeout=5).json() == {}
    figures = {
        "kills": len(outcomes),
        "per signal": dict(Counter(o.kill.signum.name for o in outcomes)),
        "phases hit": dict(Counter(o.phase for o in outcomes)),
        "on a shared Toxiproxy": sum(o.kill.shared for o in outcomes),
        "leftovers": sum(len(o.leftovers) for o in outcomes),
        "seconds": round(time.monotonic() - began),
    }
    print(f"\nabort figures: {json.dumps(figures)}")
    assert [(o.kill, o.leftovers) for o in outcomes if o.leftovers] == []
    assert {(o.kill.signum, o.kill.aim) for o in outcomes} == {
        (signum, aim) for signum in SIGNALS for aim in AIMS}
    assert {(o.kill.signum, o.kill.shared) for o in outcomes} == {
        (signum, shared) for signum in SIGNALS for shared in (False, True)}
    assert sum(o.phase == "start-up" or o.phase.endswith(" up") for o in outcomes) >= 3


def test_an_unreachable_toxiproxy_is_a_startup_error(tmp_path: Path) -> None:
    out, nobody = tmp_path / "runs", f"http://127.0.0.1:{free_port()}"
    process = harness(out, "unreachable", signal.SIGTERM, nobody)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert f"notifychaos: error: toxiproxy: no server answers at {nobody}" in stderr
    assert "Traceback" not in stderr
    [run_dir] = out.iterdir()
    wait_for(lambda: not remaining("unreachable", run_dir), 30, "the watchdog to end")
    assert not (run_dir / LOCK_NAME).exists()


def test_a_killed_run_leaves_no_container(tmp_path: Path) -> None:
    client, image = engine(), notifier_image()
    out = tmp_path / "runs"
    process = harness(out, "docker", signal.SIGKILL, None, "--set", f"target.image={image}")
    run_dir = milestone(out, "load")
    process.kill()
    process.communicate(timeout=30)

    def labelled() -> list[object]:
        return list(client.containers.list(all=True,
                                           filters={"label": f"{RUN_LABEL}={run_dir}"}))

    wait_for(lambda: not remaining("docker", run_dir) and not labelled(), 60,
             "the watchdog to remove the run's container")
    log = (run_dir / "logs" / "watchdog.log").read_text(encoding="utf-8")
    assert "1 container (notifychaos-" in log, log


def test_a_dead_run_whose_watchdog_died_too_is_cleaned_up_by_report(
        tmp_path: Path, shared_toxiproxy: str) -> None:
    out = tmp_path / "runs"
    process = harness(out, "orphaned", signal.SIGKILL, shared_toxiproxy)
    run_dir = milestone(out, "load")
    lock = read_lock(run_dir / LOCK_NAME)
    assert lock is not None
    [watchdog] = [pid for pid in pids() if b"harness.watchdog\0" + str(run_dir).encode()
                  in _read(f"/proc/{pid}/cmdline")]
    os.kill(watchdog, signal.SIGKILL)
    process.kill()
    process.communicate(timeout=30)
    assert remaining("orphaned", run_dir), "the children outlived both"

    def ours() -> list[str]:
        proxies = httpx.get(f"{shared_toxiproxy}/proxies", timeout=5).json()
        return [name for name in proxies if name.startswith(lock.proxy_prefix)]

    assert ours()
    report = subprocess.run([sys.executable, "-m", "harness", "report", str(run_dir)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    # Its Toxiproxy is the shared one: what survived is the mocks, the target and Locust.
    assert f"notifychaos: a dead run ({run_dir}) left 3 processes (mocks pid" in report.stderr
    assert ", 3 proxies (" in report.stderr and "its journal sealed" in report.stderr
    assert "NOT JUDGED: the run interrupted (harness killed)" in report.stdout
    assert remaining("orphaned", run_dir) == [] and ours() == []
