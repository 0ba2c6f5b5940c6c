"""The ledger's record of one reminder (a feed entry or the primary record), read strictly, and the
message the vendors send for it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from typing import Any

from .bank_calendar import WALL, Calendar

# The contract's formats, checked as written: a tolerant reader would send a drifted schema's
# values (a DD/MM/YYYY date) to borrowers instead of failing where it can be noticed.
_AMOUNT = re.compile(r"\d+\.\d{2}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CLOCK_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_NATIONAL_ID = re.compile(r"\d{17}[\dX]")
_CARD = re.compile(r"\d{12,19}")

OPTOUT_NOTICE = "回T退订"
"""The opt-out instruction every message ends with, on every channel."""
_STATUSES = ("scheduled", "cancelled")


@dataclass(frozen=True)
class Reminder:
    """What one message says and where it goes."""

    reminder_id: str
    ref: str
    name: str
    phone: str
    amount: str
    due_date: str
    card_tail: str
    """The repayment card's last four digits ("" when the ledger has no card)."""
    national_id: str
    """Shown in no correct message: "" (Defect.LEAKS_PII puts the full number here)."""
    notice: str
    email: str | None
    device_token: str | None

    def to_json(self) -> str:
        # Every field is a str or None: no deep copy (dataclasses.asdict makes one).
        return json.dumps({name: getattr(self, name) for name in _MESSAGE_FIELDS},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Reminder:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ReminderRecord:
    """One version of a reminder's record as the ledger serves it (contract §3)."""

    reminder_id: str
    ref: str
    version: int
    cancelled: bool
    borrower_id: str
    name: str
    phone: str
    opted_out: bool
    email: str | None
    device_token: str | None
    national_id: str
    account: str | None
    amount: str
    due_date: str
    remind_at: datetime  # always with its offset
    as_of: datetime

    @classmethod
    def from_ledger(cls, item: object, calendar: Calendar = WALL) -> ReminderRecord:
        """Parse one feed entry or primary record; ValueError if anything is off-contract. A
        staged entry's remind_at is computed on `calendar` (contract §3)."""
        if not isinstance(item, dict):
            raise ValueError("reminder is not an object")
        borrower = _object(item, "borrower")
        installment = _object(item, "installment")
        status = _text(item, "status")
        if status not in _STATUSES:
            raise ValueError(f"reminder status {status!r} is not one of {', '.join(_STATUSES)}")
        as_of = _time(item, "as_of")
        due_date = _day(installment, "due_date")
        return cls(
            reminder_id=_text(item, "reminder_id"),
            ref=_text(item, "ref"),
            version=_version(item),
            cancelled=status == "cancelled",
            borrower_id=_text(borrower, "borrower_id"),
            name=_text(borrower, "name"),
            phone=_matching(borrower, "phone", _E164),
            opted_out=_flag(borrower, "opted_out"),
            email=_nullable(borrower, "email", _EMAIL),
            device_token=_nullable(borrower, "device_token"),
            national_id=_matching(borrower, "national_id", _NATIONAL_ID),
            account=_nullable(borrower, "account", _CARD),
            amount=_matching(installment, "amount", _AMOUNT),
            due_date=due_date,
            remind_at=_remind_at(item, due_date, as_of, calendar),
            as_of=as_of,
        )

    def message(self) -> Reminder:
        return Reminder(
            reminder_id=self.reminder_id,
            ref=self.ref,
            name=self.name,
            phone=self.phone,
            amount=self.amount,
            due_date=self.due_date,
            card_tail="" if self.account is None else self.account[-4:],
            national_id="",
            notice=OPTOUT_NOTICE,
            email=self.email,
            device_token=self.device_token,
        )

    def to_json(self) -> str:
        # Read field by field: dataclasses.asdict deep-copies each value, which was most of
        # the cost of storing a feed page.
        values = {name: getattr(self, name) for name in _RECORD_FIELDS}
        values["remind_at"] = self.remind_at.isoformat()
        values["as_of"] = self.as_of.isoformat()
        return json.dumps(values, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ReminderRecord:
        values = json.loads(text)
        values["remind_at"] = datetime.fromisoformat(values["remind_at"])
        values["as_of"] = datetime.fromisoformat(values["as_of"])
        return cls(**values)


_MESSAGE_FIELDS = tuple(field.name for field in fields(Reminder))
_RECORD_FIELDS = tuple(field.name for field in fields(ReminderRecord))


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"reminder field {key!r} is not an object")
    return value


def _text(parent: dict[str, Any], key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"reminder field {key!r} is not a non-empty string")
    return value


def _matching(parent: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = _text(parent, key)
    if not pattern.fullmatch(value):
        raise ValueError(f"reminder field {key!r} is not in the contract's format: {value!r}")
    return value


def _nullable(
    parent: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None
) -> str | None:
    """A field that is present and null (the borrower has none) or a value in its format."""
    if key not in parent:
        raise ValueError(f"reminder field {key!r} is missing (null when there is none)")
    if parent[key] is None:
        return None
    return _text(parent, key) if pattern is None else _matching(parent, key, pattern)


def _day(parent: dict[str, Any], key: str) -> str:
    value = _matching(parent, key, _DAY)
    date.fromisoformat(value)  # 2026-02-30 is well-formed but no day
    return value


def _flag(parent: dict[str, Any], key: str) -> bool:
    value = parent.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"reminder field {key!r} is not a boolean")
    return value


def _version(parent: dict[str, Any]) -> int:
    value = parent.get("version")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("reminder field 'version' is not a positive integer")
    return value


def _remind_at(item: dict[str, Any], due_date: str, as_of: datetime,
               calendar: Calendar) -> datetime:
    """The entry's remind_at, or a staged entry's (remind_at null, `stage` given): its stage's
    local time (in the feed's zone, as_of's offset) before the due date, on `calendar`."""
    if item.get("remind_at") is not None or "stage" not in item:
        return _time(item, "remind_at")
    stage = _object(item, "stage")
    days = stage.get("days_before")
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise ValueError("reminder field 'stage.days_before' is not an integer >= 0")
    at = _matching(stage, "at", _CLOCK_TIME)
    assert as_of.tzinfo is not None  # _time refuses a time without its offset
    return calendar.stage_time(date.fromisoformat(due_date), days, time.fromisoformat(at),
                               as_of.tzinfo)


def _time(parent: dict[str, Any], key: str) -> datetime:
    when = datetime.fromisoformat(_text(parent, key))
    if when.tzinfo is None:
        raise ValueError(f"reminder field {key!r} has no UTC offset")
    return when
