"""Entry point: read the settings, wire the parts, serve until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable

import aiohttp
from aiohttp import web

from .alerts import Alerter
from .channels import FallbackChannel
from .dispatch import Dispatcher
from .leadership import Leadership, Role
from .ledger import LedgerClient
from .mail import MailChannel
from .outbox import Outbox, OutboxError
from .primary import PrimaryCheck
from .service import ReminderService
from .settings import ConfigError, Settings
from .vendors import build_vendor
from .web import build_app

log = logging.getLogger("reminder_service")

FEED_TIMEOUT = 5.0


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"reminder-service: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        outbox = Outbox(settings.outbox_path, settings.version, settings.ha)
    except OutboxError as exc:
        print(f"reminder-service: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(
            f"reminder-service: cannot open outbox {settings.outbox_path}: {exc}", file=sys.stderr
        )
        return 2
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(settings, outbox))
    except ConfigError as exc:  # what only starting a client finds (an unusable key file)
        print(f"reminder-service: {exc}", file=sys.stderr)
        return 2
    finally:
        outbox.close()
    return 0


async def serve(settings: Settings, outbox: Outbox) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    # No cap on connections beyond the workers' own: each send holds one at a time, and
    # aiohttp's default of 100 would make the feed's poll queue behind 100 workers' sends.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        alerter = Alerter(session, settings.alert_url, settings.defect)
        ledger = LedgerClient(
            session,
            settings.ledger_url,
            feed_timeout=FEED_TIMEOUT,
            primary_timeout=settings.primary_timeout,
            defect=settings.defect,
            calendar=settings.calendar,
        )
        vendors = [
            build_vendor(
                config,
                session,
                timeout=settings.vendor_timeout,
                public_url=settings.public_url,
                app_link=settings.app_link,
            )
            for config in (settings.primary, settings.secondary)
            if config is not None
        ]
        fallbacks = _fallbacks(settings, session)
        dispatcher = Dispatcher(
            vendors,
            settings.mode,
            outbox,
            alerter,
            PrimaryCheck(ledger, alerter),
            reconcile=settings.reconcile,
            defect=settings.defect,
            fallbacks=fallbacks,
        )

        def service() -> ReminderService:
            return ReminderService(
                ledger,
                outbox,
                dispatcher,
                alerter,
                poll_interval=settings.poll_interval,
                workers=settings.workers,
            )

        async def take_over(halt: asyncio.Event) -> None:
            # As a restart does: settle what the last active left in flight, then send.
            await dispatcher.recover()
            await service().run(halt)

        leadership = None if settings.ha is None else Leadership(outbox, settings.ha)
        if leadership is None:
            # A lone instance settles what its last process left in flight before it is ready.
            await dispatcher.recover()
        runner = web.AppRunner(
            build_app(
                outbox,
                settings,
                role=lambda: Role.ACTIVE if leadership is None else leadership.role,
                filtered=dispatcher.carrier_filtered,
            ),
            access_log=None,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", settings.port).start()
            log.info(
                "listening on 127.0.0.1:%d, version %d, mode %s, vendors %s, fallbacks %s,"
                " defect %s%s",
                settings.port,
                settings.version,
                settings.mode.value,
                ", ".join(vendor.name for vendor in vendors),
                ", ".join(channel.name for channel in fallbacks) or "none",
                settings.defect.value if settings.defect else "none",
                "" if settings.ha is None else f", active/standby as {settings.ha.instance}",
            )
            if leadership is None:
                await service().run(stop)
            else:
                await leadership.run(stop, take_over)
        finally:
            await alerter.drain(timeout=1.0)
            await runner.cleanup()
    log.info("stopped")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (aiohttp's client spends about 200 µs of CPU
    a request on it, 250 µs on asyncio's), else asyncio's: the notifier's container image has
    aiohttp alone."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _fallbacks(settings: Settings, session: aiohttp.ClientSession) -> list[FallbackChannel]:
    """The channel clients for settings.fallbacks, in its order."""
    channels: list[FallbackChannel] = []
    for name in settings.fallbacks:
        if name == "push" and settings.push is not None:
            # google-auth only with push: the notifier's container image has aiohttp alone.
            from .push import PushChannel

            channels.append(PushChannel(settings.push, session, timeout=settings.vendor_timeout))
        if name == "email" and settings.mail is not None:
            channels.append(MailChannel(settings.mail))
    return channels


if __name__ == "__main__":
    sys.exit(main())
