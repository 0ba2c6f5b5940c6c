"""The channel mocks beside the SMS vendors (push, mail): what each is given to start, and what
it gives back, so that the mock server starts any of them the same way.

A channel module (`mocks.fcm`, `mocks.smtp`; see `CHANNEL_MODULES`) defines `CREDENTIAL_KEYS`
(the `{<channel>.credentials.<key>}` placeholders it fills), `VALUES` (its further
placeholders, `{<channel>.<name>}`) and `async def start(deps: ChannelDeps) -> ChannelServer`.
It records every message it accepts with `deps.record` (a `SendRecorded` with its channel),
journals each API call as a `VendorCall` and each fault switch that acts as a `FaultTouched`
(`mock` = its channel's name), like the vendor mocks.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from mocks.manifest import ChannelEndpoint, ChannelKind

if TYPE_CHECKING:  # the scenario model imports this module, and the journal the scenario's
    from aiohttp import web

    from harness.journal import JournalWriter
    from mocks.bank import Bank
    from mocks.handsets import Handsets
    from mocks.sends import SendRecord

CHANNEL_MODULES: dict[ChannelKind, str] = {"push": "mocks.fcm", "email": "mocks.smtp"}

ServeHttp = Callable[["web.Application"], Awaitable[str]]
"""Serves an aiohttp app on a loopback port behind the run's token (as every mock is) and
gives its base URL."""


@dataclass(frozen=True)
class ChannelDeps:
    """What a channel mock starts with."""

    journal: JournalWriter
    record: SendRecord
    bank: Bank
    """The ledger's bank: whose address or token is whose, and which tokens are stale."""
    handsets: Handsets
    """Where a message ends up (spam rules, phones that are off) as for SMS."""
    seed: int
    serve_http: ServeHttp
    run_dir: Path


class ChannelServer(Protocol):
    """A started channel mock: where it is, and how to stop it."""

    @property
    def endpoint(self) -> ChannelEndpoint: ...

    async def close(self) -> None: ...


def channel_module(kind: ChannelKind) -> ModuleType:
    """The module that serves channel `kind`."""
    return importlib.import_module(CHANNEL_MODULES[kind])


def channel_placeholders(kind: ChannelKind) -> set[str]:
    """The placeholders channel `kind` fills: `{kind}.url`, `.host`, `.port`, its credentials
    and its further values."""
    module = channel_module(kind)
    keys: tuple[str, ...] = module.CREDENTIAL_KEYS
    values: tuple[str, ...] = module.VALUES
    return ({f"{kind}.url", f"{kind}.host", f"{kind}.port"}
            | {f"{kind}.credentials.{key}" for key in keys}
            | {f"{kind}.{name}" for name in values})


async def start_channel(kind: ChannelKind, deps: ChannelDeps) -> ChannelServer:
    """Start channel `kind`'s mock."""
    start: Callable[[ChannelDeps], Awaitable[ChannelServer]] = channel_module(kind).start
    return await start(deps)
