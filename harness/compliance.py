"""What a message's text may not show and must say: a borrower's personal data beyond the
characters the scenario allows (`compliance.visible`), and the opt-out notice
(`compliance.optout_notice`).

Rules (a field is a national id, an account number or a phone, compared without case, so the
id's check character x is X):

- A **run** of the text is a stretch of digits and mask characters (`*`, `＊`, `•`, `●`, `×`,
  `x`, `X`), with single spaces or hyphens between them and a leading `+` allowed, that touches
  no letter or digit and is not part of a decimal number (no `.` or `,` then a digit on either
  side). So `5,234.00`, `¥100.00`, a reference such as `K9X2Q7ZP` and the ref in `ref:AB12CD34`
  are never runs. A **piece** is a run, or a part of it cut at its spaces or hyphens (`6222
  **** **** 3476 2026-12-05` has the card's rendering as a piece); pieces longer than 40
  characters are not read. A phone's piece may start
  with its country code (`+86`, `86`, `0086`), which is not part of the number.
- A text **shows** a field's characters, the most of:
  1. all of them, when the whole value is in the text, spaces or hyphens between its characters
     allowed, not inside a longer number (`6222 0209 0921 3476`, `ID11010519900101123X`,
     `+86 138 0000 0001`, `13800000001`);
  2. the ones kept in place, for a piece as long as the value whose every other character is a
     mask (`110105********8902` keeps 10);
  3. the kept start and end, for a piece that is a start of the value (maybe none), two or more
     masks, then an end of the value (maybe none): `6222****3476` keeps 8, `****8902` 4;
  4. its length, for a whole run of four or more characters that is the end of the value, with
     no mask (`尾号8902`: 4).
- A field is **exposed** when a text shows more of its characters than `visible`: with the
  default 4, `****8902` and `尾号8902` are allowed and `110105********8902` is not; with 0,
  even the last four are exposed. Rule 4 is the only one a chance number can meet: with
  `visible` under 4, a standalone number of four or more digits (a year, an amount without
  decimals) that happens to equal a field's end counts (about 1 in 10,000 per number and field);
  numbers written as amounts (`5,234.00`), dates (`2026-12-05`, which is no field's end but by
  chance 1 in 10^8) and references never count with the default.
- Full-width digits are not read as digits.
- The **opt-out notice** is `compliance.optout_notice`, searched (`re.search`) in the text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

PersonalField = Literal["national_id", "account", "phone"]

MASKS = frozenset("*＊•●×xX")
_CHAR = r"[0-9*＊•●×xX]"
_RUN = re.compile(rf"(?<![A-Za-z0-9])(?<![0-9][.,])\+?{_CHAR}(?:[ \-]?{_CHAR})*"
                  rf"(?![A-Za-z0-9])(?![.,][0-9])")
_SEPARATOR = re.compile(r"[ \-]")
_STARTS_MASKS_ENDS = re.compile(r"([0-9]*)([*＊•●×X]{2,})([0-9]*X?)")
_COUNTRY_CODES = ("0086", "86")
_LONGEST = 40
"""The longest piece read: longer ones render no field (the longest is 19 characters), and a
text of many numbers would make too many."""
_TAIL_FROM = 4
"""The fewest characters a bare number (rule 4) must have to count as a field's end."""


@dataclass(frozen=True)
class PersonalData:
    """A borrower's personal data a message may not show: "" for a field the journal did not
    give (a run from before it did)."""

    national_id: str
    account: str
    phones: tuple[str, ...]
    """Every number the borrower had during the run, in national form (11 digits)."""

    def fields(self) -> list[tuple[PersonalField, str]]:
        """Each value with the field it is, the empty ones left out."""
        found: list[tuple[PersonalField, str]] = [("national_id", self.national_id),
                                                  ("account", self.account)]
        found += [("phone", phone) for phone in self.phones]
        return [(name, value) for name, value in found if value]


@dataclass(frozen=True)
class _Piece:
    chars: str
    """Upper case, separators and the leading `+` removed."""
    whole: bool
    """Whether it is a whole run (rule 4 reads only those)."""


def exposed(body: str, person: PersonalData, visible: int) -> tuple[PersonalField, ...]:
    """The fields of `person` that `body` shows more than `visible` characters of, each once,
    in the order national id, account, phone."""
    found: list[PersonalField] = []
    for name, value in person.fields():
        if name not in found and shown(body, value, name == "phone") > visible:
            found.append(name)
    return tuple(found)


def shown(body: str, value: str, phone: bool = False) -> int:
    """The most characters of `value` that `body` shows (see the rules); `phone` for a number
    in national form, whose pieces may start with the country code."""
    wanted = value.upper()
    if _whole_value(wanted, phone).search(body):
        return len(wanted)
    best = 0
    for piece in _pieces(body):
        for chars in _without_country_code(piece.chars) if phone else (piece.chars,):
            best = max(best, _kept(chars, wanted, piece.whole))
    return best


def lacks_notice(body: str, notice: str) -> bool:
    """Whether `body` lacks the opt-out notice (a regular expression)."""
    return _compiled(notice).search(body) is None


@functools.lru_cache(maxsize=1 << 12)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@functools.lru_cache(maxsize=1 << 16)
def _whole_value(value: str, phone: bool) -> re.Pattern[str]:
    joined = "[ -]?".join(re.escape(char) for char in value)
    prefix = r"(?:(?:\+|00)?86[ -]?)?" if phone else ""
    return re.compile(rf"(?<![0-9]){prefix}{joined}(?![0-9])", re.IGNORECASE)


@functools.lru_cache(maxsize=1 << 12)
def _pieces(body: str) -> tuple[_Piece, ...]:
    pieces = []
    for run in _RUN.finditer(body):
        groups = _SEPARATOR.split(run.group().removeprefix("+").upper())
        for first in range(len(groups)):
            for last in range(first + 1, len(groups) + 1):
                chars = "".join(groups[first:last])
                if len(chars) > _LONGEST:
                    break
                pieces.append(_Piece(chars, first == 0 and last == len(groups)))
    return tuple(pieces)


def _without_country_code(chars: str) -> tuple[str, ...]:
    code = next((code for code in _COUNTRY_CODES if chars.startswith(code)), None)
    return (chars,) if code is None else (chars, chars[len(code):])


def _kept(chars: str, value: str, whole: bool) -> int:
    """How many of `value`'s characters the piece `chars` shows by rules 2 to 4 (0: none, or it
    is no rendering of `value`)."""
    if len(chars) == len(value):
        kept = 0
        for char, own in zip(chars, value, strict=True):
            if char == own:
                kept += 1
            elif char not in MASKS:
                return 0
        return kept
    framed = _STARTS_MASKS_ENDS.fullmatch(chars)
    if framed is not None:
        start, _, end = framed.groups()
        if value.startswith(start) and value.endswith(end):
            return min(len(value), len(start) + len(end))
        return 0
    if whole and len(chars) >= _TAIL_FROM and value.endswith(chars):
        return len(chars)
    return 0
