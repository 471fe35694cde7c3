"""The event log on a real database (SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from ztsim.errors import InvalidInput
from ztsim.events import store
from ztsim.events.schema import NewEvent, Outcome
from ztsim.identity import repository

from tests_clock import NOW


def _fill(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        a = repository.create_org(conn, "A", "a", NOW).id
        b = repository.create_org(conn, "B", "b", NOW).id
        for i in range(30):
            store.append(
                conn,
                [
                    NewEvent(
                        a,
                        "sim.suspend" if i % 3 == 0 else "sim.assign",
                        "token:t",
                        f"sim:{i % 5}",
                        Outcome.SUCCESS,
                        f"reason {i}",
                        {"n": i, "nested": {"ok": True}},
                    )
                ],
                NOW + timedelta(minutes=i),
            )
        store.append(conn, [NewEvent(b, "sim.suspend", "token:u", "sim:0")], NOW)
    return a, b


def test_newest_first_with_cursor(engine: Engine) -> None:
    a, _ = _fill(engine)
    seen, cursor = [], None
    with engine.connect() as conn:
        while True:
            page, cursor = store.query(conn, a, store.EventQuery(), limit=7, cursor=cursor)
            seen += [e.payload["n"] for e in page]
            if cursor is None:
                break
    assert seen == list(range(29, -1, -1))


def test_filters(engine: Engine) -> None:
    a, b = _fill(engine)
    with engine.connect() as conn:
        kinds, _ = store.query(conn, a, store.EventQuery(kind="sim.suspend"))
        assert {e.payload["n"] for e in kinds} == set(range(0, 30, 3))
        subject, _ = store.query(conn, a, store.EventQuery(subject="sim:2"))
        assert {e.payload["n"] for e in subject} == {2, 7, 12, 17, 22, 27}
        window, _ = store.query(
            conn,
            a,
            store.EventQuery(since=NOW + timedelta(minutes=10), until=NOW + timedelta(minutes=12)),
        )
        assert [e.payload["n"] for e in window] == [11, 10]
        assert window[0].time == NOW + timedelta(minutes=11)
        assert window[0].payload["nested"] == {"ok": True}
        several, _ = store.query(
            conn, a, store.EventQuery(subjects_in=["sim:1", "sim:3"]), limit=1000
        )
        assert len(several) == 12
        other, _ = store.query(conn, b, store.EventQuery())
        assert [e.actor for e in other] == ["token:u"]


@pytest.mark.parametrize("cursor", ["", "x", "WyJhIl0", "W3RydWVd", "WzEsMl0"])
def test_foreign_cursors_are_refused(engine: Engine, cursor: str) -> None:
    a, _ = _fill(engine)
    with engine.connect() as conn, pytest.raises(InvalidInput, match="cursor"):
        store.query(conn, a, store.EventQuery(), cursor=cursor)
