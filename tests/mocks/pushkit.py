"""Helpers for the push service mock's tests: the mock process serving a config (`serving`, any
channels), the push tokens of the borrowers its ledger has made (known from a Bank with the same
seed), its fault switch, and what its journal gained."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from mockkit import CONTROL, LEAD, TOKEN, WINDOW, Mocks, serving, tick

from harness.journal import E, read_journal
from mocks.bank import Bank, Changes, Population
from mocks.manifest import ChannelEndpoint, MocksConfig


@dataclass(frozen=True)
class Push:
    """A mock process serving the push channel, and tokens of borrowers its bank has made."""

    mocks: Mocks
    endpoint: ChannelEndpoint
    live: tuple[str, ...]
    """Tokens of apps still installed."""
    stale: tuple[str, ...]
    """Tokens of apps since removed."""

    @property
    def send_url(self) -> str:
        return f"{self.endpoint.url}/v1/projects/{self.endpoint.values['project']}/messages:send"


@contextmanager
def running_push(workdir: Path, *, seed: int, population: Population,
                 reminders: int) -> Iterator[Push]:
    """The mock process with the push channel (and no SMS vendor); its ledger schedules
    `reminders` reminders, whose borrowers' tokens a Bank with the same seed tells."""
    config = MocksConfig(seed=seed, window=WINDOW, lead=LEAD,
                         journal_dir=str(workdir / "journal"), population=population,
                         token=TOKEN, vendors={}, channels=["push"], run_dir=str(workdir))
    with serving(workdir, config) as mocks:
        bank = Bank(population, Changes(), lead=LEAD, window=WINDOW, seed=seed)
        tokens = []
        with httpx.Client(timeout=5, headers=CONTROL) as client:
            for _ in range(reminders):
                tick(client, mocks)
                tokens.append(bank.schedule(time.time()).record.borrower.device_token)
        apps = sorted({token for token in tokens if token})
        yield Push(mocks, mocks.manifest.channels["push"],
                   live=tuple(t for t in apps if not bank.stale_token(t)),
                   stale=tuple(t for t in apps if bank.stale_token(t)))


class JournalTail:
    """The events the mock process journals from now on (it is the journal's one source)."""

    def __init__(self, push: Push) -> None:
        self._dir = push.mocks.journal_dir
        self._seen = max((event.seq for event in read_journal(self._dir).events), default=0)

    def new(self, kind: type[E]) -> list[E]:
        """The events of type `kind` journaled since this tail was made."""
        return [event for event in read_journal(self._dir).of(kind) if event.seq > self._seen]


@contextmanager
def push_faults(push: Push, **faults: object) -> Iterator[None]:
    """The push service's faults in force (through its control API); cleared after."""
    with httpx.Client(timeout=5, headers=CONTROL) as client:
        client.put(push.endpoint.control_url, json=faults).raise_for_status()
        try:
            yield
        finally:
            client.delete(push.endpoint.control_url).raise_for_status()
