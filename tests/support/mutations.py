"""Hypothesis strategies that damage valid datagrams, for the parsers' fuzz tests."""

from __future__ import annotations

from hypothesis import strategies as st


def _overwrite(base: bytes, spots: list[tuple[int, int]]) -> bytes:
    data = bytearray(base)
    for index, value in spots:
        data[index % len(data)] = value
    return bytes(data)


def overwritten(
    bases: st.SearchStrategy[bytes], *, reach: int, min_spots: int = 0
) -> st.SearchStrategy[bytes]:
    """A datagram from `bases` with up to 4 octets (at offsets below `reach`, wrapped to
    its length) set to any value."""
    spots = st.lists(
        st.tuples(st.integers(0, reach), st.integers(0, 255)), min_size=min_spots, max_size=4
    )
    return st.builds(_overwrite, bases, spots)
