"""The follower on both backends: in order, awake within a bound on any commit (this
process or another), resyncing behind the retention, riding out a lost database and a
failing `apply` without skipping anything; and the consistent read it starts from."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, event, func, insert, select, text
from sqlalchemy.engine import make_url

from ztsim.db.engine import for_writing, make_engine
from ztsim.feed import outbox
from ztsim.feed.follower import POLL_SECONDS, Follower, consistent_read, stop_all

from feed.feedkit import (
    NOW,
    ORG,
    Recorder,
    change,
    postgres_only,
    publish,
    publish_from_another_process,
    wait_until,
)

# Bounds for a loaded machine (five test runs share two cores); the figures measured on
# a quiet one are in the feed's notes: a few milliseconds.
WAKE_BOUND = 1.0


def _head(engine: Engine) -> int:
    with consistent_read(engine) as conn:
        return outbox.position(conn)


@pytest.fixture
def running() -> Iterator[list[Follower]]:
    """Followers a test starts; stopped whatever happens to the test."""
    followers: list[Follower] = []
    yield followers
    stop_all(followers)


def _start(running: list[Follower], follower: Follower) -> Follower:
    running.append(follower)
    follower.start()
    return follower


# -- order and batches ----------------------------------------------------------------------


def test_catch_up_applies_everything_above_the_position_in_order_and_batches(
    engine: Engine,
) -> None:
    for i in range(10):
        publish(engine, f"k{i}")
    recorder = Recorder()
    follower = Follower(engine, recorder, lambda: 0, position=3, batch=3)
    assert follower.catch_up() == 7
    assert recorder.seqs == list(range(4, 11))
    assert [len(b) for b in recorder.batches] == [3, 3, 1]
    assert follower.position == 10
    assert follower.catch_up() == 0  # nothing new: nothing applied again
    assert follower.connected
    assert follower.lag_seconds() < 1.0


def test_the_poll_defaults_per_backend(engine: Engine) -> None:
    follower = Follower(engine, Recorder(), lambda: 0, position=0, listen=False)
    assert follower.poll_seconds == POLL_SECONDS[engine.dialect.name]
    assert POLL_SECONDS == {"postgresql": 1.0, "sqlite": 0.1}


# -- waking ---------------------------------------------------------------------------------


def test_a_commit_in_this_process_wakes_the_follower(
    engine: Engine, running: list[Follower]
) -> None:
    # A poll of 30 s: only the wake on the publishing connection's return to the pool
    # (or NOTIFY) can bring the change in time.
    recorder = Recorder()
    follower = _start(running, Follower(engine, recorder, lambda: 0, position=0, poll_seconds=30))
    time.sleep(0.3)  # past the start's first read
    latencies = []
    for i in range(5):
        publish(engine, f"k{i}")
        committed = time.time()
        assert wait_until(lambda i=i: f"k{i}" in recorder.applied_at, WAKE_BOUND)  # type: ignore[misc]
        latencies.append(recorder.applied_at[f"k{i}"] - committed)
    assert follower.position == 5
    assert max(latencies) < WAKE_BOUND


def test_a_commit_in_another_process_wakes_the_follower(
    engine: Engine,
    other_engine: Engine,
    database: tuple[str, str | None],
    app_name: str,
    running: list[Follower],
) -> None:
    # PostgreSQL: a poll of 30 s, so NOTIFY is what wakes it. SQLite: the default poll
    # (0.1 s) is the only way another process's commit can be seen.
    url, schema = database
    postgresql = engine.dialect.name == "postgresql"
    recorder = Recorder()
    follower = Follower(
        other_engine, recorder, lambda: 0, position=0, poll_seconds=30 if postgresql else None
    )
    _start(running, follower)
    if postgresql:
        assert wait_until(lambda: _listening(engine, app_name), 10)
    time.sleep(0.3)  # past the start's first read and the listener's first wake
    committed = publish_from_another_process(url, schema, "remote")
    assert wait_until(lambda: "remote" in recorder.applied_at, 10)
    assert recorder.applied_at["remote"] - committed < WAKE_BOUND
    assert recorder.keys == ["remote"]


def test_an_idle_poll_of_a_sqlite_file_reads_nothing_until_a_commit(
    engine: Engine, database: tuple[str, str | None], running: list[Follower]
) -> None:
    # SQLite's data_version is asked first: a poll with no commit since the one before
    # leaves its read out, and still counts as current.
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's follower is woken by NOTIFY")
    url, schema = database
    recorder = Recorder()
    follower = _start(running, Follower(engine, recorder, lambda: 0, position=0, poll_seconds=0.01))
    assert wait_until(lambda: follower.polls_left_out >= 5, 10)
    reads, left_out = follower.reads, follower.polls_left_out
    assert wait_until(lambda: follower.polls_left_out >= left_out + 20, 10)
    assert follower.reads == reads
    assert follower.lag_seconds() < WAKE_BOUND
    # Another process's commit: no hint reaches this one, its next poll reads.
    committed = publish_from_another_process(url, schema, "remote")
    assert wait_until(lambda: "remote" in recorder.applied_at, 10)
    assert recorder.applied_at["remote"] - committed < WAKE_BOUND
    assert follower.reads > reads
    assert recorder.keys == ["remote"]


def test_polls_are_never_left_out_on_postgresql(engine: Engine, running: list[Follower]) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite: the test above)")
    follower = _start(
        running,
        Follower(engine, Recorder(), lambda: 0, position=0, poll_seconds=0.01, listen=False),
    )
    assert wait_until(lambda: follower.reads >= 10, 10)
    assert follower.polls_left_out == 0


def _listening(engine: Engine, app_name: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = :name AND query LIKE 'LISTEN%'"
            ),
            {"name": app_name},
        ).scalar_one()
    return bool(found)


# -- retention ------------------------------------------------------------------------------


def test_behind_the_retention_it_resyncs_and_goes_on_from_there(engine: Engine) -> None:
    publish(engine, "a", "b", "c", now=NOW)
    with for_writing(engine).begin() as conn:
        outbox.prune(conn, NOW.replace(year=2026))
    publish(engine, "d", "e")
    resyncs: list[int] = []

    def resync() -> int:
        resyncs.append(1)
        return _head(engine) - 1  # a snapshot that reflects "d" but not "e"

    recorder = Recorder()
    follower = Follower(engine, recorder, resync, position=1)
    follower.catch_up()
    assert resyncs == [1]
    assert recorder.keys == ["e"]
    assert follower.position == 5


def test_behind_with_nothing_left_to_read_it_resyncs_all_the_same(engine: Engine) -> None:
    publish(engine, "a", "b", "c", now=NOW)
    with for_writing(engine).begin() as conn:
        outbox.prune(conn, NOW.replace(year=2026))
    resyncs: list[int] = []

    def resync() -> int:
        resyncs.append(1)
        return _head(engine)

    follower = Follower(engine, Recorder(), resync, position=1)
    follower.catch_up()
    assert resyncs == [1]
    assert follower.position == 3


def test_a_gap_left_by_a_rollback_is_not_a_prune(engine: Engine) -> None:
    publish(engine, "a")
    with for_writing(engine).connect() as conn:
        conn.begin()
        outbox.publish(conn, [change("rolled-back")], NOW)  # PostgreSQL: a number spent
        conn.rollback()
    publish(engine, "b")
    recorder = Recorder()
    follower = Follower(engine, recorder, lambda: pytest.fail("no resync"), position=0)
    follower.catch_up()
    assert recorder.keys == ["a", "b"]
    follower = Follower(engine, recorder, lambda: pytest.fail("no resync"), position=1)
    follower.catch_up()  # starts at the gap
    assert recorder.keys == ["a", "b", "b"]


def test_a_prune_committed_between_the_reads_of_a_step_is_never_a_silent_skip(
    engine: Engine, other_engine: Engine
) -> None:
    # A prune committed after the follower read the mark but before it read the rows
    # (PostgreSQL's READ COMMITTED: a snapshot per statement) would hand it the first
    # change after the pruned ones, with no resync. The follower reads the rows first.
    publish(engine, "a", "b", "c", now=NOW)
    publish(engine, "d", now=NOW.replace(year=2026))
    fired: list[str] = []

    def prune_now(*_args: Any) -> None:
        if not fired:
            fired.append("pruned")
            with for_writing(other_engine).begin() as conn:
                outbox.prune(conn, NOW.replace(year=2025, month=6))

    event.listen(engine, "after_cursor_execute", prune_now)
    resyncs: list[int] = []

    def resync() -> int:
        resyncs.append(1)
        return _head(engine)

    recorder = Recorder()
    follower = Follower(engine, recorder, resync, position=0)
    try:
        follower.catch_up()
    finally:
        event.remove(engine, "after_cursor_execute", prune_now)
    assert fired == ["pruned"]
    assert recorder.seqs[:3] == [1, 2, 3] or resyncs == [1]
    assert follower.position == 4


# -- failures -------------------------------------------------------------------------------


def test_an_exception_in_apply_is_logged_and_the_batch_retried(
    engine: Engine, running: list[Follower], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    recorder.failures = 1
    _start(running, Follower(engine, recorder, lambda: 0, position=0))
    with caplog.at_level(logging.ERROR, logger="ztsim.feed"):
        publish(engine, "a", "b")
        assert wait_until(lambda: recorder.seqs == [1, 2], 15)
    assert [[c.seq for c in b] for b in recorder.failed] == [[1, 2]]
    failures = [r for r in caplog.records if "applying the change feed failed" in r.message]
    assert len(failures) == 1
    assert failures[0].exc_info is not None


def test_lost_sqlite_database_last_state_kept_then_caught_up(
    engine: Engine, tmp_path: Path, running: list[Follower], caplog: pytest.LogCaptureFixture
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only (PostgreSQL: the test below)")
    # The follower opens the file through a symbolic link; the outage points the link
    # at a folder that does not exist (one atomic rename each way, so the follower
    # never creates an empty database in between).
    real = Path(str(engine.url.database))
    link = tmp_path / "through.db"
    link.symlink_to(real)

    def point_link_at(target: Path) -> None:
        swap = tmp_path / "swap.db"
        swap.symlink_to(target)
        os.replace(swap, link)

    follower_engine = make_engine(f"sqlite:///{link}")

    def lose() -> None:
        point_link_at(tmp_path / "gone" / "x.db")
        follower_engine.dispose()  # its pooled connections hold the file open

    try:
        _lost_and_back(
            engine,
            follower_engine,
            lose=lose,
            restore=lambda: point_link_at(real),
            running=running,
            caplog=caplog,
        )
    finally:
        follower_engine.dispose()


def test_lost_postgresql_connection_last_state_kept_then_caught_up(
    engine: Engine,
    database: tuple[str, str | None],
    running: list[Follower],
    caplog: pytest.LogCaptureFixture,
) -> None:
    postgres_only(engine)
    # The follower logs in as a role of its own: the outage refuses that role's logins
    # and terminates its connections, and only its.
    url, schema = database
    role = f"ztsim_feed_{secrets.token_hex(4)}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT ON change_outbox, change_feed_state TO "{role}"'))

    def login(allowed: bool) -> None:
        with engine.begin() as conn:
            conn.execute(text(f'ALTER ROLE "{role}" {"LOGIN" if allowed else "NOLOGIN"}'))
            if not allowed:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE usename = :role"
                    ),
                    {"role": role},
                )
        if not allowed:
            # pg_terminate_backend only signals: until the backends are gone, the follower
            # could still read what is published "during" the outage.
            assert wait_until(lambda: not _backends_of(engine, role), 10)

    as_role = make_url(url).set(username=role).render_as_string(hide_password=False)
    follower_engine = make_engine(as_role, schema=schema)
    try:
        _lost_and_back(
            engine,
            follower_engine,
            lose=lambda: login(False),
            restore=lambda: login(True),
            running=running,
            caplog=caplog,
        )
    finally:
        stop_all(running)
        follower_engine.dispose()
        login(False)  # ends anything left, then the role goes
        with engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


MARKER = "value-that-must-not-be-logged-5b1e"


def _backends_of(engine: Engine, role: str) -> int:
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE usename = :role")
        return int(conn.execute(query, {"role": role}).scalar_one())


def _lost_and_back(
    engine: Engine,
    follower_engine: Engine,
    *,
    lose: Callable[[], None],
    restore: Callable[[], None],
    running: list[Follower],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ztsim.feed")
    recorder = Recorder()
    follower = _start(running, Follower(follower_engine, recorder, lambda: 0, position=0))
    publish(engine, "before")
    assert wait_until(lambda: recorder.keys == ["before"], 10)
    assert follower.connected

    lose()
    with for_writing(engine).begin() as conn:  # changes keep coming meanwhile
        outbox.publish(conn, [change(MARKER, {"state": MARKER}), change("during")], NOW)
    assert wait_until(lambda: not follower.connected, 15)
    assert follower.position == 1  # the last state, kept
    lag = follower.lag_seconds()
    assert wait_until(lambda: follower.lag_seconds() > lag + 0.5, 10)
    assert recorder.keys == ["before"]

    restore()
    assert wait_until(lambda: follower.connected and follower.position == 3, 20)
    assert recorder.keys == ["before", MARKER, "during"]
    assert wait_until(lambda: follower.lag_seconds() < 2.0, 10)

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("cannot be read" in m for m in warnings) == 1
    assert sum("readable again" in m for m in warnings) == 1
    logged = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert not any(MARKER in m for m in logged)


def test_lag_and_connection_before_the_first_read(engine: Engine) -> None:
    ticks = iter([100.0, 103.5, 104.0])
    follower = Follower(engine, Recorder(), lambda: 0, position=0, clock=lambda: next(ticks))
    assert follower.connected
    assert follower.lag_seconds() == 3.5  # not yet sure to be current: counted from creation
    assert follower.lag_seconds() == 4.0


def test_stop_ends_the_threads(engine: Engine) -> None:
    follower = Follower(engine, Recorder(), lambda: 0, position=0)
    follower.start()
    follower.stop()
    assert follower._thread is not None
    assert not follower._thread.is_alive()
    listener = follower._listener
    if listener is not None:
        assert listener._thread is not None
        assert not listener._thread.is_alive()


# -- the consistent read --------------------------------------------------------------------

_probe = Table("feed_probe", MetaData(), Column("n", Integer, primary_key=True))


@pytest.fixture
def probe(engine: Engine) -> Iterator[Engine]:
    """A state table a gateway would load, beside the outbox."""
    with engine.begin() as conn:
        _probe.create(conn)
    yield engine
    with engine.begin() as conn:
        _probe.drop(conn)


def _write_state_and_publish(engine: Engine, n: int) -> None:
    with for_writing(engine).begin() as conn:
        conn.execute(insert(_probe).values(n=n))
        outbox.publish(conn, [change(str(n))], NOW)


def _rows(conn: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(_probe)).scalar_one())


def test_state_and_position_agree_when_a_writer_commits_between_them(probe: Engine) -> None:
    with consistent_read(probe) as conn:
        state = _rows(conn)  # the snapshot starts here
        _write_state_and_publish(probe, 1)  # commits between the two reads
        position = outbox.position(conn)
        assert _rows(conn) == state
    assert (state, position) == (0, 0)
    with consistent_read(probe) as conn:
        assert (_rows(conn), outbox.position(conn)) == (1, 1)


def test_without_repeatable_read_postgresql_would_disagree(probe: Engine) -> None:
    # The control: READ COMMITTED (the default) reads the position after the writer's
    # commit, a state before it. A follower started there would never apply change 1.
    postgres_only(probe)
    with probe.connect() as conn:
        state = _rows(conn)
        _write_state_and_publish(probe, 1)
        position = outbox.position(conn)
    assert (state, position) == (0, 1)


def test_the_consistent_read_is_read_only_work(engine: Engine) -> None:
    # It begins a transaction and ends it: nothing stays open after the block.
    with consistent_read(engine) as conn:
        assert outbox.position(conn) == 0
        assert conn.in_transaction()
    assert not conn.in_transaction()
    assert ORG  # the kit's org is a full id
