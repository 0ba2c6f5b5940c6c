"""Distributed Locust: the command lines and environment of a master and its workers (the same
rate and users as one process, the token never on argv), each worker's own seed stream and
journal file, remote workers joining with `notifychaos load-worker`, and the web UI."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from harness.errors import LoadError, ScenarioError
from harness.loadgen import (
    LOCAL_JOIN_WAIT,
    LOCUSTFILE,
    REMOTE_JOIN_WAIT,
    TOKEN_ENV,
    WEB_UI_AUTOQUIT,
    LoadGenerator,
    LoadPlan,
    app_journal_source,
    app_picks_seed,
    parse_master,
    plan_load,
    workers_connected,
)
from harness.processes import poll_until
from harness.scenario import Scenario, load_scenario
from tests.conftest import ROOT

TOKEN = "a-token-for-this-test-only-0123456789"
LEDGER = "http://127.0.0.1:9"  # nothing listens: the ticks fail, which these tests allow
SCENARIO = ROOT / "scenarios" / "primary-vendor-outage.yaml"


def scenario(*overrides: str) -> Scenario:
    return load_scenario(SCENARIO, overrides=list(overrides))


def ports(*numbers: int) -> Callable[[], int]:
    return iter(numbers).__next__


def plan(tmp_path: Path, *overrides: str) -> LoadPlan:
    return plan_load(scenario(*overrides), LEDGER, tmp_path, TOKEN, None,
                     port=ports(20001, 20002))


def option(argv: tuple[str, ...], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_one_process_is_headless_and_writes_json_and_csv_into_the_load_folder(
        tmp_path: Path) -> None:
    one = plan(tmp_path)

    argv = one.main.argv
    assert argv[:5] == (sys.executable, "-m", "locust", "-f", str(LOCUSTFILE))
    assert "--headless" in argv and "--master" not in argv and "--worker" not in argv
    assert option(argv, "--json-file") == option(argv, "--csv") == str(tmp_path / "locust")
    assert "--csv-full-history" in argv
    assert (option(argv, "-u"), option(argv, "-t"), option(argv, "-H")) == ("4", "90s", LEDGER)
    assert one.workers == () and one.main.log == tmp_path / "locust.log"
    assert (one.expect_workers, one.master_address, one.web_url) == (0, None, None)


def test_a_master_on_loopback_expects_its_workers_which_join_it_there(tmp_path: Path) -> None:
    two = plan(tmp_path, "load.workers=2")

    master = two.main.argv
    assert "--master" in master and "--headless" in master
    assert option(master, "--master-bind-host") == "127.0.0.1"
    assert option(master, "--master-bind-port") == "20001"
    assert option(master, "--expect-workers") == "2"
    assert option(master, "--expect-workers-max-wait") == str(LOCAL_JOIN_WAIT)
    assert two.master_address == "127.0.0.1:20001"
    assert [worker.name for worker in two.workers] == ["locust-worker-0", "locust-worker-1"]
    assert len({worker.log for worker in two.workers} | {two.main.log}) == 3
    for worker in two.workers:
        assert worker.argv == (sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
                               "--worker", "--master-host", "127.0.0.1", "--master-port", "20001")


def test_workers_tick_at_the_rate_and_with_the_users_of_one_process(tmp_path: Path) -> None:
    one, two = plan(tmp_path), plan(tmp_path, "load.workers=2")

    # The master splits the same users among its workers; each ticks at RATE / USERS.
    assert two.env == one.env
    assert (two.env["NOTIFYCHAOS_RATE"], two.env["NOTIFYCHAOS_USERS"]) == ("4", "4")
    for name in ("-u", "-r", "-t", "-H"):
        assert option(two.main.argv, name) == option(one.main.argv, name)


def test_the_token_is_in_the_environment_of_every_process_and_on_no_command_line(
        tmp_path: Path) -> None:
    two = plan(tmp_path, "load.workers=2", "load.web_ui=true")

    assert two.env[TOKEN_ENV] == TOKEN
    assert all(TOKEN not in " ".join(process.argv) for process in (two.main, *two.workers))


def test_the_web_ui_is_served_on_loopback_and_the_run_still_starts_and_ends_by_itself(
        tmp_path: Path) -> None:
    single = plan(tmp_path, "load.web_ui=true")
    distributed = plan(tmp_path, "load.web_ui=true", "load.workers=2")

    for load, autoquit in ((single, "0"), (distributed, str(WEB_UI_AUTOQUIT))):
        argv = load.main.argv
        assert "--headless" not in argv and "--autostart" in argv
        assert option(argv, "--autoquit") == autoquit
        assert option(argv, "--web-host") == "127.0.0.1"
        assert load.web_url == f"http://127.0.0.1:{option(argv, '--web-port')}/"
    # The web port is drawn first, the master's next.
    assert option(distributed.main.argv, "--web-port") == "20001"
    assert option(distributed.main.argv, "--master-bind-port") == "20002"


def test_remote_workers_count_among_the_workers_and_are_waited_for_longer(
        tmp_path: Path) -> None:
    mixed = plan(tmp_path, "load.workers=3", "load.remote_workers=2")

    assert option(mixed.main.argv, "--expect-workers") == "3"
    assert option(mixed.main.argv, "--expect-workers-max-wait") == str(REMOTE_JOIN_WAIT)
    assert [worker.name for worker in mixed.workers] == ["locust-worker-0"]
    assert mixed.remote == 2


def test_more_remote_workers_than_workers_is_refused_where_written() -> None:
    with pytest.raises(ScenarioError, match=r"load: .*remote_workers is 2 but there are only 1"):
        scenario("load.workers=1", "load.remote_workers=2")


def test_remote_workers_cannot_carry_app_opens(tmp_path: Path) -> None:
    remote_app = scenario("load.workers=1", "load.remote_workers=1", "app={opens: 1/s}")

    with pytest.raises(LoadError, match=r"remote_workers cannot carry app opens"):
        LoadGenerator(remote_app, LEDGER, tmp_path, TOKEN, app_url=LEDGER,
                      journal_dir=tmp_path / "journal")


def test_each_worker_picks_borrowers_from_its_own_seed_stream() -> None:
    borrowers = [f"B{number:06d}" for number in range(200)]

    def picks(worker: int | None) -> list[str]:
        draws = random.Random(app_picks_seed(42, worker))
        return [draws.choice(borrowers) for _ in range(20)]

    # One process keeps the stream it always had.
    assert app_picks_seed(42, None) == "42:app-opens"
    assert picks(0) == picks(0)
    assert len({tuple(picks(worker)) for worker in (None, 0, 1, 2)}) == 4


def test_each_worker_journals_its_opens_into_its_own_file() -> None:
    assert app_journal_source(None) == "locust-app"
    assert [app_journal_source(index) for index in (0, 1)] == ["locust-app-0", "locust-app-1"]


def test_the_workers_connected_are_read_from_the_masters_log() -> None:
    log = (b"[2026-12-01 23:29:01,538] vm/INFO/locust.runners: vm_b4 (index 0) reported as "
           b"ready. 1 workers connected.\n[2026-12-01 23:29:01,772] vm/INFO/locust.runners: "
           b"vm_94 (index 1) reported as ready. 2 workers connected.\n")

    assert workers_connected(b"") == 0
    assert workers_connected(log) == 2


@pytest.mark.parametrize("address", ["5557", "host:", ":5557", "host:port", "host:70000"])
def test_a_master_address_that_is_not_host_and_port_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match=r"--master: expected HOST:PORT"):
        parse_master(address)


def test_load_worker_without_the_token_says_so_in_one_line() -> None:
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    done = subprocess.run([sys.executable, "-m", "harness", "load-worker", "--master",
                           "127.0.0.1:20001", "--rate", "4", "--users", "4"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"notifychaos: error: load-worker: {TOKEN_ENV} is not set; expected the run's token "
        '("token" in the run folder\'s mocks-manifest.json)']


@pytest.fixture
def remote_worker(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start `notifychaos load-worker` against a master, as a user would on another host."""
    started: list[subprocess.Popen[bytes]] = []

    def start(master: str) -> subprocess.Popen[bytes]:
        with (tmp_path / "remote-worker.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "harness", "load-worker", "--master", master, "--rate",
                 "4", "--users", "2"], env={**os.environ, TOKEN_ENV: TOKEN}, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in path.read_text().split()]
    except OSError:
        return []


