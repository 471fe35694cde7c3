"""Following the change feed: a thread that applies the outbox's changes in order.

A gateway loads its state and the outbox position that state reflects in one
consistent read (`consistent_read`), then starts a `Follower` at that position. The
follower wakes on a hint (NOTIFY on PostgreSQL, a local commit in this process) or
every `poll_seconds` in case a hint was missed, reads what lies above its position and
hands it to `apply`, batch by batch, in sequence order. On an SQLite file a poll first
asks whether anything was committed since the poll before (`ztsim.db.data_version`),
and reads only then: an idle follower's poll was about 1 ms of CPU, ten times a second.
When its position has fallen below what the outbox keeps (pruned), it calls `resync`,
which reloads the state and returns the position that state reflects.

While the database cannot be read the follower keeps trying; the gateway keeps serving
its last state, and `lag_seconds` says for how long it has not been sure to be current.

A gateway that meets something it does not know yet (a DNS query from an address whose
session was committed a moment ago) can ask for a read now (`read_now`): the thread, never
the caller, reads; every request made before a read starts shares that read, and reads
made only because they were asked for start at most one per `min_read_interval`, so a
flood of requests costs the database a bounded rate of (cheap, usually empty) reads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.db.data_version import DataVersion
from ztsim.feed import outbox
from ztsim.feed.change import Change, Topic
from ztsim.feed.listen import Listener

log = logging.getLogger("ztsim.feed")

# Polls when no hint came: PostgreSQL sends NOTIFY, so its poll is only a safety net; a
# second process on one SQLite file has no hint and relies on the poll.
POLL_SECONDS = {"postgresql": 1.0, "sqlite": 0.1}
MAX_PAUSE_SECONDS = 2.0  # between tries while the database is unreachable
# Reads made only because `read_now` asked start at most this often after the previous
# read: a flood of requests is at most 100 reads a second (each one range read on the
# outbox's primary key, empty when nothing is new), and a request's read starts at most
# this long after the one before it.
MIN_READ_INTERVAL = 0.01


@contextmanager
def consistent_read(engine: Engine) -> Iterator[Connection]:
    """One read transaction in which everything read, the outbox position included, is
    one snapshot: REPEATABLE READ on PostgreSQL; on SQLite (WAL) any read transaction."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


