"""A follower that wants some topics only, on both backends: the rows it skips still
move its position (and `advanced` hears of it), a wanted change among many others is
applied once and in order, a prune behind skipped rows still resyncs, and on PostgreSQL
concurrent writers of mixed topics never make it miss a wanted change."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from ztsim.db.engine import for_writing
from ztsim.feed import outbox
from ztsim.feed.change import NewChange, Topic
from ztsim.feed.follower import Follower, consistent_read, stop_all

from feed.feedkit import NOW, ORG, Recorder, postgres_only, wait_until


def _publish(engine: Engine, *items: tuple[Topic, str]) -> list[int]:
    """One transaction; returns the numbers its changes took."""
    with engine.connect() as conn:
        before = outbox.position(conn)
    with for_writing(engine).begin() as conn:
        outbox.publish(conn, [NewChange(ORG, t, k) for t, k in items], NOW)
    with engine.connect() as conn:
        return [c.seq for c in outbox.read_after(conn, before, 100_000)]


def _sessions(n: int, prefix: str = "s") -> list[tuple[Topic, str]]:
    return [(Topic.SESSION, f"{prefix}{i}") for i in range(n)]


def _head(engine: Engine) -> int:
    with consistent_read(engine) as conn:
        return outbox.position(conn)


@pytest.fixture
def running() -> Iterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    stop_all(followers)


def test_rows_it_skips_move_the_position_and_are_announced(engine: Engine) -> None:
    seqs = _publish(engine, *_sessions(25))
    recorder = Recorder()
    positions: list[int] = []
    follower = Follower(
        engine,
        recorder,
        lambda: pytest.fail("no resync"),
        position=0,
        batch=10,
        topics={Topic.SIM},
        advanced=positions.append,
    )
    assert follower.catch_up() == 0
    assert recorder.batches == []  # a batch with nothing wanted is not handed over
    assert follower.position == seqs[-1]
    assert positions == [seqs[9], seqs[19], seqs[24]]
    assert follower.catch_up() == 0
    assert positions[-1] == seqs[-1]


def test_one_wanted_change_among_many_is_applied_once_in_order(engine: Engine) -> None:
    _publish(engine, *_sessions(1500, "a"))
    (wanted,) = _publish(engine, (Topic.SIM, "8944"))
    _publish(engine, *_sessions(1500, "b"))
    later = _publish(engine, (Topic.NETWORK, ORG), (Topic.SESSION, "c"), (Topic.IDENTITY, "i"))
    recorder = Recorder()
    positions: list[int] = []
    follower = Follower(
        engine,
        recorder,
        lambda: pytest.fail("no resync"),
        position=0,
        topics=[Topic.SIM, Topic.IDENTITY, Topic.NETWORK],
        advanced=positions.append,
    )
    assert follower.catch_up() == 3
    assert recorder.seqs == [wanted, later[0], later[2]]
    assert recorder.keys == ["8944", ORG, "i"]
    assert [c.topic for b in recorder.batches for c in b] == [
        Topic.SIM,
        Topic.NETWORK,
        Topic.IDENTITY,
    ]
    assert follower.position == later[-1] == _head(engine)
    assert positions == sorted(positions)


def test_every_topic_by_default(engine: Engine) -> None:
    seqs = _publish(engine, (Topic.SESSION, "s"), (Topic.DNS, ORG), (Topic.SIM, "8944"))
    recorder = Recorder()
    Follower(engine, recorder, lambda: 0, position=0).catch_up()
    assert recorder.seqs == seqs


def test_behind_the_retention_with_only_skipped_rows_left_it_resyncs(engine: Engine) -> None:
    _publish(engine, (Topic.SIM, "old"))
    with for_writing(engine).begin() as conn:
        outbox.prune(conn, NOW.replace(year=2026))
    _publish(engine, *_sessions(3))
    resyncs: list[int] = []

    def resync() -> int:
        resyncs.append(1)
        return _head(engine)

    positions: list[int] = []
    follower = Follower(
        engine, Recorder(), resync, position=0, topics={Topic.SIM}, advanced=positions.append
    )
    follower.catch_up()
    assert resyncs == [1]
    assert follower.position == positions[-1] == _head(engine)


def test_a_running_follower_applies_a_wanted_change_published_after_noise(
    engine: Engine, running: list[Follower]
) -> None:
    recorder = Recorder()
    follower = Follower(
        engine, recorder, lambda: 0, position=_head(engine), topics={Topic.IDENTITY}
    )
    running.append(follower)
    follower.start()
    noise = _publish(engine, *_sessions(300))
    assert wait_until(lambda: follower.position >= noise[-1], timeout=10)
    assert recorder.batches == []
    (wanted,) = _publish(engine, (Topic.IDENTITY, "alice"))
    assert wait_until(lambda: recorder.seqs == [wanted], timeout=10)
    assert follower.read_now().result(timeout=10)


def test_concurrent_writers_of_mixed_topics_it_misses_no_wanted_change(engine: Engine) -> None:
    # As the outbox's test of the advisory lock, with most rows of a topic the follower
    # skips: its position moves past them, never past a wanted row not yet visible.
    postgres_only(engine)
    recorder = Recorder()
    follower = Follower(
        engine,
        recorder,
        lambda: 0,
        position=0,
        poll_seconds=0.001,
        listen=False,
        topics={Topic.SIM},
    )
    errors: list[BaseException] = []

    def write(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(25):
                topic = Topic.SIM if rng.random() < 0.3 else Topic.SESSION
                with engine.begin() as conn:
                    time.sleep(rng.uniform(0, 0.003))
                    outbox.publish(conn, [NewChange(ORG, topic, f"w{n}-{i}")], NOW)
                    time.sleep(rng.uniform(0, 0.005))
        except BaseException as exc:  # reported by the test, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    follower.start()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        with engine.connect() as conn:
            everything = outbox.read_after(conn, 0, 100_000)
        assert len(everything) == 200
        assert wait_until(lambda: follower.position >= everything[-1].seq, timeout=30)
    finally:
        follower.stop()
    wanted = [c.seq for c in everything if c.topic is Topic.SIM]
    assert wanted  # the mix has some
    assert recorder.seqs == wanted  # in order, each once, none missed
