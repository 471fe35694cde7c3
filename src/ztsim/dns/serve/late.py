"""A source the gateway does not know yet: one more look at the change feed before REFUSED.

The RADIUS writer commits a session (with its change on the outbox) before it sends the
Accounting-Response, but a DNS process applies the change only when its identity follower
next reads the feed: NOTIFY or a local commit wakes it within milliseconds, and a device
that queries right after the ack can still arrive first. So a query from a source with no
entry asks the follower for a read that starts after the query arrived (`read_now`), waits
for it, and looks the source up again: the session's commit came before the ack and the
ack before the query, so that read sees the session, whichever host wrote it. Only a source
still unknown then is REFUSED.

What it may cost:
- The read is the follower thread's, never the serving thread's; every query waiting
  shares the next read, and reads made for requests start at most one per
  `Follower.min_read_interval` (10 ms): a flood of unknown sources costs the database at
  most 100 cheap reads a second per process.
- At most `max_waiting` queries (1,024) wait at once, each at most `wait_seconds` (0.2 s,
  well under a stub resolver's retry); past that bound a query is REFUSED at once, so a
  flood costs a bounded amount of memory and never the answers of known clients (their
  path does not change).
- While the feed cannot be read (the database is down) nobody waits: no read would come.

A source a network default covers is answered at once with the default: such sources are
by design the ones without a session (an office network), and holding each of their
queries for a feed read would put every one of them on the slow path and keep the database
at the request rate for as long as they ask. The price: a new session whose address lies
inside its own org's DNS network gets the network's policy, not its identity's, for the
few milliseconds until its change is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future

MAX_WAITING = 1024
WAIT_SECONDS = 0.2


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class LateSources:
    """The waiting room for queries from unknown sources. `enter` (any thread) takes a
    place or says no; a coroutine on the gateway's loop then `wait`s and `leave`s."""

    def __init__(
        self,
        read_now: Callable[[], Future[bool]],
        readable: Callable[[], bool] = lambda: True,
        *,
        max_waiting: int = MAX_WAITING,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self._read_now = read_now
        self._readable = readable
        self.max_waiting = max_waiting
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()  # `enter` runs on the UDP thread, `leave` on the loop
        self._waiting = 0
        # The loop future shared by every query waiting for one read (one wake-up of the
        # loop per read, not one per query). Touched on the loop's thread only.
        self._shared: tuple[Future[bool], asyncio.Future[None]] | None = None
        self.waited = 0  # queries that waited for a read
        self.turned_away = 0  # queries answered at once: every place was taken

    @property
    def waiting(self) -> int:
        return self._waiting

    def enter(self) -> bool:
        """Take a place to wait; False (answer now) when all are taken or no read is to come."""
        if not self._readable():
            return False
        with self._lock:
            if self._waiting >= self.max_waiting:
                self.turned_away += 1
                return False
            self._waiting += 1
            self.waited += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._waiting -= 1

    async def wait(self) -> None:
        """Until a feed read that started after this call is applied, or `wait_seconds`."""
        waiter = self._waiter(self._read_now(), asyncio.get_running_loop())
        # asyncio.wait, not wait_for: a timeout must not cancel the future others share.
        await asyncio.wait((waiter,), timeout=self.wait_seconds)

    def _waiter(self, read: Future[bool], loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        shared = self._shared
        if shared is not None and shared[0] is read and shared[1].get_loop() is loop:
            return shared[1]
        waiter: asyncio.Future[None] = loop.create_future()

        def done(_read: Future[bool]) -> None:
            # On the follower's thread (or here, if the read is done already). A loop that
            # has closed meanwhile has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, waiter)

        read.add_done_callback(done)
        self._shared = (read, waiter)
        return waiter
