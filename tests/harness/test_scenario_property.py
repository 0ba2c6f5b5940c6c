"""The one-line-error property, over mutations of every shipped scenario: a file either loads,
or is refused with a ScenarioError of one line naming the file; never another exception."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ScenarioError
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(),
                                                          max_size=3),
    st.sampled_from(["", "0s", "-1s", "1e9h", "99999999999h", "800", "800ms", "2s", ".nan",
                     "{ledger.url}", "{nope}", "continuity >=", "continuity >= x", "twilio",
                     "proxy.down", "vendors.twilio", "target", "2026-99-99", "20/s", "\x00"]))


def _check(path: Path) -> None:
    """The property itself, on the file at `path`."""
    try:
        load_scenario(path)
    except ScenarioError as exc:
        assert "\n" not in str(exc) and "\r" not in str(exc), str(exc)
        assert str(exc).startswith(f"{path}:") or str(exc).startswith(f"{path} "), str(exc)


def _check_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutant.yaml"
        path.write_bytes(data)
        _check(path)


def _pick_place(data: st.DataObject, document: Any) -> tuple[Any, Any]:
    """A container somewhere in `document` and one of its keys (or indexes)."""
    node = document
    while True:
        keys: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return None, None
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or not child or data.draw(st.booleans()):
            return node, key
        node = child


def _delete(node: Any, key: Any, data: st.DataObject) -> None:
    del node[key]


def _replace(node: Any, key: Any, data: st.DataObject) -> None:
    node[key] = data.draw(ODD_VALUES)


def _add_key(node: Any, key: Any, data: st.DataObject) -> None:
    if isinstance(node, dict):
        node[data.draw(st.one_of(st.text(max_size=8), st.integers()))] = data.draw(ODD_VALUES)
    else:
        node.insert(key, data.draw(ODD_VALUES))


def _nest(node: Any, key: Any, data: st.DataObject) -> None:
    value = node[key]
    for _ in range(data.draw(st.integers(min_value=1, max_value=40))):
        value = data.draw(st.sampled_from([[value], {"x": value}]))
    node[key] = value


MUTATIONS: list[Callable[[Any, Any, st.DataObject], None]] = [_delete, _replace, _add_key, _nest]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_each_shipped_scenario_loads_as_it_is(path: Path) -> None:
    load_scenario(path)


@settings(max_examples=300)
@given(st.sampled_from(SHIPPED), st.data())
def test_a_changed_document_loads_or_is_one_line(path: Path, data: st.DataObject) -> None:
    document = yaml.safe_load(path.read_text("utf-8"))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        document = copy.deepcopy(document)  # each change makes a new document
        node, key = _pick_place(data, document)
        if node is not None:
            data.draw(st.sampled_from(MUTATIONS))(node, key, data)
    _check_bytes(yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode())


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


@settings(max_examples=300)
@given(st.sampled_from(SHIPPED), st.data())
def test_a_changed_text_loads_or_is_one_line(path: Path, data: st.DataObject) -> None:
    text = path.read_text("utf-8")
    lines = _lines(text)
    where = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    change = data.draw(st.sampled_from(["junk bytes", "duplicate line", "delete line",
                                        "unicode", "truncate", "deep nesting", "crlf"]))
    if change == "junk bytes":
        raw = text.encode()
        cut = min(at, len(raw))
        _check_bytes(raw[:cut] + data.draw(st.binary(min_size=1, max_size=8)) + raw[cut:])
        return
    if change == "duplicate line":
        mutant = "".join(lines[:where + 1] + lines[where:])
    elif change == "delete line":
        mutant = "".join(lines[:where] + lines[where + 1:])
    elif change == "unicode":
        mutant = text[:at] + data.draw(st.text(min_size=1, max_size=6)) + text[at:]
    elif change == "truncate":
        mutant = text[:at]
    elif change == "deep nesting":
        depth = data.draw(st.integers(min_value=1, max_value=200))
        indent = len(lines[where]) - len(lines[where].lstrip(" "))
        mutant = "".join(lines[:where]) + " " * indent + "about: " + "[" * depth + "]" * depth \
            + "\n" + "".join(lines[where:])
    else:
        mutant = text.replace("\n", "\r\n")
    _check_bytes(mutant.encode("utf-8", "surrogatepass"))
