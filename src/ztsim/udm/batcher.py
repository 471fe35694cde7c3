"""Group commit: concurrent callers' jobs run together, one batch at a time, on one thread.

A commit on PostgreSQL waits for the WAL to reach the disk (about a millisecond here);
one transaction per request caps a UDM at about a thousand vectors a second whatever
the CPU. Here callers hand their job to a `GroupCommit` and wait for its result; a
flusher thread takes whatever is waiting (after at most `max_wait` seconds for more, up
to `max_batch`), runs the batch with one function call (one transaction for all), and
only then answers each caller: nothing is acknowledged before its commit. While a batch
runs, the next one gathers, so the batch grows with the load.

The flusher starts with the first job and ends after `idle_exit` seconds without any,
so an owner that is never closed (an app built per test) leaves no thread behind for
long. Callers wait in threads (`call`) or on an event loop (`call_async`).

`LoopGroupCommit` is the same on one event loop, for a `run` that is a coroutine (its
database I/O awaited on the loop): no thread, so no hand-over of the GIL between the
loop and a flusher at every round trip to the database, which in a busy server cost
three times the batch's own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from ztsim.errors import ZtsimError

J = TypeVar("J")
R = TypeVar("R")

# A batch runs once it has this many jobs, or when the oldest has waited MAX_WAIT s.
MAX_BATCH = 256
MAX_WAIT = 0.0002
IDLE_EXIT = 2.0


class BatcherClosed(ZtsimError):
    """A job was handed to a batcher that was closed."""


class GroupCommit(Generic[J, R]):
    """Runs `run(jobs)` for batches of jobs; `run` returns one result or exception per
    job, in order (an exception it raises fails the whole batch)."""

    def __init__(
        self,
        run: Callable[[Sequence[J]], Sequence[R | Exception]],
        *,
        max_batch: int = MAX_BATCH,
        max_wait: float = MAX_WAIT,
        idle_exit: float = IDLE_EXIT,
        name: str = "group-commit",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.idle_exit = idle_exit
        self.name = name
        self._pending: deque[tuple[J, Future[R] | _LoopWaiter[R]]] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, job: J) -> Future[R]:
        future: Future[R] = Future()
        self._enqueue(job, future)
        return future

    def call(self, job: J) -> R:
        """The job's result once its batch committed; its exception raised here."""
        return self.submit(job).result()

    async def call_async(self, job: J) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._enqueue(job, _LoopWaiter(loop, future))
        return await future

    def _enqueue(self, job: J, waiter: Future[R] | _LoopWaiter[R]) -> None:
        with self._wake:
            if self._closed:
                raise BatcherClosed(f"{self.name} is closed")
            self._pending.append((job, waiter))
            if self._thread is None:
                self._thread = threading.Thread(target=self._flush, name=self.name, daemon=True)
                self._thread.start()
            elif len(self._pending) in (1, self.max_batch):
                self._wake.notify()  # the flusher waits for a first job, or for a full batch

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new jobs, finish the waiting ones, and stop the flusher."""
        with self._wake:
            self._closed = True
            thread = self._thread
            self._wake.notify()
        if thread is not None:
            thread.join(timeout)

    def _flush(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._answer(batch)

    def _next_batch(self) -> list[tuple[J, Future[R] | _LoopWaiter[R]]] | None:
        """Waiting jobs, up to max_batch; None (and the thread ends) once idle or closed."""
        with self._wake:
            idle_until = time.monotonic() + self.idle_exit
            while not self._pending:
                left = idle_until - time.monotonic()
                if self._closed or left <= 0:
                    self._thread = None
                    return None
                self._wake.wait(left)
            # Gather a little longer unless the batch is full or the owner is closing.
            until = time.monotonic() + self.max_wait
            while len(self._pending) < self.max_batch and not self._closed:
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            count = min(len(self._pending), self.max_batch)
            return [self._pending.popleft() for _ in range(count)]

    def _answer(self, batch: list[tuple[J, Future[R] | _LoopWaiter[R]]]) -> None:
        outcomes: Sequence[R | Exception]
        try:
            outcomes = self._run([job for job, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{self.name}: {len(outcomes)} results for {len(batch)} jobs")
        except Exception as exc:  # every caller of the batch gets it
            outcomes = [exc] * len(batch)
        # Callers on an event loop are settled by one call into their loop per batch: a
        # wake-up of the loop per caller cost more than the job itself.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | Exception]]] = {}
        for (_, waiter), outcome in zip(batch, outcomes, strict=True):
            if isinstance(waiter, _LoopWaiter):
                by_loop.setdefault(waiter.loop, []).append((waiter.future, outcome))
            elif isinstance(outcome, Exception):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: no one waits there
                loop.call_soon_threadsafe(_settle, settled)


@dataclass(frozen=True, slots=True)
class _LoopWaiter(Generic[R]):
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[R]


def _settle(settled: list[tuple[asyncio.Future[R], R | Exception]]) -> None:
    """On the callers' loop: each future its outcome, unless its caller gave up or it
    was answered early (`LoopGroupCommit.answer_now`)."""
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class LoopGroupCommit(Generic[J, R]):
    """Runs `await run(jobs)` for batches of jobs on the running event loop: the jobs
    handed in while a batch runs (its database round trips awaited) form the next one.
    A drain task runs while jobs wait and ends when none do."""

    def __init__(
        self,
        run: Callable[[Sequence[J]], Awaitable[Sequence[R | Exception]]],
        *,
        max_batch: int = MAX_BATCH,
        name: str = "group-commit",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self.name = name
        self._pending: deque[tuple[J, asyncio.Future[R]]] = deque()
        self._running: list[tuple[J, asyncio.Future[R]]] = []
        self._drain_task: asyncio.Task[None] | None = None
        self._closed = False

    async def call(self, job: J) -> R:
        """The job's result once its batch committed; its exception raised here."""
        return await self.submit(job)

    def submit(self, job: J) -> asyncio.Future[R]:
        """`call` for a caller that is not a coroutine: the job's future, settled once its
        batch committed (called on the loop)."""
        if self._closed:
            raise BatcherClosed(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((job, future))
        if self._drain_task is None:
            self._drain_task = loop.create_task(self._drain(), name=self.name)
        return future

    def answer_now(self, index: int, outcome: R | Exception) -> None:
        """From inside `run`: the running batch's job at `index` gets `outcome` at once,
        before the rest of the batch is done (what `run` returns for it is then unused)."""
        _settle([(self._running[index][1], outcome)])

    async def aclose(self) -> None:
        """Refuse new jobs and let the waiting ones finish."""
        self._closed = True
        if self._drain_task is not None:
            await asyncio.shield(self._drain_task)

    async def _drain(self) -> None:
        batch: list[tuple[J, asyncio.Future[R]]] = []
        try:
            while self._pending:
                count = min(len(self._pending), self.max_batch)
                batch = self._running = [self._pending.popleft() for _ in range(count)]
                outcomes: Sequence[R | Exception]
                try:
                    outcomes = await self._run([job for job, _ in batch])
                    if len(outcomes) != len(batch):
                        raise RuntimeError(
                            f"{self.name}: {len(outcomes)} results for {len(batch)} jobs"
                        )
                except Exception as exc:  # every caller of the batch gets it
                    outcomes = [exc] * len(batch)
                _settle([(f, outcome) for (_, f), outcome in zip(batch, outcomes, strict=True)])
                batch = self._running = []
        finally:
            # Only when the drain itself was cancelled (its loop is ending): no caller may
            # wait for ever.
            self._drain_task = None
            for _, future in [*batch, *self._pending]:
                future.cancel()
            self._pending.clear()
