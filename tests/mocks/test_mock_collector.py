"""The mock process's garbage collection: what outlives a full collection is frozen, so full
collections stay as short as the objects made since, however long the run."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from mocks.__main__ import _serving, freeze_survivors
from mocks.manifest import Manifest


class _Node:
    """A weakly referenceable object that can sit in a cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def collector() -> Iterator[None]:
    """The test's own collector state: nothing frozen before, all unfrozen and unhooked after,
    and only the test's own collections in between (`gc.collect` still calls the hooks)."""
    gc.collect()
    gc.unfreeze()
    hooks, enabled = list(gc.callbacks), gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.callbacks[:] = hooks
        gc.unfreeze()
        if enabled:
            gc.enable()


def _young_cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


@pytest.mark.usefixtures("collector")
def test_a_full_collection_freezes_what_outlived_it_and_young_cycles_are_still_collected(
) -> None:
    gc.callbacks.append(freeze_survivors)
    record = [[n] for n in range(20_000)]  # the run's record: lists the collector tracks

    gc.collect(0)
    assert gc.get_freeze_count() == 0  # a young collection freezes nothing

    gc.collect()
    frozen = gc.get_freeze_count()
    assert frozen >= len(record)
    # The next full collection walks only what came after: none of the record.
    assert len(gc.get_objects()) < len(record) // 10

    dead = _young_cycle()
    gc.collect(0)
    assert dead() is None
    assert len(record) == 20_000 and gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("collector")
def test_once_serving_the_mock_freezes_start_up_and_hooks_its_collections() -> None:
    start_up = [[n] for n in range(1_000)]

    _serving(Manifest.model_construct())

    assert gc.get_freeze_count() >= len(start_up)
    assert freeze_survivors in gc.callbacks
