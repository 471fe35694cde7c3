"""The API role's pruner: old changes go on its schedule, a database failure is logged
(without values) and the next round retries."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.feed import NewChange, Topic, outbox
from ztsim.node.retention import Pruner

OLD = datetime(2026, 1, 1, tzinfo=UTC)
NOW = OLD + timedelta(days=2)


def _publish(engine: Engine, key: str, at: datetime) -> None:
    with for_writing(engine).begin() as conn:
        outbox.publish(conn, [NewChange("org", Topic.SIM, key)], at)


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(schema.change_outbox.c.key)).scalars())


def test_prune_now_drops_only_changes_older_than_the_retention(engine: Engine) -> None:
    _publish(engine, "old", OLD)
    _publish(engine, "young", NOW - timedelta(hours=1))
    pruner = Pruner(engine, timedelta(days=1), clock=lambda: NOW)
    assert pruner.prune_now() == 1
    assert _keys(engine) == ["young"]
    with engine.connect() as conn:
        assert outbox.pruned_through(conn) == 1


def test_the_thread_prunes_on_its_schedule(engine: Engine) -> None:
    _publish(engine, "old", OLD)
    pruner = Pruner(engine, timedelta(days=1), every=0.05, clock=lambda: NOW)
    pruner.start()
    try:
        deadline = time.monotonic() + 10
        while _keys(engine) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        pruner.stop()
    assert _keys(engine) == []


def test_a_failing_round_is_logged_and_the_next_one_prunes(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("renames the outbox away: done on SQLite only")
    _publish(engine, "old", OLD)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE change_outbox RENAME TO change_outbox_away"))
    pruner = Pruner(engine, timedelta(days=1), every=0.05, clock=lambda: NOW)
    with caplog.at_level(logging.WARNING, "ztsim.node.retention"):
        pruner.start()
        try:
            deadline = time.monotonic() + 10
            while "pruning the change feed failed" not in caplog.text:
                assert time.monotonic() < deadline, "no failure was logged"
                time.sleep(0.02)
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE change_outbox_away RENAME TO change_outbox"))
            while _keys(engine):
                assert time.monotonic() < deadline, "the next round did not prune"
                time.sleep(0.02)
        finally:
            pruner.stop()
    assert "old" not in caplog.text
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.change_outbox)).scalar() == 0
