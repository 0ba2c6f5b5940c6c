"""Reading a growing journal folder: the lines appended since the last read, whole lines only,
and a line's kind without parsing it (the live display and the drain's watch read this way)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from harness.journal import EVENT, Event

_KIND = b'"kind":"'
"""How a journal writer's line names its kind (its first `kind` key: t, source and seq come
before it, and any nested object after)."""


def kind_of(line: bytes) -> str | None:
    """The kind a journal line names, read without parsing it; None when it is not spelt as a
    journal writer spells it (a hand-made line with spaces, say)."""
    start = line.find(_KIND)
    if start < 0:
        return None
    start += len(_KIND)
    end = line.find(b'"', start)
    return line[start:end].decode("ascii", "replace") if end > 0 else None


class JournalTail:
    """Reads what was appended to a journal folder's `*.jsonl` files since the last read.

    It keeps one offset per file and takes whole lines only, so a line being written is read
    once it is complete; a file that appears later is read from its start.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets: dict[Path, int] = {}

    def lines(self) -> list[bytes]:
        """The lines completed since the last call, file by file, unparsed."""
        lines: list[bytes] = []
        for path in sorted(self.directory.glob("*.jsonl")):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as file:
                file.seek(offset)
                data = file.read()
            end = data.rfind(b"\n") + 1
            self._offsets[path] = offset + end
            lines += data[:end].splitlines()
        return lines

    def read(self) -> list[Event]:
        """The events of the lines completed since the last call, file by file."""
        events: list[Event] = []
        for line in self.lines():
            try:
                events.append(EVENT.validate_json(line))
            except ValidationError:
                continue  # the display estimates; the scorer reports a bad journal
        return events
