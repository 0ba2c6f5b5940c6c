"""Reading a scenario file's text safely: size, encoding, nesting, aliases and duplicate keys are
checked before YAML builds anything, so that any file gives one line of error, fast."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from harness.errors import ScenarioError

MAX_BYTES = 1_000_000
"""The largest scenario file read (the shipped ones are under 3 KB)."""
MAX_DEPTH = 20
"""The deepest nesting of mappings and lists (the shipped scenarios nest at most 4 levels)."""
MAX_VALUES = 100_000
"""The most values a document may hold once its aliases are expanded (a billion laughs is not)."""

# What YAML allows in a stream (YAML 1.1, 5.1), so a binary file is told before the parser sees it.
_UNPRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd"
                          "\U00010000-\U0010ffff]")
_MERGE = "<<"


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader with dates left as strings (a scenario holds none, and a bad one
    such as 2026-99-99 made the constructor raise a bare ValueError) and every value that cannot
    be built reported at its own place."""

    # PyYAML reads the resolvers as a class attribute, each loader class its own.
    yaml_implicit_resolvers: dict[Any, Any] = {  # noqa: RUF012
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()}

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError):  # `!!int abc`, `!!float x`
            what = repr(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise ConstructorError(None, None, f"cannot read {_short(what)} as {tag}",
                                   node.start_mark) from None


@dataclass(frozen=True)
class Document:
    """A scenario file's YAML: its data, and its node tree to find the line of any key."""

    data: Any
    root: yaml.Node | None


def read_bytes(path: Path) -> str:
    """The text of the scenario file at `path`: at most MAX_BYTES, UTF-8."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(path, None, f"cannot read the file: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ScenarioError(path, None, f"too large: a scenario file is at most "
                            f"{MAX_BYTES // 1000} KB")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScenarioError(path, 1, "not UTF-8 text: UTF-16 (save the file as UTF-8)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioError(path, line, f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column "
                            f"{column} (a scenario file is YAML, in UTF-8)") from None


def read_document(text: str, path: Path | str) -> Document:
    """Parse scenario YAML `text` once it passed the checks that bound what parsing costs."""
    if len(text) > MAX_BYTES:
        raise ScenarioError(path, None, f"too large: a scenario is at most {MAX_BYTES // 1000} KB")
    bad = _UNPRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        what = "a NUL byte" if bad.group() == "\0" else f"character U+{ord(bad.group()):04X}"
        raise ScenarioError(path, line, f"not text: {what} at column {column} (a scenario "
                            "file is YAML, in UTF-8; is this a binary file?)")
    loader = _Loader(text)
    try:
        _Scan(path).run(loader)
        loader.dispose()
        loader = _Loader(text)
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = mark.line + 1 if mark else None
        raise ScenarioError(path, at, f"not valid YAML: {_problem(exc, text, at)}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(path, None, f"not valid YAML: {_one_line(str(exc))}") from None
    finally:
        loader.dispose()
    return Document(data, root)


def read_value(text: str) -> Any:
    """One YAML value (an override's), read the way a scenario file's values are."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _problem(exc: yaml.MarkedYAMLError, text: str, line: int | None) -> str:
    """What the parser says, in one sentence: `expected a single document in the stream, but
    found another document`; `did not find expected ',' or ']' (while parsing a flow sequence,
    from line 4)`."""
    problem = exc.problem or "unreadable"
    if exc.context and problem.startswith("but "):
        problem = f"{exc.context}, {problem}"
    elif exc.context:
        start = exc.context_mark.line + 1 if exc.context_mark else None
        problem += f" ({exc.context}" + (f", from line {start})" if start != line else ")")
    lines = text.splitlines()
    if line is not None and line <= len(lines) and "\t" in lines[line - 1]:
        problem += "; this line has a tab: indent with spaces"
    return problem


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class _Frame:
    """A mapping or list the scan is inside: where it is and what it has seen."""

    part: str | int | None
    mapping: bool
    anchor: str | None
    first_value: int
    height: int = 0
    index: int = 0
    key: str | None = None
    keys: dict[str, int] = field(default_factory=dict)


@dataclass
class _Scan:
    """One pass over the parser's events (no tree, no recursion): nesting depth, the values
    aliases expand to, and duplicate keys, each told at its line."""

    path: Path | str
    frames: list[_Frame] = field(default_factory=list)
    values: int = 0
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → values, height

    def run(self, loader: _Loader) -> None:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent
                          | yaml.CollectionStartEvent):
                self._node(event)
            elif isinstance(event, yaml.CollectionEndEvent):
                self._end()

    def _fail(self, event: yaml.Event, message: str) -> None:
        mark = event.start_mark
        raise ScenarioError(self.path, mark.line + 1 if mark else None, message)

    def _where(self) -> str:
        out = ""
        for frame in self.frames[1:]:
            part = frame.part
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out

    def _node(self, event: yaml.Event) -> None:
        values, height = 1, int(isinstance(event, yaml.CollectionStartEvent))
        if isinstance(event, yaml.AliasEvent):
            values, height = self.anchors.get(event.anchor or "", (1, 0))
        part = self._place(event)
        self.values += values
        if self.values > MAX_VALUES:
            self._fail(event, f"too large: more than {MAX_VALUES} values once aliases are "
                       "expanded")
        if len(self.frames) + height > MAX_DEPTH:
            self._fail(event, f"nested too deep: at most {MAX_DEPTH} levels of mappings and "
                       "lists")
        if isinstance(event, yaml.CollectionStartEvent):
            self.frames.append(_Frame(part, isinstance(event, yaml.MappingStartEvent),
                                      event.anchor, self.values))
            return
        if isinstance(event, yaml.ScalarEvent) and event.anchor:
            self.anchors[event.anchor] = (1, 0)
        self._lift(height)

    def _place(self, event: yaml.Event) -> str | int | None:
        """Where the node of `event` goes in its parent; a key is checked for duplicates."""
        if not self.frames:
            return None
        parent = self.frames[-1]
        if not parent.mapping:
            parent.index += 1
            return parent.index - 1
        if parent.key is not None:  # a value: its key was just read
            part, parent.key = parent.key, None
            return part
        key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
        if key != _MERGE and isinstance(event, yaml.ScalarEvent):
            first = parent.keys.get(key)
            if first is not None:
                where = f"{self._where()}.{key}" if len(self.frames) > 1 else key
                if self._where() == "vendors":
                    self._fail(event, f"{where}: a second vendor of this name (the first is at "
                               f"line {first}); give each vendor its own name")
                self._fail(event, f"{where}: given twice (first at line {first}); a key is "
                           "given once")
            parent.keys[key] = event.start_mark.line + 1 if event.start_mark else 0
        parent.key = key
        return None

    def _end(self) -> None:
        frame = self.frames.pop()
        if frame.anchor:
            self.anchors[frame.anchor] = (self.values - frame.first_value + 1, frame.height + 1)
        self._lift(frame.height + 1)

    def _lift(self, height: int) -> None:
        if self.frames:
            self.frames[-1].height = max(self.frames[-1].height, height)
