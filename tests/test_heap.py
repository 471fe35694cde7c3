"""Freezing the start-up heap: what is alive leaves the collections, garbage does not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ztsim.heap import freeze_startup, refreeze


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process goes on with every object collectable again


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_live_objects_leave_the_collections_and_cyclic_garbage_is_not_frozen(
    unfrozen: None,
) -> None:
    alive = [_Node() for _ in range(100)]
    a, b = _Node(), _Node()
    a.peer, b.peer = b, a  # a cycle, garbage once the names go
    cycle = weakref.ref(a)
    del a, b

    frozen = freeze_startup()

    assert frozen >= len(alive)
    # Frozen objects are left out of every generation a collection walks.
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(node) in walked for node in alive)
    # The cycle was collected before freezing, not kept forever.
    assert cycle() is None
    # New objects are collected as usual.
    fresh = _Node()
    assert gc.is_tracked(fresh)
    assert id(fresh) in {id(o) for o in gc.get_objects()}


def test_refreeze_collects_what_became_cyclic_garbage_and_freezes_the_new(
    unfrozen: None,
) -> None:
    a, b = _Node(), _Node()
    cycle = weakref.ref(a)
    freeze_startup()
    a.peer, b.peer = b, a  # frozen alive, then a cycle among frozen objects: garbage
    del a, b
    gc.collect()
    assert cycle() is not None  # frozen: no collection reaches it
    snapshot = [_Node() for _ in range(100)]  # what a reload made since

    frozen = refreeze()

    assert frozen >= len(snapshot)
    assert cycle() is None  # the thaw let the collection take the cycle
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(node) in walked for node in snapshot)


def test_refreeze_leaves_a_heap_that_was_never_frozen_alone() -> None:
    assert gc.get_freeze_count() == 0
    made = _Node()
    assert refreeze() == 0
    assert gc.get_freeze_count() == 0
    assert id(made) in {id(o) for o in gc.get_objects()}
