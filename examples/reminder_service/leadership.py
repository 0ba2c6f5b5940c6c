"""Active/standby: an instance reads the feed and sends only while it holds the outbox's lease,
renews it while it does, and stands by (taking the lease once it expires) while it does not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Any

from .outbox import LeaseLost, Outbox
from .settings import HaConfig

log = logging.getLogger(__name__)


Active = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""What an instance does while it holds the lease, until the event is set."""


class Role(StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"


class Leadership:
    """Runs `active` (recover the sends left in flight, then send) for as long as this
    instance holds the lease, and again each time it takes the lease anew."""

    def __init__(self, outbox: Outbox, ha: HaConfig) -> None:
        self._outbox = outbox
        self._ha = ha
        self.role = Role.STANDBY

    async def run(self, stop: asyncio.Event, active: Active
                  ) -> None:
        """Until `stop` is set; then gives the lease up, so that a standby takes over at once.

        The first try to take the lease is made before anything awaits: an instance started
        first is active before it answers its first health check.
        """
        try:
            while not stop.is_set():
                term = self._try_to_take()
                if term is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._ha.lease_renew)
                    continue
                log.info("%s holds the lease (term %d): active", self._ha.instance, term)
                self.role = Role.ACTIVE
                try:
                    await self._hold(stop, active)
                except LeaseLost:
                    log.warning("%s lost the lease (term %d): standing by", self._ha.instance,
                                term)
                finally:
                    self.role = Role.STANDBY
        finally:
            self._outbox.release_lease()

    async def _hold(self, stop: asyncio.Event,
                    active: Active) -> None:
        """Run `active` until `stop`, a failed renewal, or a fenced write finds the lease
        gone (LeaseLost); the sends in flight get the service's grace either way, and those
        that finish after the loss record nothing (their writes are fenced)."""
        halt = asyncio.Event()
        work = asyncio.create_task(active(halt), name="active")
        keeper = asyncio.create_task(self._keep(), name="lease-keeper")
        stopped = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({work, keeper, stopped}, return_when=asyncio.FIRST_COMPLETED)
            halt.set()
            await asyncio.wait({work})
        finally:
            for task in (work, keeper, stopped):
                task.cancel()
            await asyncio.gather(work, keeper, stopped, return_exceptions=True)
        for task in (work, keeper):
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error

    def _try_to_take(self) -> int | None:
        try:
            return self._outbox.take_lease()
        except sqlite3.OperationalError as exc:
            # The other instance held the write lock past the busy timeout (frozen mid-write):
            # try again next period rather than die.
            log.warning("cannot take the lease now: %s", exc)
            return None

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._ha.lease_renew)
            try:
                renewed = self._outbox.renew_lease()
            except sqlite3.OperationalError as exc:
                # As above; the fence refuses every write if the lease runs out meanwhile.
                log.warning("cannot renew the lease now: %s", exc)
                continue
            if not renewed:
                raise LeaseLost("the lease expired or was taken before its renewal")
