"""Retention on both backends: old changes go in bounded chunks, each its own short
transaction, and a follower left behind resyncs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event

from ztsim.db.engine import for_writing
from ztsim.feed import outbox
from ztsim.feed.follower import Follower
from ztsim.feed.retention import prune_older_than

from feed.feedkit import NOW, Recorder, change, publish

DAY = timedelta(days=1)


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [c.key for c in outbox.read_after(conn, 0, 100_000)]


def _old_and_young(engine: Engine, old: int, young: int) -> None:
    with for_writing(engine).begin() as conn:
        outbox.publish(conn, [change(f"old{i}") for i in range(old)], NOW - 3 * DAY)
    with for_writing(engine).begin() as conn:
        outbox.publish(conn, [change(f"young{i}") for i in range(young)], NOW)


def _watch(engine: Engine) -> tuple[list[int], list[int]]:
    """(rows gone per DELETE of the outbox, commits) from now on."""
    deletes: list[int] = []
    commits: list[int] = []

    def after(_conn: Any, cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CHANGE_OUTBOX"):
            deletes.append(cursor.rowcount)

    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    return deletes, commits


def test_old_changes_go_in_chunks_and_the_young_stay(engine: Engine) -> None:
    _old_and_young(engine, old=23, young=4)
    deletes, commits = _watch(engine)
    assert prune_older_than(engine, DAY, NOW, chunk=5) == 23
    assert deletes == [5, 5, 5, 5, 3]  # never more than a chunk in one transaction
    assert len(commits) == 5
    assert _keys(engine) == [f"young{i}" for i in range(4)]
    with engine.connect() as conn:
        assert outbox.pruned_through(conn) == 23
        assert outbox.position(conn) == 27


def test_nothing_old_enough_is_a_no_op(engine: Engine) -> None:
    _old_and_young(engine, old=0, young=3)
    assert prune_older_than(engine, DAY, NOW) == 0
    assert prune_older_than(engine, DAY, NOW) == 0  # and on an empty outbox
    with engine.connect() as conn:
        assert outbox.pruned_through(conn) == 0
    assert len(_keys(engine)) == 3


def test_the_outbox_is_pruned_as_a_prefix(engine: Engine) -> None:
    # Clocks of different processes disagree: a change stamped late may be numbered
    # before one stamped early. Everything numbered up to the last old change goes, so
    # `pruned_through` says exactly what a follower can no longer read.
    publish(engine, "old-a", now=NOW - 3 * DAY)
    publish(engine, "stamped-late", now=NOW)
    publish(engine, "old-b", now=NOW - 3 * DAY)
    publish(engine, "young", now=NOW)
    assert prune_older_than(engine, DAY, NOW, chunk=1) == 3
    assert _keys(engine) == ["young"]
    with engine.connect() as conn:
        assert outbox.pruned_through(conn) == 3


def test_a_follower_behind_a_pruned_outbox_resyncs(engine: Engine) -> None:
    _old_and_young(engine, old=10, young=2)
    recorder = Recorder()
    follower = Follower(engine, recorder, lambda: 10, position=4)
    prune_older_than(engine, DAY, NOW, chunk=3)
    follower.catch_up()
    assert recorder.keys == ["young0", "young1"]
    assert follower.position == 12


@pytest.mark.parametrize(("keep", "chunk"), [(-DAY, 10), (DAY, 0)])
def test_bad_arguments_are_refused(engine: Engine, keep: timedelta, chunk: int) -> None:
    with pytest.raises(ValueError, match=r"chunk|keep"):
        prune_older_than(engine, keep, NOW, chunk=chunk)
