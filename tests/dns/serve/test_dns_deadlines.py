"""The schedule of entries to read again: due in order, moved or dropped by a fresh read,
kept while no read came, and within bounds when keys are moved again and again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ztsim.dns.serve.deadlines import Deadlines

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C = ("address", "10.0.0.1"), ("address", "10.0.0.2"), ("token", "t1")


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_due_in_order_until_a_read_moves_them() -> None:
    deadlines = Deadlines()
    deadlines.set(A, _at(30))
    deadlines.set(B, _at(10))
    deadlines.set(C, _at(20))
    assert deadlines.next() == _at(10)
    assert deadlines.due(_at(5)) == []
    assert deadlines.due(_at(20)) == [B, C]
    assert deadlines.due(_at(20)) == [B, C]  # still due: no read has moved them yet
    deadlines.set(B, _at(100))  # read again: next due later
    deadlines.set(C, None)  # read again: nothing flips by time any more
    assert deadlines.due(_at(20)) == []
    assert deadlines.next() == _at(30)
    assert deadlines.due(_at(1000)) == [A, B]
    assert len(deadlines) == 2


def test_moving_a_key_earlier_or_dropping_it() -> None:
    deadlines = Deadlines()
    deadlines.set(A, _at(50))
    deadlines.set(A, _at(5))
    assert deadlines.next() == _at(5)
    deadlines.set(A, _at(50))  # its item at 5 is dead now
    assert deadlines.next() == _at(50)
    assert deadlines.due(_at(10)) == []
    deadlines.set(A, None)
    assert (deadlines.next(), deadlines.due(_at(100)), len(deadlines)) == (None, [], 0)


def test_the_heap_stays_within_bounds_when_keys_move_often() -> None:
    deadlines = Deadlines()
    for n in range(10_000):
        deadlines.set(A, _at(n))
    deadlines.set(B, _at(3))
    assert len(deadlines._heap) <= 2 * len(deadlines) + 64
    assert deadlines.due(_at(9_999)) == [B, A]
    deadlines.clear()
    assert (deadlines.next(), len(deadlines)) == (None, 0)
