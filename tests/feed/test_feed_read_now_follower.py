"""`Follower.read_now` on both backends: a read asked for, done by the follower's thread,
that sees a change no wake-up announced; requests coalesced and rate-limited; a failed
read or a stop completes the request at once (False) instead of leaving it to a timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from sqlalchemy import Engine

from ztsim.feed.change import Change
from ztsim.feed.follower import MIN_READ_INTERVAL, Follower, stop_all

from feed.feedkit import Recorder, publish, wait_until

DONE_BOUND = 2.0  # seconds, on a loaded machine; a quiet one takes a few milliseconds


@pytest.fixture
def running() -> Iterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    stop_all(followers)


def _silent(
    engine: Engine,
    apply: Callable[[Sequence[Change]], None],
    min_read_interval: float = MIN_READ_INTERVAL,
) -> Follower:
    """A poll that never comes during a test, and no NOTIFY: only `read_now` (or the local
    wake of `engine`, which the publishing `other_engine` lacks) can bring a change."""
    return Follower(
        engine,
        apply,
        lambda: 0,
        position=0,
        poll_seconds=30.0,
        listen=False,
        min_read_interval=min_read_interval,
    )


def _started(running: list[Follower], follower: Follower) -> Follower:
    running.append(follower)
    follower.start()
    # The start's own first read, so that what follows is the requests' doing only.
    assert wait_until(lambda: follower.reads >= 1 and follower._asked is None, DONE_BOUND)
    assert follower.read_now().result(DONE_BOUND) is True
    return follower


def test_a_read_asked_for_sees_a_change_nothing_announced(
    engine: Engine, other_engine: Engine, running: list[Follower]
) -> None:
    recorder = Recorder()
    threads: list[str] = []

    def apply(batch: Sequence[Change]) -> None:
        threads.append(threading.current_thread().name)
        recorder(batch)

    follower = _started(running, _silent(engine, apply))
    publish(other_engine, "quiet")
    time.sleep(0.3)
    assert recorder.keys == []  # no wake-up reached the follower: the test can tell
    reads = follower.reads
    asked = time.monotonic()
    assert follower.read_now().result(DONE_BOUND) is True
    assert time.monotonic() - asked < DONE_BOUND
    assert recorder.keys == ["quiet"]
    assert follower.position == 1
    assert follower.reads == reads + 1
    assert threads == ["feed-follower"]  # the follower's thread read, not the caller's


def test_requests_before_a_read_share_it(engine: Engine) -> None:
    follower = _silent(engine, Recorder())
    first = follower.read_now()
    assert follower.read_now() is first  # no read started in between: the same one
    assert not first.done()  # a follower not started reads nothing


def test_a_flood_of_requests_reads_at_a_bounded_rate(
    engine: Engine, other_engine: Engine, running: list[Follower]
) -> None:
    interval = 0.05
    recorder = Recorder()
    follower = _started(running, _silent(engine, recorder, interval))
    reads = follower.reads
    futures = []
    began = time.monotonic()
    stop = began + 1.0
    published = 0
    while time.monotonic() < stop:  # bounded: one second of requests, as fast as they come
        futures.append(follower.read_now())
        if len(futures) % 500 == 0:
            publish(other_engine, f"k{published}")
            published += 1
    assert all(f.result(DONE_BOUND) for f in futures)
    elapsed = time.monotonic() - began  # a second, or more when publishing was slow
    made = follower.reads - reads
    # The last change may have been published while the read answering the requests before
    # it was already under way; one request made after it is what promises that it is seen.
    assert follower.read_now().result(DONE_BOUND) is True
    assert 1 <= made <= elapsed / interval + 2, (made, elapsed)
    assert len(futures) > 2 * made, (len(futures), made)  # several requests per read
    assert recorder.keys == [f"k{i}" for i in range(published)]
    assert MIN_READ_INTERVAL <= 0.02  # the default keeps a request's wait short


def test_a_failed_read_completes_the_request_at_once(
    engine: Engine, other_engine: Engine, running: list[Follower]
) -> None:
    recorder = Recorder()
    follower = _started(running, _silent(engine, recorder))
    recorder.failures = 1
    publish(other_engine, "a")
    asked = time.monotonic()
    assert follower.read_now().result(DONE_BOUND) is False
    assert time.monotonic() - asked < DONE_BOUND
    assert recorder.keys == []


def test_stop_completes_a_waiting_request(engine: Engine, running: list[Follower]) -> None:
    # A request rate of one read a minute: the request waits its turn, then the stop.
    follower = _silent(engine, Recorder(), min_read_interval=60)
    running.append(follower)
    follower.start()
    assert wait_until(lambda: follower.reads >= 1, DONE_BOUND)
    pending = follower.read_now()
    time.sleep(0.2)
    assert not pending.done()
    assert follower.reads == 1  # the rate held it back
    stopped = time.monotonic()
    follower.stop()
    assert pending.result(DONE_BOUND) is False
    assert time.monotonic() - stopped < DONE_BOUND
