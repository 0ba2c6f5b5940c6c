"""The reminder value shared by the ledger client, the outbox and the vendors."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Reminder:
    reminder_id: str
    ref: str
    name: str
    phone: str
    amount: str
    due_date: str

    @classmethod
    def from_ledger(cls, item: object) -> Reminder:
        """Parse one entry of the ledger's `reminders` array; ValueError if it is malformed."""
        if not isinstance(item, dict):
            raise ValueError("reminder is not an object")
        borrower = _object(item, "borrower")
        installment = _object(item, "installment")
        return cls(
            reminder_id=_text(item, "reminder_id"),
            ref=_text(item, "ref"),
            name=_text(borrower, "name"),
            phone=_text(borrower, "phone"),
            amount=_text(installment, "amount"),
            due_date=_text(installment, "due_date"),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Reminder:
        return cls(**json.loads(text))


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
