"""The watcher on a real database (SQLite and PostgreSQL): a first start begins at the
log's end; signals become findings with each org's response; the cursor is stored and a
new watcher resumes from it; an event committed late below the cursor is still read; a
database error is logged by class and the round tried again; the thread runs rounds, and
on an SQLite file leaves out those with no commit since the tick before."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, insert, select

from ztsim.db import schema
from ztsim.events import store as events
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.risk.detectors import Signal, signal_of
from ztsim.risk.serve import watch
from ztsim.risk.serve.watch import CURSOR, Watcher
from ztsim.risk.settings import DEFAULT_SETTINGS, Detector, Response, with_response
from ztsim.risk.store import findings
from ztsim.risk.store.settings import put_settings
from ztsim.sealing import Sealer

from support.radius_world import World, build_world


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    w = build_world(engine, sealer)
    settings = with_response(DEFAULT_SETTINGS, Detector.TWIN_SESSION, Response.SUSPEND)
    with engine.begin() as conn:
        put_settings(conn, w.org_id, settings, actor="t", now=datetime.now(UTC))
    return w


def _twin(engine: Engine, w: World, iccid: str | None = None) -> None:
    subject = subject_of("sim", iccid or w.active_iccid)
    payload = {"gateway_id": w.gateway_id, "imsi": w.active, "imei": "490154203237518"}
    with engine.begin() as conn:
        events.append(
            conn,
            [
                NewEvent(
                    w.org_id, "risk.clone", "gateway:g", subject, Outcome.DENIED,
                    "clone_suspected", payload,
                )
            ],
            datetime.now(UTC),
        )  # fmt: skip


def _state(engine: Engine, iccid: str) -> str:
    s = schema.sims
    with engine.connect() as conn:
        return str(conn.execute(select(s.c.state).where(s.c.iccid == iccid)).scalar_one())


def _position(engine: Engine) -> int | None:
    c = schema.risk_cursors
    with engine.connect() as conn:
        found = conn.execute(select(c.c.position).where(c.c.name == CURSOR)).scalar()
    return None if found is None else int(found)


def _findings(engine: Engine, org_id: str) -> list[tuple[Detector, str]]:
    with engine.connect() as conn:
        page, _ = findings.list_findings(conn, org_id)
    return [(f.detector, str(f.detail["outcome"])) for f in page]


def test_a_first_start_begins_at_the_end_then_acts_on_what_comes(
    engine: Engine, world: World
) -> None:
    _twin(engine, world)  # history: not judged again
    watcher = Watcher(engine)
    assert watcher.run_once(datetime.now(UTC)) == []
    assert _state(engine, world.active_iccid) == "active"
    start = _position(engine)
    assert start is not None
    _twin(engine, world)
    (applied,) = watcher.run_once(datetime.now(UTC))
    assert (applied.detector, applied.response) == (Detector.TWIN_SESSION, Response.SUSPEND)
    assert _state(engine, world.active_iccid) == "suspended"
    moved = _position(engine)
    assert moved is not None
    assert moved > start
    # The overlap is read again: nothing is done twice.
    assert watcher.run_once(datetime.now(UTC)) == []
    assert _findings(engine, world.org_id) == [(Detector.TWIN_SESSION, "suspended")]


def test_a_new_watcher_resumes_from_the_stored_cursor(engine: Engine, world: World) -> None:
    first = Watcher(engine)
    first.run_once(datetime.now(UTC))
    _twin(engine, world)  # while no watcher runs
    second = Watcher(engine)
    assert [a.iccid for a in second.run_once(datetime.now(UTC))] == [world.active_iccid]
    # A third, from the cursor the second stored, finds nothing new (nor the overlap's).
    third = Watcher(engine)
    assert third.run_once(datetime.now(UTC)) == []
    assert len(_findings(engine, world.org_id)) == 1


def _twin_at(engine: Engine, w: World, event_id: int, iccid: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(schema.events).values(
                id=event_id, org_id=w.org_id, time=datetime.now(UTC), kind="risk.clone",
                actor="gateway:g", subject=subject_of("sim", iccid), outcome="denied",
                reason="clone_suspected", payload={},
            )
        )  # fmt: skip


def test_an_event_committed_late_below_the_cursor_is_read(engine: Engine, world: World) -> None:
    watcher = Watcher(engine)
    watcher.run_once(datetime.now(UTC))
    e = schema.events
    with engine.connect() as conn:
        end = conn.execute(select(sa.func.max(e.c.id))).scalar_one()
    # A later id committed first (as on PostgreSQL, where ids are taken at insert): the
    # ids below it belong to transactions still running.
    _twin_at(engine, world, end + 100, world.active_iccid)
    assert [a.iccid for a in watcher.run_once(datetime.now(UTC))] == [world.active_iccid]
    position = _position(engine)
    assert position is not None
    assert position >= end + 100
    # Commits late, below the cursor (above the ids the sequence handed out meanwhile).
    _twin_at(engine, world, end + 50, world.unbound_iccid)
    assert [a.iccid for a in watcher.run_once(datetime.now(UTC))] == [world.unbound_iccid]
    assert _state(engine, world.unbound_iccid) == "suspended"


@contextmanager
def _outage(engine: Engine) -> Iterator[None]:
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE events RENAME TO events_away"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE events_away RENAME TO events"))


def test_a_database_error_is_logged_by_class_and_retried(
    engine: Engine, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = Watcher(engine)
    watcher.run_once(datetime.now(UTC))
    _twin(engine, world)
    with _outage(engine), caplog.at_level(logging.WARNING, logger="ztsim.risk.watch"):
        assert watcher.run_once(datetime.now(UTC)) == []
    assert watcher.rounds_failed == 1
    (record,) = [r for r in caplog.records if r.name == "ztsim.risk.watch"]
    assert "the database failed (" in record.getMessage()
    assert "events_away" not in record.getMessage()  # the class, not the statement
    assert [a.iccid for a in watcher.run_once(datetime.now(UTC))] == [world.active_iccid]


def test_the_thread_runs_rounds_until_stopped(engine: Engine, world: World) -> None:
    watcher = Watcher(engine, every=0.05)
    watcher.start()
    try:
        deadline = time.monotonic() + 5
        while _position(engine) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        _twin(engine, world)
        while _state(engine, world.active_iccid) != "suspended" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert _state(engine, world.active_iccid) == "suspended"


def test_idle_ticks_on_a_sqlite_file_leave_their_round_out(engine: Engine, world: World) -> None:
    sqlite = engine.dialect.name == "sqlite"
    watcher = Watcher(engine, every=0.01)
    watcher.start()
    try:
        deadline = time.monotonic() + 5
        # Past its first round (a first start begins at the log's end) and, on SQLite, idle.
        while time.monotonic() < deadline and (
            _position(engine) is None or (sqlite and watcher.rounds_left_out < 20)
        ):
            time.sleep(0.02)
        # Committed through the pool: a connection other than the watcher's look-out.
        _twin(engine, world)
        deadline = time.monotonic() + 5
        while _state(engine, world.active_iccid) != "suspended" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert _state(engine, world.active_iccid) == "suspended"
    if sqlite:
        assert watcher.rounds_left_out >= 20
    else:  # no data_version: every tick reads
        assert watcher.rounds_left_out == 0


def test_after_a_failed_round_the_next_tick_tries_again_without_a_commit(
    engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: elsewhere no round is left out")
    calls: list[datetime] = []
    fail_next: list[bool] = []
    original = Watcher.run_once

    def failing_once(self: Watcher, now: datetime) -> list[Any]:
        calls.append(now)
        if fail_next:
            fail_next.clear()
            self.rounds_failed += 1  # as run_once counts a database error
            return []
        return original(self, now)

    monkeypatch.setattr(Watcher, "run_once", failing_once)
    watcher = Watcher(engine, every=0.01)
    watcher.start()
    try:
        deadline = time.monotonic() + 5
        while watcher.rounds_left_out < 5 and time.monotonic() < deadline:
            time.sleep(0.01)  # idle: its first round (and the cursor it stored) are past
        idle = len(calls)
        fail_next.append(True)
        _twin(engine, world)  # one commit: the round after it fails, the next retries
        deadline = time.monotonic() + 5
        while _state(engine, world.active_iccid) != "suspended" and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        watcher.stop()
    assert not fail_next  # a round failed
    assert len(calls) >= idle + 2
    assert _state(engine, world.active_iccid) == "suspended"


def test_the_overlap_is_read_only_while_the_cursor_recently_moved(
    engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = Watcher(engine)
    watcher.run_once(datetime.now(UTC))
    with engine.connect() as conn:
        end = conn.execute(select(sa.func.max(schema.events.c.id))).scalar_one()
    _twin_at(engine, world, end + 100, world.active_iccid)
    assert len(watcher.run_once(datetime.now(UTC))) == 1
    # Settled: an id below the cursor is taken to be committed or gone, and not read
    # again (each round then reads only what is new).
    monkeypatch.setattr(watch, "SETTLE_SECONDS", 0.0)
    _twin_at(engine, world, end + 50, world.unbound_iccid)
    assert watcher.run_once(datetime.now(UTC)) == []
    assert _state(engine, world.unbound_iccid) == "active"


def test_signals_already_fed_in_the_overlap_are_not_read_whole_again(
    engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While attaches stream in, the overlap holds thousands of signals fed already;
    # each round re-made them all from whole rows before (most of an API process's CPU).
    watcher = Watcher(engine)
    watcher.run_once(datetime.now(UTC))
    for _ in range(30):
        _twin(engine, world, world.unbound_iccid)
    made: list[int] = []
    real = signal_of

    def counted(event_id: int, *rest: Any) -> Signal | None:
        made.append(event_id)
        return real(event_id, *rest)

    monkeypatch.setattr(watch, "signal_of", counted)
    watcher.run_once(datetime.now(UTC))
    assert len(made) == 30
    assert watcher.run_once(datetime.now(UTC)) == []  # the overlap again: all fed
    assert len(made) == 30
    _twin(engine, world, world.unbound_iccid)
    watcher.run_once(datetime.now(UTC))
    assert len(made) == 31
