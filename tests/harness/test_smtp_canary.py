"""The canary through the mail server's link (SMTP) against the real Toxiproxy server and the
real mail server mock: each network fault shows in every probe, none when nothing is in the
way, and the probes are no mail transactions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from harness.canary import SMTP_LINK, Canary, Endpoint, probe
from harness.journal import JournalWriter, VendorCall, read_journal
from harness.scenario import Step
from harness.timeline import NetworkInjector
from harness.toxiproxy import ToxiproxyControl, ToxiproxyServer
from mocks.bank import Bank, Changes, Population
from mocks.channels import ChannelDeps
from mocks.handsets import HandsetConfig, Handsets
from mocks.sends import SendRecord
from mocks.smtp import start
from tests.harness.canary_cases import case_id, network_cases, network_step


@dataclass(frozen=True)
class Mail:
    """The mail server mock, served on a loop of its own: where it listens, its journal."""

    address: str
    journal_dir: Path


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mail]:
    journal_dir = tmp_path_factory.mktemp("mail")
    journal = JournalWriter(journal_dir, "mocks")
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []

    async def serve_http(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    deps = ChannelDeps(journal=journal, record=SendRecord(journal),
                       bank=Bank(Population(), Changes(), lead=5, window=20, seed=3),
                       handsets=Handsets(HandsetConfig(), 3), seed=3, serve_http=serve_http,
                       run_dir=journal_dir)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start(deps), loop).result(10)
    yield Mail(server.endpoint.url.removeprefix("smtp://"), journal_dir)

    async def cleanup() -> None:
        await server.close()
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()
    journal.close()


@dataclass(frozen=True)
class Links:
    injector: NetworkInjector
    canary: Canary


@pytest.fixture
def links(server: ToxiproxyServer, mail: Mail) -> Iterator[Links]:
    control = ToxiproxyControl(server.url)
    made = {SMTP_LINK: control.create_link(SMTP_LINK, mail.address)}
    canary = Canary.through(made, secure=set(), ca_bundle="")
    yield Links(NetworkInjector(control, canary), canary)
    control.remove_links()


def step(fault: str, **params: Any) -> Step:
    return network_step(fault, SMTP_LINK, **params)


# Upstream bandwidth too: the SMTP probe uploads its canary bytes through the link.
CASES = [*network_cases(SMTP_LINK),
         (step("proxy.bandwidth", rate=100, stream="upstream"), "took >= 500 ms for 100 KB")]

IDS = [case_id(fault) for fault, _ in CASES]


@pytest.mark.parametrize(("fault", "detail"), CASES, ids=IDS)
def test_every_probe_through_the_mail_link_shows_a_fault_in_force(
        links: Links, fault: Step, detail: str) -> None:
    measure = links.injector.apply(0, fault)
    try:
        measured = measure()
    finally:
        links.injector.revert(0, fault)
    assert (measured.probes, measured.affected) == (5, 5), measured.detail
    assert detail in measured.detail


@pytest.mark.parametrize("fault", [fault for fault, _ in CASES if fault.fault != "proxy.down"],
                         ids=[i for i in IDS if not i.startswith("proxy.down")])
def test_with_nothing_in_the_way_no_smtp_probe_shows_the_fault(links: Links,
                                                                fault: Step) -> None:
    measured = links.canary.measure(3, fault)
    assert (measured.probes, measured.affected) == (5, 0), measured.detail
    assert "the others: 5 answered in" in measured.detail


def test_the_smtp_probe_answers_the_bytes_asked_and_is_no_mail_call(mail: Mail) -> None:
    host, port = mail.address.split(":")
    target = Endpoint(host, int(port), protocol="SMTP")
    observed = probe(target, ask=12345, upload=2 * 1024 * 1024)
    assert (observed.ended, observed.status, observed.protocol) == ("answered", 250, "SMTP")
    kept = probe(target, close_within=1.0)
    assert kept.ended == "answered" and kept.closed is not None and kept.closed < 1.0
    assert read_journal(mail.journal_dir).of(VendorCall) == []
