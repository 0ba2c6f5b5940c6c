"""Keyed draws: the same key gives the same fate in any order; another attempt draws afresh."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from harness.journal import FaultTouched, JournalWriter, read_journal
from mocks.control import LedgerFaults, VendorFaults
from mocks.draws import Attempts, draw
from mocks.handsets import HandsetConfig, Handsets
from mocks.ledger import Ledger
from mocks.manifest import MocksConfig, VendorConfig
from mocks.sends import SendRecord
from mocks.vendor import VendorMock

SEED = 7
MESSAGES = [(f"+86138000{n:05d}", f"ref:{n:08d}") for n in range(12)]


def test_a_draw_depends_on_the_seed_and_the_key_only() -> None:
    first = draw(SEED, "twilio", "drop", "+8613800000001", "body", 0)
    assert first == draw(SEED, "twilio", "drop", "+8613800000001", "body", 0)
    assert 0.0 <= first < 1.0
    assert first != draw(SEED + 1, "twilio", "drop", "+8613800000001", "body", 0)
    assert first != draw(SEED, "aliyun", "drop", "+8613800000001", "body", 0)
    # Parts are kept apart: moving a character from one part to the next is another key.
    assert draw(SEED, "ab", "c") != draw(SEED, "a", "bc")


def test_draws_spread_evenly_and_attempts_are_independent() -> None:
    keys = [(f"+8613{n:09d}", "body") for n in range(4000)]
    first = [draw(SEED, "drop", *key, 0) < 0.3 for key in keys]
    second = [draw(SEED, "drop", *key, 1) < 0.3 for key in keys]
    both = sum(a and b for a, b in zip(first, second, strict=True))
    assert 0.27 < sum(first) / len(keys) < 0.33
    assert 0.27 < sum(second) / len(keys) < 0.33
    # Independent attempts: both dropped about 0.3 * 0.3 of the time, not 0.3 (the same draw).
    assert 0.07 < both / len(keys) < 0.11


def test_attempts_count_each_key_on_its_own() -> None:
    attempts = Attempts()
    assert [attempts.next("a"), attempts.next("b"), attempts.next("a"), attempts.next("a")] == [
        0, 0, 1, 2]


@contextmanager
def _vendor(tmp_path: Path, faults: VendorFaults, handsets: HandsetConfig
            ) -> Iterator[VendorMock]:
    journal = JournalWriter(tmp_path, "mocks")
    vendor = VendorMock("twilio", VendorConfig(kind="twilio"), {}, SendRecord(journal), journal,
                        Handsets(handsets, SEED), SEED)
    vendor.switch(faults)
    try:
        yield vendor
    finally:
        journal.close()


def _fates(tmp_path: Path, order: list[int]) -> dict[tuple[str, str, int], str]:
    """Each send's handset outcome, by (to, body, attempt), sending in `order`."""
    fates: dict[tuple[str, str, int], str] = {}
    attempts = Attempts()
    with _vendor(tmp_path, VendorFaults(drop=0.3), HandsetConfig(absent=0.3)) as vendor:
        for index in order:
            to, body = MESSAGES[index % len(MESSAGES)]
            send = vendor.accept(message_id=f"SM{len(fates)}", to=to, sender="+1", body=body,
                                 client_ref=None, request={}, reports=None)
            fates[(to, body, attempts.next((to, body)))] = send.handset
    return fates


@given(st.permutations(list(range(3 * len(MESSAGES)))))
def test_every_send_keeps_its_fate_whatever_order_they_arrive_in(order: list[int]) -> None:
    # A fresh journal folder per example (the tmp_path fixture is one per test).
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        in_order = _fates(Path(one), sorted(order))
        shuffled = _fates(Path(two), order)
    assert shuffled == in_order
    assert {"dropped", "absent", "delivered"} <= set(in_order.values())


def test_a_resend_draws_afresh(tmp_path: Path) -> None:
    fates = _fates(tmp_path, list(range(40 * len(MESSAGES))))
    # Forty attempts of each message: some delivered, some not; a fate is not fixed per message.
    for to, body in MESSAGES:
        outcomes = {fates[(to, body, n)] for n in range(40)}
        assert "delivered" in outcomes and len(outcomes) > 1


