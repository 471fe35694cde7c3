"""The accounting journal's marks on both backends: none is 0, a save inserts then moves
it, several files at once, and forgetting one leaves the others."""

from __future__ import annotations

from sqlalchemy import Engine

from ztsim.db.engine import for_writing
from ztsim.radius.serve import journal_marks


def test_marks_are_saved_moved_and_forgotten(engine: Engine) -> None:
    writing = for_writing(engine)
    with engine.connect() as conn:
        assert journal_marks.applied(conn, "radius-acct-a.journal") == 0
    with writing.begin() as conn:
        journal_marks.save(conn, {"radius-acct-a.journal": 120})
    with writing.begin() as conn:
        journal_marks.save(
            conn, {"radius-acct-a.journal": 4_000_000_000, "radius-acct-b.journal": 7}
        )
    with engine.connect() as conn:
        assert journal_marks.applied(conn, "radius-acct-a.journal") == 4_000_000_000
        assert journal_marks.applied(conn, "radius-acct-b.journal") == 7
    with writing.begin() as conn:
        journal_marks.forget(conn, ["radius-acct-a.journal", "radius-acct-gone.journal"])
        journal_marks.forget(conn, [])
    with engine.connect() as conn:
        assert journal_marks.applied(conn, "radius-acct-a.journal") == 0
        assert journal_marks.applied(conn, "radius-acct-b.journal") == 7


def test_a_mark_is_in_the_transaction_that_writes_it(engine: Engine) -> None:
    writing = for_writing(engine)
    with writing.connect() as conn, conn.begin() as transaction:
        journal_marks.save(conn, {"radius-acct-c.journal": 99})
        transaction.rollback()
    with engine.connect() as conn:
        assert journal_marks.applied(conn, "radius-acct-c.journal") == 0
