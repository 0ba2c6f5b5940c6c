"""Hand-made journals for the scorer's tests: a scenario, reminders, sends and the run's frame.

Times are seconds from T0 (the start of the run and of load). Every reminder has a 10 s
window; unless told otherwise, it belongs to borrower B1 at PHONE and is due 100.00 on
2026-12-05.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from harness.journal import (
    BorrowerChanged,
    ComponentReady,
    Event,
    FaultApplied,
    FaultReverted,
    Journal,
    JournalWriter,
    LoadStarted,
    ReminderScheduled,
    RunEnded,
    RunStarted,
    SendRecorded,
    VendorCall,
)
from harness.scenario import Scenario, parse_scenario

T0 = 1_000_000.0
PHONE = "+8613800000001"
OTHER_PHONE = "+8613900000002"
WINDOW = 10.0

BASE = """\
name: hand-made
duration: 60s
target: {command: [notifier], health: "tcp://127.0.0.1:1"}
vendors: {sms: {kind: twilio}, backup: {kind: aliyun}}
reminders:
  rate: 1/s
  window: 10s
  correlate: {body: 'ref:(?P<ref>\\w{8})', client_ref: true}
gates: [continuity >= 0.5, duplicates == 0, p95_latency <= 5s]
"""
SCENARIO = parse_scenario(BASE)

Handset = Literal["delivered", "spam", "absent", "dropped"]


def scenario(*overrides: str, text: str = BASE) -> Scenario:
    """The base scenario with `key.path=value` overrides."""
    return parse_scenario(text, overrides=overrides)


def owed(ref: str, at: float, phone: str = PHONE, borrower: str = "B1",
         amount: str = "100.00", opted_out: bool = False, scheduled: float | None = None,
         name: str = "王伟") -> ReminderScheduled:
    """A reminder due at `at`, scheduled at `scheduled` (default: at its remind_at)."""
    return ReminderScheduled(
        t=T0 + (at if scheduled is None else scheduled), reminder_id=f"rem-{ref}", ref=ref,
        loan_id=f"L-{borrower}", borrower_id=borrower, name=name, phone=phone,
        opted_out=opted_out, amount=amount, due_date="2026-12-05", remind_at=T0 + at,
        send_by=T0 + at + WINDOW)


def sent(ref: str, at: float, to: str = PHONE, amount: str = "100.00",
         client_ref: str | None = None, body: str | None = None, handset: Handset = "delivered",
         arrive: float = 0.0, vendor: str = "sms") -> SendRecorded:
    """A send of reminder `ref` accepted at `at`, in the inbox `arrive` seconds later."""
    text = f"ref:{ref} amount:{amount} due:2026-12-05" if body is None else body
    arrived = handset in ("delivered", "spam")
    return SendRecorded(t=T0 + at, vendor=vendor, message_id=f"m-{ref}-{at}", to=to, body=text,
                        client_ref=client_ref, handset=handset,
                        inbox_at=T0 + at + arrive if arrived else None)


def phone_changed(at: float, phone: str, borrower: str = "B1",
                  opted_out: bool = False) -> BorrowerChanged:
    """The bank's record of a borrower changed at `at`."""
    return BorrowerChanged(t=T0 + at, borrower_id=borrower, phone=phone, opted_out=opted_out)


def call(at: float, outcome: Literal["accepted", "read", "rejected", "refused", "lost"],
         latency: float = 0.1, vendor: str = "sms") -> VendorCall:
    """A call to a vendor's API."""
    status = {"accepted": 201, "read": 200, "rejected": 400, "refused": 503, "lost": None}
    return VendorCall(t=T0 + at, vendor=vendor, status=status[outcome], outcome=outcome,
                      latency=latency)


def step(index: int, fault: str, link: str, start: float, stop: float | None,
         params: dict[str, float | int | str] | None = None) -> list[Event]:
    """A timeline step applied at `start` and reverted at `stop` (never if None)."""
    events: list[Event] = [FaultApplied(t=T0 + start, step=index, fault=fault, link=link,
                                        params=params or {})]
    if stop is not None:
        events.append(FaultReverted(t=T0 + stop, step=index, fault=fault, link=link))
    return events


def journal(*events: Event | Sequence[Event], end: float = 100.0, status: str = "completed",
            run: Scenario = SCENARIO, load: float = 0.0) -> Journal:
    """A run of `run` from T0 to `end`, load starting at `load`, with `events` (single ones or
    lists of them)."""
    flat: list[Event] = []
    for item in events:
        flat.extend(item if isinstance(item, Sequence) else [item])
    frame: list[Event] = [
        RunStarted(t=T0, scenario=run),
        ComponentReady(t=T0, component="toxiproxy", version="2.12.0"),
        LoadStarted(t=T0 + load, pid=1),
        RunEnded(t=T0 + end, status=status),  # type: ignore[arg-type]
    ]
    return Journal(tuple(sorted([*frame, *flat], key=lambda e: e.t)))


def run_folder(folder: Path, made: Journal) -> Path:
    """A run folder whose journal holds `made`'s events."""
    writer = JournalWriter(folder / "journal", "harness")
    for event in made.events:
        writer.write(event)
    writer.close()
    return folder
