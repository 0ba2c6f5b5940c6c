"""Serves every mock of a run in one process, each on its own loopback port; writes the manifest."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from collections.abc import Callable
from pathlib import Path

import trustme
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from harness.journal import JournalWriter
from mocks import alerts, guard, ledger
from mocks.access import require_token
from mocks.catalogue import issue_credentials, serves_tls, vendor_module
from mocks.channels import ChannelDeps, ChannelServer, start_channel
from mocks.deadlines import IDLE_TIMEOUT, LINGER, STOP_GRACE
from mocks.front import FAST_PATH, FrontSite
from mocks.handsets import Handsets
from mocks.manifest import Manifest, MocksConfig, VendorEndpoint
from mocks.private import write_private
from mocks.sends import SendRecord
from mocks.vendor import VendorMock

log = logging.getLogger("mocks")

MAX_LINE = 64 * 1024
"""Bytes of a request line: Alibaba's SDK puts every parameter in the query, and 1000 numbers of
one SendSms take 12 KB there (aiohttp's default is 8 KB)."""


def make_runner(app: web.Application, idle_timeout: float = IDLE_TIMEOUT) -> web.AppRunner:
    """The runner every mock is served by: a half-sent request, idle connections and stopping
    all have their deadlines, request lines may be long, and every request, to any path with
    any method or expectation, reaches the app's middlewares (`guard.cover`)."""
    guard.cover(app)
    return web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout,
                         lingering_time=LINGER, shutdown_timeout=STOP_GRACE,
                         max_line_size=MAX_LINE)


def answer_once_committed(journal: JournalWriter) -> Middleware:
    """A middleware that holds each answer until the events written so far are in the journal
    file: the journal commits in groups (one write per loop turn), and an acknowledged send
    must be in the file before its answer leaves."""

    @web.middleware
    async def commit(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        await journal.committed()
        return response

    return commit


async def _serve(app: web.Application, runners: list[web.AppRunner], token: str,
                 journal: JournalWriter, tls: ssl.SSLContext | None = None) -> str:
    # The token outermost, so a refused control call reaches nothing; then the commit, so it
    # follows every event the app's own middlewares write. The app is frozen by setup().
    app.middlewares[0:0] = [require_token(token), answer_once_committed(journal)]
    runner = make_runner(app)
    await runner.setup()
    fast = app.get(FAST_PATH)
    # The front answers the app's plain hot requests itself and hands it all the rest.
    site: web.BaseSite = (FrontSite(runner, fast, journal, token=token)
                          if fast is not None and tls is None
                          else web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls))
    await site.start()
    runners.append(runner)
    host, port = runner.addresses[0][:2]
    return f"{'https' if tls else 'http'}://{host}:{port}"


def _test_ca(path: Path) -> ssl.SSLContext:
    """A CA made for this run, its certificate written to `path` for clients to trust, and a
    server context with a certificate it issued for 127.0.0.1 and localhost."""
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


async def serve(config: MocksConfig, manifest_path: Path,
                on_ready: Callable[[Manifest], None] = lambda manifest: None) -> None:
    """Serve until SIGTERM or SIGINT; the manifest appears (atomically) once all ports listen,
    and then `on_ready` is called with it."""
    journal = JournalWriter(Path(config.journal_dir), "mocks", group_commit=True)
    record = SendRecord(journal)
    runners: list[web.AppRunner] = []
    channels: list[ChannelServer] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        the_ledger = ledger.Ledger(journal, config)
        ledger_url = await _serve(ledger.create_app(the_ledger), runners, config.token, journal)
        alerts_url = await _serve(alerts.create_app(journal), runners, config.token,
                                journal) + "/alerts"
        vendors: dict[str, VendorEndpoint] = {}
        handsets = Handsets(config.handsets, config.seed)
        ca_path = manifest_path.with_name("mocks-ca.pem")
        tls = _test_ca(ca_path)
        for name, vendor in config.vendors.items():
            mock = VendorMock(name, vendor, issue_credentials(vendor.kind), record, journal,
                              handsets, config.seed)
            url = await _serve(vendor_module(vendor.kind).create_app(mock), runners,
                               config.token, journal, tls if serves_tls(vendor.kind) else None)
            vendors[name] = VendorEndpoint(kind=vendor.kind, url=url,
                                           credentials=mock.credentials,
                                           control_url=f"{url}/__notifychaos/faults",
                                           sends_url=f"{url}/__notifychaos/sends")
        deps = ChannelDeps(journal=journal, record=record, bank=the_ledger.bank,
                           handsets=handsets, seed=config.seed,
                           serve_http=lambda app: _serve(app, runners, config.token, journal),
                           run_dir=Path(config.run_dir or manifest_path.parent))
        for kind in config.channels:
            server = await start_channel(kind, deps)
            channels.append(server)
            log.info("channel %s %s", kind, server.endpoint.url)
        log.info("ledger %s, alert sink %s", ledger_url, alerts_url)
        for name, endpoint in vendors.items():
            log.info("vendor %s (%s) %s", name, endpoint.kind, endpoint.url)
        manifest = Manifest(pid=os.getpid(), ledger_url=ledger_url,
                            ledger_control_url=f"{ledger_url}/__notifychaos/faults",
                            alerts_url=alerts_url,
                            ca_bundle=str(ca_path), vendors=vendors,
                            channels={server.endpoint.kind: server.endpoint
                                      for server in channels}, token=config.token)
        write_private(manifest_path, manifest.model_dump_json(indent=2))
        on_ready(manifest)
        await stop.wait()
    finally:
        # All at once: each waits up to STOP_GRACE for its answers in flight. One runner's
        # failure to stop must not keep the others running or the journal open.
        outcomes = await asyncio.gather(*(runner.cleanup() for runner in runners),
                                        *(server.close() for server in channels),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.error("a mock did not stop cleanly: %r", outcome)
        journal.close()
