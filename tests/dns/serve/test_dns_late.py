"""The waiting room for unknown sources on its own: places are bounded, nobody waits when no
read is to come, a wait ends when the read it asked for completes (or at the bound), and
every query waiting for one read shares it (a timeout cancels nobody else's)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from ztsim.dns.serve.late import MAX_WAITING, WAIT_SECONDS, LateSources


class Read(Future[bool]):
    """A read's future that counts who asked to be told when it is done."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners = 0

    def add_done_callback(self, fn: Callable[[Future[bool]], object]) -> None:
        self.listeners += 1
        super().add_done_callback(fn)


class Reads:
    """`read_now` as the follower offers it: one future per read not yet started."""

    def __init__(self) -> None:
        self.asked = 0
        self.current = Read()

    def __call__(self) -> Future[bool]:
        self.asked += 1
        return self.current

    def complete(self) -> None:
        """The read started and finished: the next request gets a new future."""
        done, self.current = self.current, Read()
        done.set_result(True)


def test_the_bounds_chosen() -> None:
    assert MAX_WAITING == 1024
    assert 0.1 <= WAIT_SECONDS <= 0.2


def test_places_are_bounded_and_given_back() -> None:
    late = LateSources(Reads(), max_waiting=2)
    assert late.enter()
    assert late.enter()
    assert not late.enter()  # full: answered at once
    assert (late.waiting, late.waited, late.turned_away) == (2, 2, 1)
    late.leave()
    assert late.enter()
    assert late.waiting == 2


def test_nobody_waits_when_the_feed_cannot_be_read() -> None:
    reads = Reads()
    late = LateSources(reads, lambda: False)
    assert not late.enter()
    assert (late.waiting, late.waited, late.turned_away, reads.asked) == (0, 0, 0, 0)


def test_a_wait_ends_when_its_read_completes_not_at_the_bound() -> None:
    reads = Reads()
    late = LateSources(reads, wait_seconds=10)

    completed: list[float] = []

    def complete() -> None:  # on another thread, as the follower's
        completed.append(time.monotonic())
        reads.complete()

    async def main() -> float:
        started = time.monotonic()
        threading.Timer(0.05, complete).start()
        await late.wait()
        ended = time.monotonic()
        assert completed
        assert completed[0] <= ended  # not before its read
        return ended - started

    assert asyncio.run(main()) < 5  # and not at the bound (10 s)
    assert reads.asked == 1


def test_a_wait_ends_at_the_bound_when_no_read_completes() -> None:
    reads = Reads()
    late = LateSources(reads, wait_seconds=0.05)

    async def main() -> float:
        started = time.monotonic()
        await late.wait()
        return time.monotonic() - started

    took = asyncio.run(main())
    assert 0.05 <= took < 1
    assert not reads.current.cancelled()  # the shared read is nobody's to cancel


def test_queries_waiting_for_one_read_share_it() -> None:
    reads = Reads()
    late = LateSources(reads, wait_seconds=10)

    read = reads.current

    async def main() -> None:
        waits = [asyncio.create_task(late.wait()) for _ in range(200)]
        await asyncio.sleep(0.01)
        assert not any(w.done() for w in waits)
        threading.Thread(target=reads.complete).start()
        await asyncio.wait_for(asyncio.gather(*waits), 5)

    asyncio.run(main())
    assert reads.asked == 200
    assert read.listeners == 1  # the follower wakes the loop once for the read, not 200 times


def test_a_query_after_the_read_started_waits_for_the_next() -> None:
    reads = Reads()
    late = LateSources(reads, wait_seconds=10)

    async def main() -> None:
        first = asyncio.create_task(late.wait())
        await asyncio.sleep(0)
        reads.complete()
        await asyncio.wait_for(first, 5)
        second = asyncio.create_task(late.wait())
        await asyncio.sleep(0.05)
        assert not second.done()  # the completed read was asked before it: not enough
        reads.complete()
        await asyncio.wait_for(second, 5)

    asyncio.run(main())
