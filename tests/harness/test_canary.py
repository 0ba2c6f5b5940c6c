"""Canary probes against the real Toxiproxy server: each network fault shows in the probes
that crossed it, a fraction of them under toxicity < 1, none when nothing is in the way."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from aiohttp import web
from pydantic import BaseModel

from harness.canary import Canary, Endpoint, measure, probe, probes_for, tls_context
from harness.journal import FaultMeasured
from harness.scenario import Step
from harness.timeline import NetworkInjector
from harness.toxiproxy import ToxiproxyControl, ToxiproxyServer
from mocks.control import fault_routes
from mocks.paths import CANARY_PATH
from tests.harness.canary_cases import case_id, network_cases, network_step


class _NoFaults(BaseModel):
    pass


@dataclass(frozen=True)
class Upstream:
    """What the links forward to: a mock's control routes, over HTTP and over HTTPS."""

    plain: str
    tls: str
    ca_bundle: str


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    authority = trustme.CA()
    ca_path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_path))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_tls)
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []

    async def serve(tls: ssl.SSLContext | None) -> str:
        app = web.Application()
        app.router.add_routes(fault_routes(_NoFaults, _NoFaults, lambda faults: None))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"{host}:{port}"

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    plain = asyncio.run_coroutine_threadsafe(serve(None), loop).result(10)
    secure = asyncio.run_coroutine_threadsafe(serve(server_tls), loop).result(10)
    yield Upstream(plain, secure, str(ca_path))

    async def cleanup() -> None:
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


@dataclass(frozen=True)
class Links:
    control: ToxiproxyControl
    injector: NetworkInjector
    canary: Canary
    plain: Endpoint
    """The plain link's listen address."""


@pytest.fixture
def links(server: ToxiproxyServer, upstream: Upstream) -> Iterator[Links]:
    control = ToxiproxyControl(server.url)
    made = {"vendors.plain": control.create_link("vendors.plain", upstream.plain),
            "vendors.tls": control.create_link("vendors.tls", upstream.tls)}
    canary = Canary.through(made, secure={"vendors.tls"}, ca_bundle=upstream.ca_bundle)
    plain = made["vendors.plain"]
    yield Links(control, NetworkInjector(control, canary), canary,
                Endpoint(plain.listen_host, plain.listen_port))
    control.remove_links()


def step(fault: str, link: str = "vendors.plain", **params: Any) -> Step:
    return network_step(fault, link, **params)


def applied(links: Links, fault: Step) -> FaultMeasured:
    """Apply the step through the network injector, run the measurement it hands back, undo."""
    measure = links.injector.apply(0, fault)
    try:
        return measure()
    finally:
        links.injector.revert(0, fault)


CASES = network_cases("vendors.plain")


@pytest.mark.parametrize(("fault", "detail"), CASES, ids=[case_id(fault) for fault, _ in CASES])
def test_every_probe_shows_a_fault_in_force(links: Links, fault: Step, detail: str) -> None:
    measured = applied(links, fault)
    assert (measured.step, measured.probes, measured.affected) == (0, 5, 5), measured.detail
    assert detail in measured.detail


@pytest.mark.parametrize("fault", [fault for fault, _ in CASES if fault.fault != "proxy.down"],
                         ids=[fault.fault for fault, _ in CASES if fault.fault != "proxy.down"])
def test_with_nothing_in_the_way_no_probe_shows_the_fault(links: Links, fault: Step) -> None:
    # What makes a run inconclusive: the step was asked for, nothing happened.
    measured = links.canary.measure(3, fault)
    assert (measured.step, measured.probes, measured.affected) == (3, 5, 0), measured.detail
    assert "the others: 5 answered in" in measured.detail


@pytest.mark.parametrize("fault", [
    step("proxy.down", "vendors.tls"),
    step("proxy.latency", "vendors.tls", latency=1000),
    step("proxy.reset_peer", "vendors.tls", timeout=0),
    step("proxy.limit_data", "vendors.tls", bytes=1000),
    step("proxy.slow_close", "vendors.tls", delay=1000),
    step("proxy.slicer", "vendors.tls", average_size=100, size_variation=10),
], ids=lambda fault: fault.fault)
def test_an_https_mock_is_probed_through_tls(links: Links, fault: Step) -> None:
    assert links.canary.measure(0, fault).affected == 0
    measured = applied(links, fault)
    assert measured.affected == 5, measured.detail


def test_under_toxicity_a_fraction_of_the_connections_shows_it(links: Links) -> None:
    fault = step("proxy.latency", latency=1000, toxicity=0.5)
    assert probes_for(fault) == 10 and probes_for(step("proxy.latency", latency=1)) == 5
    links.control.add_toxic("vendors.plain", "half", type="latency", stream="downstream",
                            toxicity=0.5, attributes={"latency": 1000, "jitter": 0})
    try:
        # 32 connections, a toss of 0.5 each: all alike has odds of 2 in 4 billion.
        measured = measure(0, fault, links.plain, probes=32)
    finally:
        links.control.remove_toxic("vendors.plain", "half")
    assert measured.probes == 32 and 0 < measured.affected < 32, measured.detail
    assert f"{measured.affected} of 32 canary connections were delayed >= 800 ms " \
           "(asked 1000 ms, toxicity 0.5)" in measured.detail


def test_a_link_without_a_canary_endpoint_measures_nothing(links: Links) -> None:
    measured = links.canary.measure(2, step("proxy.down", "ledger"))
    assert (measured.probes, measured.affected) == (0, 0)
    assert "no canary endpoint for link ledger" in measured.detail


def test_how_a_connection_ended_is_what_the_probe_saw(links: Links) -> None:
    links.control.disable("vendors.plain")
    try:
        assert probe(links.plain).ended == "refused"
    finally:
        links.control.enable("vendors.plain")
    # A link whose upstream is gone accepts, then closes: no answer, but not refused.
    dead = links.control.create_link("vendors.dead", "127.0.0.1:1")
    observed = probe(Endpoint(dead.listen_host, dead.listen_port))
    assert observed.ended in ("closed", "reset") and observed.answered is None


def test_the_canary_route_reads_what_it_is_sent_and_answers_the_bytes_asked_for(
        upstream: Upstream) -> None:
    host, port = upstream.plain.split(":")
    observed = probe(Endpoint(host, int(port)), ask=12345, upload=2 * 1024 * 1024)
    assert (observed.ended, observed.status) == ("answered", 200)
    host, port = upstream.tls.split(":")
    secure = probe(Endpoint(host, int(port), tls_context(upstream.ca_bundle)), ask=3)
    assert (secure.ended, secure.status) == ("answered", 200)
    # Under /__notifychaos/: the vendor mocks do not journal it as a vendor call.
    assert CANARY_PATH.startswith("/__notifychaos/")
