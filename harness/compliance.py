"""What a message's text may not show and must say: a borrower's personal data beyond the
characters the scenario allows (`compliance.visible`), and the opt-out notice
(`compliance.optout_notice`).

Rules (a field is a national id, an account number or a phone in national form, compared
without case, so the id's check character x is X):

- A **run** of the text is a stretch of digits and mask characters (`*`, `＊`, `•`, `●`, `×`,
  `x`, `X`), with single spaces or hyphens between them and a leading `+` allowed, that is not
  inside a longer number: no digit beside it, and no `.` or `,` then a digit (so `5,234.00` and
  `¥100.00` are no runs). A **piece** is a run, or a part of it cut at its spaces or hyphens
  (`6222 **** **** 3476 2026-12-05` has the card's rendering as a piece), without the `+`;
  pieces longer than 40 characters are not read. A phone's piece may start with the country
  code (`86`, `0086`), which is not part of the number.
- A text **shows** a field's characters, the most of:
  1. in place: for a piece as long as the value whose every character is the value's own or a
     mask, the value's own (all of them for `6222 0209 0921 3476`, `ID11010519900101123X`,
     `+86 138 0000 0001`, `13800000001`; 10 for `110105********8902`);
  2. start and end: for a piece that is a start of the value (maybe none), two or more masks,
     then an end of the value (maybe none), the start and end (`6222****3476`: 8, `****8902`:
     4);
  3. a tail: for a whole run of four or more characters, without masks (a final X may be an
     id's own), touching no letter, that is the end of the value, its length (`尾号8902`: 4;
     the `3476` of a reference such as `AB3476CD` is none).
- A field is **exposed** when a text shows more of its characters than `visible`: with the
  default 4, `****8902` and `尾号8902` are allowed and `110105********8902` is not; with 0,
  even the last four are exposed. Only rule 3 can be met by chance: with `visible` under 4, a
  standalone number of four or more digits (a year, an amount without decimals) that happens
  to equal a field's end counts (about 1 in 10,000 per number and field). Amounts written with
  decimals or groups (`5,234.00`), dates (`2026-12-05`: 1 in 10^8 to end a field) and
  references never count with the default.
- Full-width digits are not read as digits.
- The **opt-out notice** is `compliance.optout_notice`, searched (`re.search`) in the text.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

PersonalField = Literal["national_id", "account", "phone"]

MASKS = frozenset("*＊•●×xX")
_CHAR = r"[0-9*＊•●×xX]"
_RUN = re.compile(rf"(?<![0-9])(?<![0-9][.,])\+?{_CHAR}(?:[ \-]?{_CHAR})*"
                  rf"(?![0-9])(?![.,][0-9])")
_SEPARATOR = re.compile(r"[ \-]")
_SEPARATORS = re.compile(r"[ \-]+")
_LETTER = re.compile(r"[A-Za-z]")
_STARTS_MASKS_ENDS = re.compile(r"([0-9]*)([*＊•●×X]{2,})([0-9]*X?)")
_COUNTRY_CODES = ("86", "0086")
_LONGEST = 40
"""The longest piece read: longer ones render no field (the longest is 19 characters), and a
text of many numbers would make too many."""
TAIL_FROM = 4
"""The fewest characters a tail (rule 3) must have to count."""


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
class _Read:
    """A text's pieces (upper case, without separators), sorted by the rule that reads them."""

    by_length: dict[int, tuple[str, ...]]
    """Rule 1: the pieces of each length."""
    masked: tuple[str, ...]
    """Rule 2: the pieces with two or more masks."""
    tails: tuple[str, ...]
    """Rule 3: the whole runs without a mask (but a final X) that touch no letter."""


def exposed(body: str, person: PersonalData, visible: int) -> tuple[PersonalField, ...]:
    """The fields of `person` that `body` shows more than `visible` characters of, each once,
    in the order national id, account, phone."""
    found: list[PersonalField] = []
    flat, masks = _SEPARATORS.sub("", body.upper()), _count_masks(body)
    for name, value in person.fields():
        if (name not in found and _may_show(flat, masks, value.upper(), visible)
                and shown(body, value, name == "phone") > visible):
            found.append(name)
    return tuple(found)


