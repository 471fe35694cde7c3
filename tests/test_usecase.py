"""The use-case transaction: events at once, changes published once, at the end of the
outermost use case, and nothing left of a use case that raised (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, insert

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.errors import Conflict
from ztsim.events.schema import NewEvent
from ztsim.feed import outbox
from ztsim.feed.change import Topic
from ztsim.usecase import use_case

from support.traces import Mark
from tests_clock import NOW

ORG = "0" * 31 + "7"


@pytest.fixture(autouse=True)
def _org(engine: Engine) -> None:
    # Events belong to an org that exists.
    with engine.begin() as conn:
        conn.execute(
            insert(schema.orgs).values(
                id=ORG, name="Acme", slug="acme", tofu_binding=False, created_at=NOW
            )
        )


def _event(kind: str) -> NewEvent:
    return NewEvent(ORG, kind, "test", f"thing:{kind}")


def _refused_use_case(conn: Connection, key: str) -> None:
    """Records an event and a change, then is refused."""
    with use_case(conn, NOW) as uc:
        uc.event(_event("refused"))
        uc.change(ORG, Topic.IDENTITY, key)
        raise Conflict("refused")


def test_a_use_case_writes_its_events_and_publishes_its_changes_in_order(engine: Engine) -> None:
    mark = Mark(engine)
    with for_writing(engine).begin() as conn, use_case(conn, NOW) as uc:
        uc.event(_event("a.done"), _event("b.done"))
        uc.change(ORG, Topic.SIM, "8944000000000000001", {"state": "suspended"})
        uc.change(ORG, Topic.DNS, ORG)
    left = mark.left()
    assert left.kinds == ["a.done", "b.done"]
    assert left.topics == [(Topic.SIM, "8944000000000000001"), (Topic.DNS, ORG)]
    assert left.payloads == [{"state": "suspended"}, {}]
    assert {c.created_at for c in left.changes} == {NOW}


def test_nested_use_cases_publish_once_when_the_outermost_ends(engine: Engine) -> None:
    mark = Mark(engine)
    with for_writing(engine).begin() as conn:
        with use_case(conn, NOW) as outer:
            outer.change(ORG, Topic.SIM, "1")
            with use_case(conn, NOW) as inner:
                inner.change(ORG, Topic.SIM, "2")
                inner.event(_event("inner.done"))
            # The inner one has ended: its event is written, its change still waits, so
            # the outbox insert (and on PostgreSQL its lock) comes last.
            assert outbox.read_after(conn, mark.seq) == []
            outer.change(ORG, Topic.SIM, "3")
        assert [c.key for c in outbox.read_after(conn, mark.seq)] == ["1", "2", "3"]
    assert mark.left().kinds == ["inner.done"]


def test_a_nested_use_case_that_raises_drops_only_its_own_changes(engine: Engine) -> None:
    mark = Mark(engine)
    with for_writing(engine).begin() as conn, use_case(conn, NOW) as outer:
        outer.change(ORG, Topic.IDENTITY, "kept-before")
        with pytest.raises(Conflict), conn.begin_nested():
            _refused_use_case(conn, "dropped")
        outer.change(ORG, Topic.IDENTITY, "kept-after")
    left = mark.left()
    assert [key for _topic, key in left.topics] == ["kept-before", "kept-after"]
    assert left.kinds == []  # the savepoint took the refused event back


def test_a_refused_use_case_leaves_nothing_and_the_connection_clean(engine: Engine) -> None:
    mark = Mark(engine)
    with for_writing(engine).connect() as conn:
        with pytest.raises(Conflict), conn.begin():
            _refused_use_case(conn, "refused")
        assert mark.left().empty
        # Same connection: had the refused use case stayed registered, this one would
        # count as nested and never publish.
        with conn.begin(), use_case(conn, NOW) as uc:
            uc.change(ORG, Topic.SIM, "next")
    assert mark.left().topics == [(Topic.SIM, "next")]


def test_a_use_case_without_changes_publishes_nothing(engine: Engine) -> None:
    mark = Mark(engine)
    with for_writing(engine).begin() as conn, use_case(conn, NOW) as uc:
        uc.event(_event("token.created"))
    left = mark.left()
    assert (left.kinds, left.changes) == (["token.created"], [])


def test_the_caller_rolling_back_takes_events_and_changes_back(engine: Engine) -> None:
    mark = Mark(engine)
    with for_writing(engine).connect() as conn:
        tx = conn.begin()
        with use_case(conn, NOW) as uc:
            uc.event(_event("undone"))
            uc.change(ORG, Topic.NETWORK, ORG)
        tx.rollback()
    assert mark.left().empty
