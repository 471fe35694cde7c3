"""PostgreSQL's wake-ups: the listener wakes its follower on a commit elsewhere, once when
it (re)connects, survives its connection being killed, and closes it on stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from ztsim.feed.listen import Listener

from feed.feedkit import postgres_only, publish, wait_until


class Wakes:
    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()

    def next(self, timeout: float) -> bool:
        """Whether a wake came within `timeout` (from now on)."""
        got = self.event.wait(timeout)
        self.event.clear()
        return got


def _backends(engine: Engine, app_name: str) -> list[int]:
    """The pids of the listener's connections (found by their application name)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = :name AND query LIKE 'LISTEN%'"
            ),
            {"name": app_name},
        )
        return [int(r.pid) for r in rows]


@pytest.fixture
def listening(
    engine: Engine, other_engine: Engine, app_name: str
) -> Iterator[tuple[Listener, Wakes]]:
    postgres_only(engine)
    wakes = Wakes()
    listener = Listener(other_engine, wakes)
    listener.start()
    assert wait_until(lambda: len(_backends(engine, app_name)) == 1, 10)
    assert wakes.next(5)  # the wake on connecting: a hint may have been missed before
    yield listener, wakes
    listener.stop()


def test_a_commit_elsewhere_wakes_it(engine: Engine, listening: tuple[Listener, Wakes]) -> None:
    _listener, wakes = listening
    publish(engine, "a")
    assert wakes.next(2.0)


def test_it_comes_back_after_its_connection_is_killed(
    engine: Engine,
    app_name: str,
    listening: tuple[Listener, Wakes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _listener, wakes = listening
    caplog.set_level(logging.DEBUG, logger="ztsim.feed.listen")
    (first,) = _backends(engine, app_name)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    # Back on a new connection, with the wake that covers what it missed meanwhile.
    assert wait_until(lambda: _backends(engine, app_name) not in ([], [first]), 15)
    assert wakes.next(5)
    publish(engine, "after")
    assert wakes.next(2.0)
    lost = [r.getMessage() for r in caplog.records if "LISTEN connection lost" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].endswith("(OperationalError); retrying")


def test_stop_ends_its_thread_and_closes_its_connection(
    engine: Engine, app_name: str, listening: tuple[Listener, Wakes]
) -> None:
    listener, _wakes = listening
    listener.stop()
    assert listener._thread is not None
    assert not listener._thread.is_alive()
    assert wait_until(lambda: _backends(engine, app_name) == [], 5)