def _may_show(flat: str, masks: int, wanted: str, visible: int) -> bool:
    """Whether a text can show more than `visible` characters of `wanted` (upper case) by any
    rule: a cheap necessary condition that spares most texts the reading. `flat` is the text in
    upper case without spaces and hyphens (so a run's characters are side by side in it),
    `masks` its count of mask characters."""
    tail = max(TAIL_FROM, visible + 1)
    return (masks >= 2  # rule 2 needs a piece with two masks
            or (len(wanted) > tail and wanted[-tail:] in flat)  # rule 3: an end of the value
            or _as_long(len(wanted)).search(flat) is not None)  # rule 1: a piece as long


@functools.lru_cache(maxsize=64)
def _as_long(length: int) -> re.Pattern[str]:
    """Runs of digits and masks at least `length` long (in upper case, without separators)."""
    return re.compile(f"[0-9*＊•●×X]{{{length},}}")


def shown(body: str, value: str, phone: bool = False) -> int:
    """The most characters of `value` that `body` shows (see the rules); `phone` for a number
    in national form, whose pieces may start with the country code."""
    read, wanted = _read(body), value.upper()
    codes = ("", *_COUNTRY_CODES) if phone else ("",)
    best = 0
    for code in codes:
        for piece in read.by_length.get(len(code) + len(wanted), ()):
            if piece.startswith(code):
                best = max(best, _in_place(piece[len(code):], wanted))
    for piece in read.masked:
        for code in codes:
            if piece.startswith(code):
                best = max(best, _start_and_end(piece[len(code):], wanted))
    for tail in read.tails:
        if TAIL_FROM <= len(tail) < len(wanted) and wanted.endswith(tail):
            best = max(best, len(tail))
    return best


def lacks_notice(body: str, notice: str) -> bool:
    """Whether `body` lacks the opt-out notice (a regular expression)."""
    return _compiled(notice).search(body) is None


@functools.lru_cache(maxsize=1 << 12)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@functools.lru_cache(maxsize=1 << 12)
def _read(body: str) -> _Read:
    by_length: dict[int, list[str]] = defaultdict(list)
    masked, tails = [], []
    for run in _RUN.finditer(body):
        groups = _SEPARATOR.split(run.group().removeprefix("+").upper())
        whole = "".join(groups)
        masks = _count_masks(whole)
        for first in range(len(groups)):
            for last in range(first + 1, len(groups) + 1):
                piece = "".join(groups[first:last])
                if len(piece) > _LONGEST:
                    break
                by_length[len(piece)].append(piece)
                if masks >= 2 and _count_masks(piece) >= 2:
                    masked.append(piece)
        beside = body[run.start() - 1:run.start()] + body[run.end():run.end() + 1]
        if not _count_masks(whole.removesuffix("X")) and not _LETTER.search(beside):
            tails.append(whole)
    return _Read({length: tuple(found) for length, found in by_length.items()},
                 tuple(masked), tuple(tails))


def _count_masks(chars: str) -> int:
    return sum(chars.count(mask) for mask in MASKS)


def _in_place(piece: str, value: str) -> int:
    """Rule 1: how many of `value`'s characters `piece` (as long) keeps in place; 0 when one of
    its characters is neither the value's nor a mask."""
    kept = 0
    for char, own in zip(piece, value, strict=True):
        if char == own:
            kept += 1
        elif char not in MASKS:
            return 0
    return kept


def _start_and_end(piece: str, value: str) -> int:
    """Rule 2: the start and end of `value` that `piece` shows around its masks (0: none)."""
    framed = _STARTS_MASKS_ENDS.fullmatch(piece)
    if framed is None:
        return 0
    start, _, end = framed.groups()
    if value.startswith(start) and value.endswith(end):
        return min(len(value), len(start) + len(end))
    return 0
