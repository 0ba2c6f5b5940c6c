"""Borrowers' replies: which texts opt them out, and their phone numbers in one E.164 form."""

from __future__ import annotations

import re

STOP_WORDS = frozenset({"stop", "unsubscribe", "td", "t", "退订"})

# Alibaba's mainland SMS service gives mainland mobiles (13x-19x) as 11 bare digits.
_MAINLAND = re.compile(r"1[3-9]\d{9}")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


def is_stop(text: str) -> bool:
    return text.strip().casefold() in STOP_WORDS


def e164(phone: str) -> str | None:
    """`13800000001` and `+8613800000001` both give `+8613800000001`; None if not a number."""
    text = phone.strip()
    if _MAINLAND.fullmatch(text):
        return f"+86{text}"
    # Outside the mainland Alibaba writes the country code without the plus.
    candidate = text if text.startswith("+") else f"+{text}"
    return candidate if _E164.fullmatch(candidate) else None