class Follower:
    """Applies the feed's changes above `position` in order, on a thread of its own.

    `apply` gets each batch (at most `batch` changes) and must be idempotent: a batch
    may come again after a failure. An exception from it is logged and the batch retried.

    With `topics`, `apply` gets only the changes of those topics (a batch that has none
    is not handed over), and the position still moves past the others: every row up to
    the last one a read saw was in that one statement's snapshot, and numbers become
    visible in commit order (`ztsim.feed.outbox`), so nothing at or below it can come
    later. `advanced` is told every position the follower reaches (after `apply`, after
    rows it skipped, after a resync): what "applied up to" means to one that skips.
    """

    def __init__(
        self,
        engine: Engine,
        apply: Callable[[Sequence[Change]], None],
        resync: Callable[[], int],
        *,
        position: int,
        name: str = "feed",
        poll_seconds: float | None = None,
        batch: int = 1000,
        listen: bool = True,
        clock: Callable[[], float] = time.monotonic,
        min_read_interval: float = MIN_READ_INTERVAL,
        topics: Collection[Topic] | None = None,
        advanced: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.topics = None if topics is None else frozenset(Topic(t) for t in topics)
        self._advanced = advanced
        self.name = name
        self._apply = apply
        self._resync = resync
        self._position = position
        self._batch = batch
        self._clock = clock
        backend = engine.dialect.name
        self.poll_seconds = poll_seconds if poll_seconds is not None else POLL_SECONDS[backend]
        self.min_read_interval = min_read_interval
        self._wake = threading.Event()
        self._hinted = False  # a wake-up that must not wait for `min_read_interval`
        self._asked: Future[bool] | None = None  # what `read_now` handed out, not yet read
        self._asked_lock = threading.Lock()
        self._read_at = -min_read_interval  # when the last read started (time.monotonic)
        # Reads the thread started: the load it puts on the database (tests count them).
        self.reads = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._current_at = clock()  # the last time the follower had read up to the head
        self._lost = False
        self._remove_local: Callable[[], None] | None = None
        self._listener = Listener(engine, self.wake) if listen and backend == "postgresql" else None
        # Asked before a poll's read: nothing committed since the poll before, no read.
        # `polls_left_out` counts the reads so saved (tests read it).
        self._data_version = DataVersion(engine)
        self.polls_left_out = 0

    @property
    def position(self) -> int:
        """The sequence number of the last change applied."""
        return self._position

    def lag_seconds(self) -> float:
        """How long since the follower last knew it had applied every change (0: current,
        up to one poll interval)."""
        return max(0.0, self._clock() - self._current_at)

    @property
    def connected(self) -> bool:
        return not self._lost

    def start(self) -> None:
        outbox.install(self.engine)
        self._remove_local = outbox.on_local_publish(self.wake)
        if self._listener is not None:
            self._listener.start()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-follower", daemon=True)
        self._wake.set()  # catch up at once, not after the first poll interval
        self._thread.start()

    def wake(self) -> None:
        self._hinted = True
        self._wake.set()

    def read_now(self) -> Future[bool]:
        """Ask the thread for a read of the feed that starts after this call. The future
        is done once that read has applied everything up to the head it saw (True), or
        when it failed or the follower stopped (False); it never raises. Calls made before
        the read starts share one future. A follower not started completes nothing."""
        with self._asked_lock:
            future = self._asked
            if future is None:
                future = self._asked = Future()
                fresh = True
            else:
                fresh = False
        if fresh:
            self._wake.set()
        return future

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._hinted = True
        self._wake.set()
        if self._remove_local is not None:
            self._remove_local()
        if self._listener is not None:
            self._listener.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def catch_up(self) -> int:
        """Apply everything above the position now, on the caller's thread (used before
        the thread starts, and by tests). Returns how many changes were applied."""
        applied = 0
        while True:
            more, count = self._step()
            applied += count
            if not more:
                return applied

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        waiting: list[Future[bool]] = []  # asked before a read that has not reached the head
        try:
            self._loop(waiting)
        finally:
            self._data_version.close()
            _settle(waiting, False)
            _settle(self._take_asked(), False)

    def _take_asked(self) -> list[Future[bool]]:
        with self._asked_lock:
            future, self._asked = self._asked, None
        return [] if future is None else [future]

    def _loop(self, waiting: list[Future[bool]]) -> None:
        pause = 0.0
        while not self._stopping.is_set():
            if pause:
                self._stopping.wait(pause)
            else:
                self._wake.wait(self.poll_seconds)
            self._wake.clear()
            hinted, self._hinted = self._hinted, False
            if self._stopping.is_set():
                return
            if not hinted and self._asked is not None:
                # Woken by a request only: keep to the request rate. Requests made while
                # this waits ride on the read that follows.
                gap = self._read_at + self.min_read_interval - time.monotonic()
                if gap > 0 and self._stopping.wait(gap):
                    return
            elif not hinted and not pause and self._idle_poll():
                continue  # (after a failed read or apply, `pause`: tried again regardless)
            # Taken before the read starts: each of these was asked before it, so the read
            # sees whatever was committed before the request.
            waiting += self._take_asked()
            self._read_at = time.monotonic()
            self.reads += 1
            try:
                more, _count = self._step()
            except (SQLAlchemyError, OSError) as exc:
                _settle(waiting, False)  # the caller's wait need not last until the bound
                pause = min(max(pause * 2, 0.1), MAX_PAUSE_SECONDS)
                if not self._lost:
                    # The class only: a driver's message may quote values. Logged before
                    # `connected` changes, so whoever sees the change finds the line.
                    log.warning(
                        "%s: the change feed cannot be read (%s); serving the last state "
                        "until it returns",
                        self.name,
                        type(exc).__name__,
                    )
                    self._lost = True
                continue
            except Exception:  # a bug in apply or resync: logged, retried after a pause
                log.exception("%s: applying the change feed failed", self.name)
                _settle(waiting, False)
                pause = MAX_PAUSE_SECONDS
                continue
            pause = 0.0
            if self._lost:
                log.warning("%s: the change feed is readable again; caught up", self.name)
                self._lost = False
            if more:
                self._hinted = True  # the rest of a backlog: no request-rate wait
                self._wake.set()
            else:
                _settle(waiting, True)

    def _idle_poll(self) -> bool:
        """A poll (no hint, no request) that needs no read: nothing was committed to the
        database since the previous poll, whose read (or the one it left out) had reached
        the head. Only on a plain SQLite file (see `ztsim.db.data_version`)."""
        now = self._clock()
        if self._data_version.changed():
            return False
        self.polls_left_out += 1
        self._current_at = now
        return True

    def _step(self) -> tuple[bool, int]:
        """One read and apply. Returns (more may be waiting, changes applied)."""
        started = self._clock()
        with self.engine.connect() as conn:
            # Rows first, the prune mark second: on PostgreSQL (READ COMMITTED) each
            # statement has its own snapshot, and the other order would miss a prune
            # committed between the two and skip the pruned changes without a resync.
            read = outbox.scan(conn, self._position, self._batch, self.topics)
            # Pruning removes a prefix: when the row right after the position was read
            # (whatever its topic), nothing this read needs was pruned (the usual case:
            # one statement). A gap (a rolled-back number, or a prune) or nothing at
            # all: ask.
            behind = read.first != self._position + 1 and (
                self._position < outbox.pruned_through(conn)
            )
        if behind:
            log.warning(
                "%s: behind the outbox's retention (at %d); loading a full snapshot",
                self.name,
                self._position,
            )
            self._move(self._resync())
            self._current_at = started
            return True, 0
        changes = read.changes
        if changes:
            self._apply(changes)
        if read.last is not None:
            self._move(read.last)
        if read.rows < self._batch:
            self._current_at = started
            return False, len(changes)
        return True, len(changes)

    def _move(self, position: int) -> None:
        self._position = position
        if self._advanced is not None:
            self._advanced(position)


def _settle(futures: list[Future[bool]], done: bool) -> None:
    for future in futures:
        if not future.done():
            future.set_result(done)
    futures.clear()


def stop_all(followers: Sequence[Follower]) -> None:
    for follower in followers:
        with contextlib.suppress(Exception):
            follower.stop()
