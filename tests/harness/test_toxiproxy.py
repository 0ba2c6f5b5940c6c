"""Toxiproxy control against the real server: links, outages, toxics, and bounded calls."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.errors import FaultInjectionError, StartupError
from harness.processes import ManagedProcess
from harness.runlock import LockState, reap
from harness.toxiproxy import ToxiproxyControl, ToxiproxyServer, find_server


@pytest.fixture
def control(server: ToxiproxyServer) -> Iterator[ToxiproxyControl]:
    made = ToxiproxyControl(server.url)
    yield made
    made.remove_links()


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """A TCP echo server: what a link forwards to."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield listener.getsockname()[1]
    stop.set()
    server.join(timeout=5)  # before closing: an accept() on a closed socket raises
    listener.close()


def round_trip(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        return conn.recv(4096)


def test_the_server_reports_its_release_version(server: ToxiproxyServer) -> None:
    assert server.version == "2.12.0"
    assert ToxiproxyControl(server.url).version() == "2.12.0"


def test_a_link_forwards_and_an_outage_refuses_connections(control: ToxiproxyControl,
                                                           echo_port: int) -> None:
    link = control.create_link("echo", f"127.0.0.1:{echo_port}")
    assert link.listen_host == "127.0.0.1"
    assert round_trip(link.listen_port) == b"ping"
    control.disable("echo")
    with pytest.raises(ConnectionRefusedError):
        round_trip(link.listen_port)
    control.enable("echo")
    assert round_trip(link.listen_port) == b"ping"


def test_a_latency_toxic_delays_and_its_removal_restores(control: ToxiproxyControl,
                                                         echo_port: int) -> None:
    link = control.create_link("slow", f"127.0.0.1:{echo_port}")
    control.add_toxic("slow", "step0", type="latency", stream="downstream", toxicity=1.0,
                      attributes={"latency": 400, "jitter": 0})
    began = time.monotonic()
    assert round_trip(link.listen_port) == b"ping"
    assert time.monotonic() - began >= 0.4
    control.remove_toxic("slow", "step0")
    toxics = httpx.get(f"{control.url}/proxies/slow/toxics", timeout=5).json()
    assert toxics == []


def test_removing_links_leaves_the_server_empty(server: ToxiproxyServer,
                                                echo_port: int) -> None:
    control = ToxiproxyControl(server.url)
    control.create_link("a", f"127.0.0.1:{echo_port}")
    control.create_link("b", f"127.0.0.1:{echo_port}")
    control.remove_links()
    assert httpx.get(f"{server.url}/proxies", timeout=5).json() == {}


def test_a_duplicate_link_is_a_fault_injection_error(control: ToxiproxyControl,
                                                     echo_port: int) -> None:
    control.create_link("dup", f"127.0.0.1:{echo_port}")
    with pytest.raises(FaultInjectionError, match="create proxy dup"):
        control.create_link("dup", f"127.0.0.1:{echo_port}")


def test_a_hung_control_api_fails_within_the_timeout() -> None:
    # Accepts connections and never answers, as the server does when it deadlocks (#558).
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        control = ToxiproxyControl(f"http://127.0.0.1:{port}", timeout=0.5)
        with pytest.raises(FaultInjectionError, match=r"no answer within 0\.5s"):
            control.create_link("x", "127.0.0.1:1")


def test_no_server_anywhere_is_a_startup_error(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.toxiproxy.PROJECT_TOOLS", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("NOTIFYCHAOS_TOXIPROXY", raising=False)
    with pytest.raises(StartupError, match="no toxiproxy-server found"):
        find_server(str(tmp_path / "absent"))


def test_a_server_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "toxiproxy-server"
    broken.write_text("#!/bin/sh\necho 'flag provided but not defined' >&2\nexit 2\n")
    broken.chmod(0o755)
    with pytest.raises(StartupError) as caught:
        ToxiproxyServer(broken, tmp_path / "tp.log")
    assert "exited with code 2" in str(caught.value)
    assert "flag provided but not defined" in caught.value.log_tail


def test_runs_sharing_a_server_name_their_proxies_apart(server: ToxiproxyServer,
                                                        echo_port: int) -> None:
    # Two runs (or a dead run's leftovers and the next run) make the same links: no collision.
    first = ToxiproxyControl(server.url, prefix="nc-first.")
    second = ToxiproxyControl(server.url, prefix="nc-second.")
    try:
        one, two = (control.create_link("ledger", f"127.0.0.1:{echo_port}")
                    for control in (first, second))
        assert one.listen_port != two.listen_port
        first.disable("ledger")
        with pytest.raises(ConnectionRefusedError):
            round_trip(one.listen_port)
        assert round_trip(two.listen_port) == b"ping"
        assert set(httpx.get(f"{server.url}/proxies", timeout=5).json()) == {
            "nc-first.ledger", "nc-second.ledger"}
    finally:
        first.remove_links()
        second.remove_links()


def test_a_dead_runs_proxies_are_removed_and_no_one_elses(server: ToxiproxyServer,
                                                          echo_port: int) -> None:
    dead = ToxiproxyControl(server.url, prefix="nc-dead.")
    alive = ToxiproxyControl(server.url, prefix="nc-alive.")
    dead.create_link("ledger", f"127.0.0.1:{echo_port}")
    dead.create_link("vendors.twilio", f"127.0.0.1:{echo_port}")
    alive.create_link("ledger", f"127.0.0.1:{echo_port}")
    try:
        state = LockState(run_id="nc-dead", run_dir=str(Path("/nonexistent")), host="h",
                          harness_pid=1, harness_started=0, toxiproxies=(server.url,))
        left = reap(state)
        assert sorted(left.proxies) == ["nc-dead.ledger", "nc-dead.vendors.twilio"]
        assert set(httpx.get(f"{server.url}/proxies", timeout=5).json()) == {"nc-alive.ledger"}
    finally:
        alive.remove_links()


def test_a_server_interrupted_while_it_starts_is_stopped_by_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[ManagedProcess] = []

    class Recorded(ManagedProcess):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the run waits for the server's answer

    monkeypatch.setattr("harness.toxiproxy.ManagedProcess", Recorded)
    monkeypatch.setattr("harness.toxiproxy.poll_until", interrupted)
    with pytest.raises(KeyboardInterrupt), contextlib.ExitStack() as teardown:
        ToxiproxyServer(find_server(), tmp_path / "tp.log", stop_with=teardown)
    [process] = made
    assert process.returncode is not None