def test_stop_replies_are_drawn_per_borrower() -> None:
    handsets = Handsets(HandsetConfig(stop=0.5), SEED)
    phones = [to for to, _ in MESSAGES]
    chosen = {to for to in phones if draw(SEED, "handsets", "stop", to) < 0.5}
    assert 0 < len(chosen) < len(phones)
    # In reverse order, twice each: each chosen borrower replies once, nobody else ever.
    replied = [to for to in reversed(phones * 2) if handsets.replies_stop(to)]
    assert sorted(replied) == sorted(chosen)


def _partial_fates(tmp_path: Path, asks: list[tuple[str, str]]) -> dict[tuple[str, str, int], str]:
    """Each multi-recipient ask's fate, by (to, body, ask number), asking in `asks` order."""
    fates: dict[tuple[str, str, int], str] = {}
    attempts = Attempts()
    with _vendor(tmp_path, VendorFaults(partial=0.5), HandsetConfig()) as vendor:
        for to, body in asks:
            fates[(to, body, attempts.next((to, body)))] = vendor.fate(to, body, recipients=2)
    return fates


def test_a_partial_failure_is_keyed_by_message_and_ask(tmp_path: Path) -> None:
    # Two reminders to each number, each asked twice: in the other order, each keeps its fate.
    asks = [(to, f"{body} #{n}") for to, body in MESSAGES for n in (1, 2)] * 2
    in_order = _partial_fates(tmp_path / "one", asks)
    reversed_ = _partial_fates(tmp_path / "two", asks[::-1])
    assert reversed_ == in_order
    assert in_order == {key: "failed" if draw(SEED, "twilio", "partial", *key) < 0.5 else "ok"
                        for key in in_order}
    # The two reminders to one number do not share a fate (draws per message, not per number).
    assert any(in_order[(to, f"{body} #1", 0)] != in_order[(to, f"{body} #2", 0)]
               for to, body in MESSAGES)


def test_replica_faults_are_keyed_by_reminder_and_version(tmp_path: Path) -> None:
    journal = JournalWriter(tmp_path, "mocks")
    ledger = Ledger(journal, MocksConfig(seed=SEED, journal_dir=str(tmp_path), vendors={}))
    ledger.switch(LedgerFaults(drop=0.3, duplicate=0.3))

    async def ticks() -> list[str]:
        return [ledger.tick().reminder_id for _ in range(60)]

    scheduled = asyncio.run(ticks())
    journal.close()
    touched = read_journal(tmp_path).of(FaultTouched)
    for switch in ("drop", "duplicate"):
        hit = [t.subject for t in touched if t.switch == switch]
        expected = [rid for rid in scheduled
                    if draw(SEED, "replica", switch, rid, 1) < 0.3
                    and (switch == "drop" or draw(SEED, "replica", "drop", rid, 1) >= 0.3)]
        assert hit == expected and hit


def _drifted_phones(tmp_path: Path, drift_from: int) -> dict[str, object]:
    """The replica's phone of each reminder drifted, by reminder, with phone drift switched on
    from the `drift_from`-th of 40 ticks."""
    journal = JournalWriter(tmp_path, "mocks")
    ledger = Ledger(journal, MocksConfig(seed=SEED, journal_dir=str(tmp_path), vendors={}))

    async def ticks() -> None:
        for n in range(40):
            if n == drift_from:
                ledger.switch(LedgerFaults(drift=0.5, drift_field="phone"))
            ledger.tick()

    asyncio.run(ticks())
    journal.close()
    return {t.subject: t.detail["replica"] for t in read_journal(tmp_path).of(FaultTouched)
            if t.switch == "drift"}


def test_a_drifted_phone_is_keyed_by_reminder_and_version(tmp_path: Path) -> None:
    always = _drifted_phones(tmp_path / "always", 0)
    later = _drifted_phones(tmp_path / "later", 20)
    # Fewer drifts came before each of the later ones: each still drifts to the same number.
    assert later and len(later) < len(always)
    assert later == {rid: phone for rid, phone in always.items() if rid in later}