def test_a_remote_worker_joins_with_the_token_in_its_environment_and_leaves_with_the_master(
        tmp_path: Path, remote_worker: Callable[[str], subprocess.Popen[bytes]]) -> None:
    short = scenario("duration=4s", "timeline=[]", "load.users=2", "load.workers=2",
                     "load.remote_workers=1")
    load = LoadGenerator(short, LEDGER, tmp_path / "load", TOKEN)
    try:
        assert load.plan.master_address is not None
        hint = load.remote_hint()
        assert hint is not None and TOKEN not in hint
        assert f"load-worker --master {load.plan.master_address} --rate 4 --users 2" in hint
        joining = remote_worker(load.plan.master_address)
        load.wait_for_workers()  # one local, one remote
        assert load.joined() == 2
        [locust] = poll_until(lambda: _children(joining.pid) or None, timeout=30) or [0]
        assert f"{TOKEN_ENV}={TOKEN}".encode() in Path(f"/proc/{locust}/environ").read_bytes()
        assert TOKEN.encode() not in Path(f"/proc/{locust}/cmdline").read_bytes()
        assert load.wait(60) is not None
        # A headless master's quit sends every worker home, the remote one too.
        assert joining.wait(30) == 0
    finally:
        totals = load.stop()
    assert totals.exit_code == 1  # every tick failed: no ledger listens
    assert totals.failures == totals.requests > 0
    assert [worker.returncode for worker in load.workers] == [0]


def test_the_web_ui_shows_the_workers_live_and_locust_still_ends_by_itself(
        tmp_path: Path) -> None:
    watched = scenario("duration=6s", "timeline=[]", "load.users=2", "load.workers=2",
                       "load.web_ui=true")
    load = LoadGenerator(watched, LEDGER, tmp_path / "load", TOKEN)
    try:
        assert load.web_url is not None
        assert load.web_ui_ready()
        load.wait_for_workers()
        with httpx.Client(base_url=load.web_url, timeout=5.0) as client:
            assert client.get("/").status_code == 200

            def running() -> dict[str, object] | None:
                report: dict[str, object] = client.get("/stats/requests").json()
                return report if report.get("state") == "running" else None

            report = poll_until(running, timeout=30)
        assert report is not None and report["worker_count"] == 2
        # The run time, then the autoquit's wait: it quits with no one asking.
        assert load.wait(60) is not None
    finally:
        load.stop()
    for name in ("stats", "stats_history", "failures", "exceptions"):
        assert (tmp_path / "load" / f"locust_{name}.csv").is_file()
    assert (tmp_path / "load" / "locust.json").is_file()
