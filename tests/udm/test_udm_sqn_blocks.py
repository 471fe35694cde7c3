"""SQN blocks: handed out in order, dropped when the row moves, sized by demand."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.udm.sqn_blocks import MAX_BLOCK, SqnBlocks

SIM = "001010000000001"


def test_a_block_is_handed_out_in_order_while_the_row_shows_its_top() -> None:
    blocks = SqnBlocks()
    assert blocks.take(SIM, 0) is None  # nothing reserved yet
    blocks.install(SIM, top=10, size=4, used=1, now=0.0)  # (6, 10], 7 issued with it
    assert [blocks.take(SIM, 10) for _ in range(4)] == [8, 9, 10, None]


def test_a_moved_row_drops_the_block() -> None:
    blocks = SqnBlocks()
    blocks.install(SIM, top=10, size=4, used=0, now=0.0)
    assert blocks.take(SIM, 10) == 7
    # Another writer (a process reserving, a resync) moved SEQ_HE: nothing more from here,
    # even once the row comes back to the same value.
    assert blocks.take(SIM, 14) is None
    assert blocks.take(SIM, 10) is None
    assert len(blocks) == 0


def test_blocks_grow_with_demand_and_restart_at_one_after_a_quiet_spell() -> None:
    blocks = SqnBlocks()
    assert blocks.reservation_size(SIM, 1, 0.0) == 1  # first use: no SEQ skipped on a crash
    sizes, top, now = [], 0, 0.0
    for _ in range(8):
        size = blocks.reservation_size(SIM, 1, now)
        sizes.append(size)
        top += size
        blocks.install(SIM, top, size, 1, now)
        while blocks.take(SIM, top) is not None:
            pass
        now += 0.1
    assert sizes == [1, 2, 4, 8, 16, 32, 32, 32]
    assert blocks.reservation_size(SIM, 1, now + 5.0) == 1  # quiet: back to one
    assert blocks.reservation_size(SIM, 50, now) == 50  # a batch's own need comes first


def test_a_block_still_in_use_does_not_grow() -> None:
    blocks = SqnBlocks()
    blocks.install(SIM, top=4, size=4, used=1, now=0.0)
    assert blocks.reservation_size(SIM, 1, 0.1) == 1


def test_oldest_blocks_are_forgotten_beyond_the_bound() -> None:
    blocks = SqnBlocks(max_sims=2)
    for n, sim in enumerate(("a", "b", "c")):
        blocks.install(sim, top=5, size=5, used=0, now=float(n))
    assert len(blocks) == 2
    assert blocks.take("a", 5) is None
    assert blocks.take("c", 5) == 1


def test_invalid_settings_and_use_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SqnBlocks(max_block=0)
    with pytest.raises(ValueError, match="between 0 and size"):
        SqnBlocks().install(SIM, top=5, size=2, used=3, now=0.0)


@given(st.lists(st.tuples(st.integers(1, 40), st.booleans()), min_size=1, max_size=60))
def test_seqs_strictly_increase_and_never_exceed_the_row(steps: list[tuple[int, bool]]) -> None:
    """Whatever the demand and whoever else moves the row forward, every SEQ handed out
    is above all before it and at most the row's value (it was reserved)."""
    blocks, row, issued, now = SqnBlocks(), 0, [0], 0.0
    for wanted, other_writer in steps:
        if other_writer:
            row += 3  # another process reserved
        got: list[int] = []
        while len(got) < wanted and (seq := blocks.take(SIM, row)) is not None:
            got.append(seq)
        if len(got) < wanted:
            size = blocks.reservation_size(SIM, wanted - len(got), now)
            assert size <= max(MAX_BLOCK, wanted - len(got))
            row += size
            need = wanted - len(got)
            got += list(range(row - size + 1, row - size + 1 + need))
            blocks.install(SIM, row, size, need, now)
        issued += got
        now += 0.01
    assert all(a < b for a, b in itertools.pairwise(issued))
    assert issued[-1] <= row
