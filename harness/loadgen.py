"""Load from Locust in processes of its own, one or a master and its workers (Locust
monkey-patches whatever imports it)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from harness.clock import pacing_env
from harness.errors import LoadError
from harness.journal import AppOpened
from harness.processes import REAP_TIMEOUT, ManagedProcess, free_port, poll_until
from harness.scenario import App, Scenario
from harness.ticking import TICK_METHOD

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


@dataclass(frozen=True)
class LoadTotals:
    """What Locust reports at the end: its exit code, its HTTP requests and their failures,
    and the ticks those requests carried (answered or not)."""

    exit_code: int | None
    requests: int
    failures: int
    ticks: int = 0


TOKEN_ENV = "NOTIFYCHAOS_TOKEN"
"""The environment variable that gives Locust the run's token (the ledger's admin wants it)."""

APP_ENV = "NOTIFYCHAOS_APP"
"""The environment variable that gives Locust the borrower app's load (an `AppLoad` as JSON)."""

APP_TIMEOUT = 5.0
"""Seconds a borrower's app waits to connect, and for each read: no longer than a fault lasts,
so that a dead link shows as opens with no answer."""


class AppLoad(BaseModel):
    """Borrowers opening the bank's app, as Locust's process is told: where the app's API is
    (through the `app` link), how often in all, by how many users, how many opens also switch
    reminders off, the seed of its picks and the run's journal folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    opens: float
    users: int
    opt_outs: float
    seed: int
    journal_dir: str

    @classmethod
    def of(cls, app: App, seed: int, url: str, journal_dir: Path) -> AppLoad:
        # Enough users that the rate holds while every open waits out its timeouts (one
        # request, or two with an opt-out): constant throughput runs late, never ahead.
        per_open = APP_TIMEOUT * (1 + app.opt_outs)
        return cls(url=url, opens=app.opens, users=max(1, math.ceil(app.opens * per_open)),
                   opt_outs=app.opt_outs, seed=seed, journal_dir=str(journal_dir))


def app_opened(borrower_id: str, t: float, latency: float, status: int,
               body: bytes) -> AppOpened:
    """An open of the app at `t` as the journal keeps it. `status` 0 is no answer; so is a 200
    whose body is not the borrower's view (a link that cut it short): it showed them nothing."""
    opened = AppOpened(t=t, borrower_id=borrower_id, status=status or None, latency=latency)
    if status != 200:
        return opened
    try:
        view = json.loads(body)
    except ValueError:
        view = None
    if not isinstance(view, dict) or view.get("borrower_id") != borrower_id:
        return opened.model_copy(update={"status": None})
    if "installment" in view and view["installment"] is None:
        return opened
    shown = {key: view.get(key) for key in ("reminder_id", "amount", "due_date")}
    if not all(isinstance(value, str) for value in shown.values()):
        return opened.model_copy(update={"status": None})
    return opened.model_copy(update=shown)


LOCAL_JOIN_WAIT = 60
"""Seconds the master waits for its local workers to join (each imports Locust, a second or
two; far longer on a loaded machine)."""

REMOTE_JOIN_WAIT = 600
"""Seconds it waits when some workers join from other hosts (someone starts them by hand)."""

WORKERS_LEAVE = 5.0
"""Seconds the workers have to leave by themselves once the master has ended."""

STOP_TIMEOUT = 5
"""Seconds Locust lets running tasks finish when the load stops."""

WEB_UI_AUTOQUIT = STOP_TIMEOUT + 3
"""Seconds a master with the web UI stays after its run time. Unlike a headless run's quit, its
stop sends the workers no quit: each reports again within 3 s and rejoins once its tasks had
their STOP_TIMEOUT, and the master's quit then reaches it (else the harness's SIGINT does)."""

_JOINED = re.compile(rb"(\d+) workers connected")
"""What Locust's master logs each time a worker reports ready (runners.py, 2.47)."""


def workers_connected(master_log: bytes) -> int:
    """How many workers a Locust master's log last said were connected (0 before any)."""
    counts = _JOINED.findall(master_log)
    return int(counts[-1]) if counts else 0


def app_picks_seed(seed: int, worker_index: int | None) -> str:
    """The seed of the app opens' picks in one Locust process: the run's own stream for a
    single process, one stream per worker (by Locust's worker index) so that no two replay the
    same borrowers."""
    return f"{seed}:app-opens" if worker_index is None else f"{seed}:app-opens:{worker_index}"


def app_journal_source(worker_index: int | None) -> str:
    """The journal source (and file name) of one Locust process's app opens: two processes
    never append to one file."""
    return "locust-app" if worker_index is None else f"locust-app-{worker_index}"


@dataclass(frozen=True)
class LocustProcess:
    """One Locust process to start: its name, command line and log file."""

    name: str
    argv: tuple[str, ...]
    log: Path


@dataclass(frozen=True)
class LoadPlan:
    """The Locust processes of a run and what they share: one process, or a master and the
    workers the harness starts (`remote` more join from other hosts); the environment each gets
    on top of the harness's; where the master listens and where its web UI is served."""

    main: LocustProcess
    workers: tuple[LocustProcess, ...]
    env: Mapping[str, str]
    expect_workers: int = 0
    remote: int = 0
    master_address: str | None = None
    web_url: str | None = None


