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
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
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
        self._pending: deque[tuple[J, Future[R]]] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, job: J) -> Future[R]:
        future: Future[R] = Future()
        with self._wake:
            if self._closed:
                raise BatcherClosed(f"{self.name} is closed")
            self._pending.append((job, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._flush, name=self.name, daemon=True)
                self._thread.start()
            elif len(self._pending) in (1, self.max_batch):
                self._wake.notify()  # the flusher waits for a first job, or for a full batch
        return future

    def call(self, job: J) -> R:
        """The job's result once its batch committed; its exception raised here."""
        return self.submit(job).result()

    async def call_async(self, job: J) -> R:
        return await asyncio.wrap_future(self.submit(job))

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

    def _next_batch(self) -> list[tuple[J, Future[R]]] | None:
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

    def _answer(self, batch: list[tuple[J, Future[R]]]) -> None:
        try:
            results = self._run([job for job, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} jobs")
        except Exception as exc:  # every caller of the batch gets it
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
