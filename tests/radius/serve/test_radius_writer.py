"""The AAA records' writer against a database that fails for a while (its events table
renamed away, then back): a failed batch is kept and written with the next, access
decisions past the bound are dropped oldest first, counted and reported per org when
writing resumes, and the rest is never dropped. Each commit publishes its sessions and
first-attach bindings on the change feed, in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, insert, select

from ztsim.db import schema
from ztsim.events.schema import NewEvent
from ztsim.feed import outbox
from ztsim.feed.change import Topic
from ztsim.radius.aaa.accounting import SESSION_STARTED, SESSION_STOPPED, session_event
from ztsim.radius.aaa.traffic import AccessRecord
from ztsim.radius.serve import writer as writer_module
from ztsim.radius.serve.writer import DROPPED_KIND, BatchWriter
from ztsim.sealing import Sealer
from ztsim.sessions.table import Session

from support.radius_world import build_world

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _orgs(engine: Engine) -> None:
    with engine.begin() as conn:
        for org in ("o1", "o2"):
            conn.execute(insert(schema.orgs).values(id=org, name=org, slug=org, created_at=T0))


@contextmanager
def _outage(engine: Engine) -> Iterator[None]:
    """The events table gone for a while: every commit that writes an event fails."""
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE events RENAME TO events_away"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE events_away RENAME TO events"))


def _decision(org: str, n: int) -> AccessRecord:
    return (org, "gw", f"imsi:{n}", True, "accepted", f"{n:015d}", "apn", None, None, T0, None)


def _session(key: str) -> Session:
    return Session(
        "o1", "gw", key, "127.0.0.1", None, None, None, None, None, None, None, None,
        None, T0, T0,
    )  # fmt: skip


def _events(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select org_id, kind, payload from events order by id")).all()
    return [(o, k, p if isinstance(p, dict) else json.loads(p)) for o, k, p in rows]


def _sessions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("select acct_session_id from radius_sessions")).scalars())


def test_a_failed_batch_is_kept_and_written_with_the_next(engine: Engine) -> None:
    _orgs(engine)
    writer = BatchWriter(engine)
    writer.access(_decision("o1", 1))
    writer.session(_session("s1"))
    first = writer.take()
    assert first.generation == 0
    assert writer.generation == 1
    with _outage(engine), pytest.raises(sa.exc.SQLAlchemyError):
        writer.write(first)
    writer.keep(first)
    assert writer.retained == 1
    assert _sessions(engine) == set()  # the whole transaction was rolled back
    writer.event(NewEvent("o1", "radius.session_started", "gw", "sim:1"), T0)
    writer.session(_session("s2"))
    second = writer.take()
    assert second.generation == 1
    writer.write(second)
    assert [k for _, k, _ in _events(engine)] == ["radius.access", "radius.session_started"]
    assert _sessions(engine) == {"s1", "s2"}
    assert writer.written_events == 2
    assert writer.retained == 0
    assert writer.dropped_access == 0


def test_past_the_bound_the_oldest_decisions_go_counted_and_reported_per_org(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "MAX_RETAINED_EVENTS", 6)
    _orgs(engine)
    writer = BatchWriter(engine, clock=lambda: T0)
    with _outage(engine):
        for n in range(4):
            writer.access(_decision("o1" if n < 3 else "o2", n))
        writer.event(NewEvent("o1", "radius.session_started", "gw", "sim:1"), T0)
        writer.session_event(_session("s1"), SESSION_STOPPED, T0)
        batch = writer.take()
        with pytest.raises(sa.exc.SQLAlchemyError):
            writer.write(batch)
        writer.keep(batch)
        for n in range(4, 8):
            writer.access(_decision("o2", n))
        # 10 events, 6 kept: the 4 oldest decisions go (3 of o1, 1 of o2), the session
        # events stay.
        batch = writer.take()
        assert len(batch.events) == 6
        assert writer.dropped_access == 4
        with pytest.raises(sa.exc.SQLAlchemyError):
            writer.write(batch)  # the reports wait for a commit that succeeds
        writer.keep(batch)
    writer.write(writer.take())
    events = _events(engine)
    kinds = [k for _, k, _ in events]
    assert kinds.count("radius.access") == 4
    assert kinds.count("radius.session_started") == 1
    assert kinds.count(SESSION_STOPPED) == 1
    reports = {o: p for o, k, p in events if k == DROPPED_KIND}
    assert reports == {
        "o1": {"kind": "radius.access", "dropped": 3},
        "o2": {"kind": "radius.access", "dropped": 1},
    }
    # Reported once.
    writer.access(_decision("o1", 9))
    writer.write(writer.take())
    assert [k for _, k, _ in _events(engine)].count(DROPPED_KIND) == 2


def test_a_session_event_is_written_as_the_event_accounting_describes(engine: Engine) -> None:
    _orgs(engine)
    writer = BatchWriter(engine)
    session = _session("s1")._replace(
        imsi="001010000000001", iccid="8900000000000000001", ue_address="10.0.0.1"
    )
    stopped = session._replace(stopped_at=T0, stop_cause="stop")
    writer.session_event(session, SESSION_STARTED, T0)
    writer.session_event(stopped, SESSION_STOPPED, T0)
    writer.write(writer.take())
    e = schema.events
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.c.org_id, e.c.kind, e.c.actor, e.c.subject, e.c.outcome, e.c.reason)
            .add_columns(e.c.payload, e.c.time)
            .order_by(e.c.id)
        ).all()
    expected = [session_event(session, SESSION_STARTED), session_event(stopped, SESSION_STOPPED)]
    assert [tuple(r) for r in rows] == [
        (x.org_id, x.kind, x.actor, x.subject, x.outcome.value, x.reason, x.payload, T0)
        for x in expected
    ]
    assert rows[1].subject == "sim:8900000000000000001"
    assert rows[1].reason == "stop"


# -- the change feed: what a commit changed, published in that commit ---------------------


def _outbox(engine: Engine) -> list[tuple[str, str, str, dict[str, object]]]:
    o = schema.change_outbox
    with engine.connect() as conn:
        rows = conn.execute(select(o.c.org_id, o.c.topic, o.c.key, o.c.payload).order_by(o.c.seq))
        return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_sessions_are_published_in_the_commit_that_writes_them(engine: Engine) -> None:
    _orgs(engine)
    writer = BatchWriter(engine, clock=lambda: T0)
    addressed = _session("s1")._replace(iccid="8944", ue_address="10.64.0.7")
    bare = _session("s2")
    long_id = _session("x" * 253)
    writer.session(addressed)
    writer.session(bare)
    writer.session(long_id)
    writer.event(NewEvent("o1", "radius.session_started", "gw", "sim:1"), T0)
    batch = writer.take()
    with _outage(engine), pytest.raises(sa.exc.SQLAlchemyError):
        writer.write(batch)
    writer.keep(batch)
    assert _outbox(engine) == []  # nothing of a failed commit
    writer.session(addressed._replace(stopped_at=T0, stop_cause="stop"))  # a later state wins
    writer.write(writer.take())
    published = _outbox(engine)
    assert published[:2] == [
        (
            "o1",
            "session",
            "10.64.0.7",
            {"iccid": "8944", "gateway_id": "gw", "acct_session_id": "s1", "stopped": True},
        ),
        (
            "o1",
            "session",
            "gw/s2",
            {"iccid": None, "gateway_id": "gw", "acct_session_id": "s2", "stopped": False},
        ),
    ]
    # An Acct-Session-Id longer than the outbox's key: cut, whole in the payload.
    (_, topic, key, payload) = published[2]
    assert (topic, key, payload["acct_session_id"]) == ("session", f"gw/{'x' * 197}", "x" * 253)
    assert len(published) == 3
    assert _sessions(engine) == {"s1", "s2", "x" * 253}


def test_a_first_attach_binding_publishes_its_sim(engine: Engine, sealer: Sealer) -> None:
    world = build_world(engine, sealer)
    with engine.begin() as conn:
        conn.execute(schema.orgs.update().values(tofu_binding=True))
        head = outbox.position(conn)
    writer = BatchWriter(engine)
    writer.bind(world.org_id, world.unbound_iccid, world.device_imei, T0)
    # Already bound: nothing to bind, nothing to publish.
    writer.bind(world.org_id, world.active_iccid, "356938035643809", T0)
    writer.write(writer.take())
    with engine.connect() as conn:
        changes = outbox.read_after(conn, head)
        device = conn.execute(
            select(schema.sims.c.device_id).where(schema.sims.c.iccid == world.unbound_iccid)
        ).scalar_one()
    assert device is not None
    # One SIM change, from the binding's use case, in the writer's transaction.
    sims = [(c.org_id, c.key) for c in changes if c.topic is Topic.SIM]
    assert sims == [(world.org_id, world.unbound_iccid)]


def test_of_a_session_recorded_twice_before_a_commit_the_later_state_is_written(
    engine: Engine,
) -> None:
    _orgs(engine)
    writer = BatchWriter(engine, clock=lambda: T0)
    started = _session("s1")._replace(ue_address="10.64.0.7")
    stopped_at = datetime(2026, 1, 1, 0, 5, 0, 250_000, tzinfo=UTC)
    writer.session(started)
    writer.session(
        started._replace(updated_at=stopped_at, stopped_at=stopped_at, stop_cause="stop")
    )
    batch = writer.take()
    assert list(batch.sessions.values()) == [
        started._replace(updated_at=stopped_at, stopped_at=stopped_at, stop_cause="stop")
    ]
    writer.write(batch)
    with engine.connect() as conn:
        row = conn.execute(
            select(
                schema.radius_sessions.c.started_at,
                schema.radius_sessions.c.updated_at,
                schema.radius_sessions.c.stopped_at,
                schema.radius_sessions.c.stop_cause,
            )
        ).one()
    assert tuple(row) == (T0, stopped_at, stopped_at, "stop")
    assert [(k, p["stopped"]) for _, _, k, p in _outbox(engine)] == [("10.64.0.7", True)]