def worker_env(rate: float, users: int, token: str, app: AppLoad | None) -> dict[str, str]:
    """What the locustfile reads from its environment, for every Locust process of a run:
    ticks a second in all, by how many ticking users, the run's token, the app's load."""
    env = {
        "NOTIFYCHAOS_RATE": f"{rate:g}",
        "NOTIFYCHAOS_USERS": str(users),
        # The environment, not argv: any local user can read a process's command line.
        TOKEN_ENV: token,
    }
    if app is not None:
        env[APP_ENV] = app.model_dump_json()
    return env


def worker_argv(master_host: str, master_port: int) -> tuple[str, ...]:
    """A Locust worker of the harness's locustfile, joining the master at host:port (the
    master tells it the users, the host and when to stop)."""
    return (sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
            "--master-host", master_host, "--master-port", str(master_port))


def parse_master(address: str) -> tuple[str, int]:
    """HOST:PORT of a Locust master as host and port; ValueError in one line if it is not."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--master: expected HOST:PORT (e.g. 127.0.0.1:5557), got {address!r}")
    return host, int(port)


def run_remote_worker(master: str, rate: float, users: int, token: str) -> int:
    """Run one Locust worker of the harness's locustfile that joins `master` (HOST:PORT) with
    the run's `token` in its environment, until the master sends it home; its exit code. A
    Ctrl-C reaches it too (same terminal), and it is given time to leave the master cleanly."""
    host, port = parse_master(master)
    env = {**os.environ, **worker_env(rate, users, token, None)}
    # An empty cwd: Locust reads locust.conf and pyproject.toml from its cwd.
    with tempfile.TemporaryDirectory(prefix="notifychaos-worker-") as cwd:
        worker = subprocess.Popen(worker_argv(host, port), env=env, cwd=cwd,
                                  stdin=subprocess.DEVNULL)
        try:
            return worker.wait()
        except KeyboardInterrupt:
            try:
                return worker.wait(REAP_TIMEOUT * 2)
            except subprocess.TimeoutExpired:
                worker.kill()
                return worker.wait()


def plan_load(scenario: Scenario, ledger_admin_url: str, workdir: Path, token: str,
              app: AppLoad | None, *, port: Callable[[], int] = free_port) -> LoadPlan:
    """The Locust processes for `scenario` (ports from `port`), none started yet."""
    users = scenario.load.users + (app.users if app else 0)
    # Every user is up as soon as the ticking ones alone would be: the app's must not hold
    # back the reminders.
    spawn_rate = scenario.load.spawn_rate * users / scenario.load.users
    stats = workdir / "locust"
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
        "-u", str(users), "-r", f"{spawn_rate:g}",
        "-t", f"{scenario.duration:g}s", "-H", ledger_admin_url,
        "--json-file", str(stats), "--csv", str(stats), "--csv-full-history",
        "--only-summary", "--stop-timeout", str(STOP_TIMEOUT),
    ]
    workers = scenario.load.workers
    web_url = None
    if scenario.load.web_ui:
        # Not headless: the UI is served, yet the run starts and quits by itself as headless.
        web_port = port()
        argv += ["--autostart", "--autoquit", str(WEB_UI_AUTOQUIT if workers else 0),
                 "--web-host", "127.0.0.1", "--web-port", str(web_port)]
        web_url = f"http://127.0.0.1:{web_port}/"
    else:
        argv.append("--headless")
    env = worker_env(scenario.reminders.rate, scenario.load.users, token, app)
    if workers == 0:
        return LoadPlan(LocustProcess("locust", tuple(argv), workdir / "locust.log"), (), env,
                        web_url=web_url)
    remote = scenario.load.remote_workers
    master_port = port()
    # Loopback only: Locust's workers join with no credentials at all.
    argv += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
             str(master_port), "--expect-workers", str(workers),
             "--expect-workers-max-wait", str(REMOTE_JOIN_WAIT if remote else LOCAL_JOIN_WAIT)]
    local = tuple(LocustProcess(f"locust-worker-{index}", worker_argv("127.0.0.1", master_port),
                                workdir / f"locust-worker-{index}.log")
                  for index in range(workers - remote))
    return LoadPlan(LocustProcess("locust-master", tuple(argv), workdir / "locust.log"), local,
                    env, expect_workers=workers, remote=remote,
                    master_address=f"127.0.0.1:{master_port}", web_url=web_url)


class LoadGenerator:
    """One Locust run ticking the ledger (each tick schedules a reminder, a request carries
    every tick due since the last) at the scenario's
    rate, with the run's `token`: one process, or a master and `load.workers` workers; with the
    scenario's `app`, borrowers also open the app at `app_url` and journal each open into
    `journal_dir` (required then). Locust's JSON and CSV statistics go to `workdir`."""

    def __init__(self, scenario: Scenario, ledger_admin_url: str, workdir: Path,
                 token: str, *, app_url: str | None = None,
                 journal_dir: Path | None = None, epoch: float | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self._stats = workdir / "locust"
        self._ledger_url = ledger_admin_url
        app: AppLoad | None = None
        if scenario.app is not None:
            if app_url is None or journal_dir is None:
                raise ValueError(f"scenario {scenario.name!r} has app opens: LoadGenerator "
                                 "needs app_url and journal_dir")
            if scenario.load.remote_workers:
                raise LoadError(f"scenario {scenario.name!r}: load.remote_workers cannot "
                                "carry app opens (their journal would stay on the other hosts)")
            app = AppLoad.of(scenario.app, scenario.seed, app_url, journal_dir)
        self.plan = plan_load(scenario, ledger_admin_url, workdir, token, app)
        # A shaped or month run is paced by its curve, from the month's epoch if it has one.
        env = {**os.environ, **self.plan.env, **pacing_env(scenario, epoch)}
        # cwd is the run's own folder: Locust reads locust.conf and pyproject.toml from its cwd.
        self.process = ManagedProcess(self.plan.main.name, self.plan.main.argv,
                                      log_path=self.plan.main.log, env=env, cwd=workdir)
        self.workers: list[ManagedProcess] = []
        try:
            for worker in self.plan.workers:
                self.workers.append(ManagedProcess(worker.name, worker.argv, log_path=worker.log,
                                                   env=env, cwd=workdir))
        except BaseException:
            self._stop_all()
            raise

    @property
    def web_url(self) -> str | None:
        """Where Locust's web UI is served, if the scenario asks for it."""
        return self.plan.web_url

    def web_ui_ready(self, timeout: float = 30.0) -> bool:
        """Whether the web UI (if asked for) accepts connections within `timeout` seconds;
        StartupError if Locust ends first."""
        if self.plan.web_url is None:
            return False
        port = urlsplit(self.plan.web_url).port or 80

        def listening() -> bool | None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                return True if sock.connect_ex(("127.0.0.1", port)) == 0 else None

        return poll_until(listening, timeout=timeout, watch=self.process) is not None

    def remote_hint(self) -> str | None:
        """How remote workers join this run, if some are expected (the token is not in it)."""
        if self.plan.master_address is None or not self.plan.remote:
            return None
        master_port = self.plan.master_address.rsplit(":", 1)[1]
        ledger_port = urlsplit(self._ledger_url).port
        return (f"locust master at {self.plan.master_address} waits up to {REMOTE_JOIN_WAIT}s "
                f"for {self.plan.remote} remote worker(s): on each, forward ports {master_port} "
                f"and {ledger_port} to this host (ssh -N -L {master_port}:127.0.0.1:"
                f"{master_port} -L {ledger_port}:127.0.0.1:{ledger_port} HOST), then run "
                f"NOTIFYCHAOS_TOKEN=<the run's token> notifychaos load-worker --master "
                f"{self.plan.master_address} --rate {self.plan.env['NOTIFYCHAOS_RATE']} "
                f"--users {self.plan.env['NOTIFYCHAOS_USERS']}")

    def wait_for_workers(self) -> None:
        """Return once every expected worker has joined the master (at once without workers);
        LoadError if the master gives up or a local worker dies first."""
        if not self.plan.expect_workers:
            return
        deadline = time.monotonic() + (REMOTE_JOIN_WAIT if self.plan.remote
                                       else LOCAL_JOIN_WAIT) + 10.0
        while self.joined() < self.plan.expect_workers:
            for process in (self.process, *self.workers):
                if process.returncode is not None:
                    raise LoadError(f"{process.name} exited with code {process.returncode} "
                                    f"before every worker joined (log: {process.log_path})")
            if time.monotonic() >= deadline:
                raise LoadError(f"{self.joined()} of {self.plan.expect_workers} Locust workers "
                                f"joined in time (log: {self.process.log_path})")
            time.sleep(0.2)

    def joined(self) -> int:
        """How many workers the master last said were connected."""
        try:
            return workers_connected(self.process.log_path.read_bytes())
        except OSError:
            return 0

    def wait(self, timeout: float) -> int | None:
        """Wait for Locust to finish its run time; its exit code, or None if still running."""
        return self.process.wait(timeout)

    def stop(self) -> LoadTotals:
        """Stop Locust if it still runs (SIGINT to the master writes all its outputs, and sends
        its workers home) and read its totals."""
        code = self._stop_all()
        requests = failures = ticks = 0
        try:
            entries = json.loads(self._stats.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = []
        for entry in entries:
            if entry.get("method") == TICK_METHOD:
                ticks += int(entry.get("num_requests", 0))
                continue
            requests += int(entry.get("num_requests", 0))
            failures += int(entry.get("num_failures", 0))
        return LoadTotals(code, requests, failures, ticks)

    def _stop_all(self) -> int | None:
        code = self.process.stop(grace=10.0, signum=signal.SIGINT)
        # The master's quit tells its workers to leave: a little while to do so, then SIGINT.
        deadline = time.monotonic() + WORKERS_LEAVE
        for worker in self.workers:
            worker.wait(max(0.0, deadline - time.monotonic()))
            worker.stop(grace=5.0, signum=signal.SIGINT)
        return code
