"""A worker thread at a lower scheduling priority, awaited from the event loop.

The RADIUS authentication hot path runs on a thread of its own; its records are
written by a background writer. On a busy machine the writer's database
work (mostly inside SQLite or the PostgreSQL driver, without the GIL) competes with
the hot path for the same cores. On Linux this thread asks the kernel for a higher nice
value for itself only (setpriority on its thread id): the kernel then runs the writer
in the gaps, and the answers go out first. Where that is not possible the thread runs
at normal priority: the difference is speed under load, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("ztsim.background")

T = TypeVar("T")

# Added to the nice value (nice(2) scale: 0 the default, 19 the lowest priority). At +10
# the thread still gets about a tenth of a core the hot path keeps busy, so records keep
# flowing under sustained load, and all of an idle one.
DEFAULT_NICE = 10

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def lower_this_thread(nice: int) -> bool:
    """Add `nice` to the calling thread's nice value (Linux: per thread, capped at 19);
    False if not possible."""
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None or nice <= 0:
        return False
    thread = threading.get_native_id()
    try:
        setpriority(
            os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + nice, 19)
        )
    except OSError as exc:
        log.debug("could not lower the background thread's priority: %s", exc)
        return False
    return True


class BackgroundThread:
    """One daemon thread running submitted calls in order; `await run(fn, *args)`."""

    def __init__(self, name: str, *, nice: int = DEFAULT_NICE) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._nice = nice
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((lambda: fn(*args), loop, future))
        return await future

    def close(self, timeout: float = 10.0) -> None:
        """Finish the calls already submitted, then end the thread."""
        self._jobs.put(None)
        self._thread.join(timeout=timeout)

    def _work(self) -> None:
        lower_this_thread(self._nice)
        while (job := self._jobs.get()) is not None:
            _run(*job)
            # Not kept while the thread waits for the next call: a call's arguments (the
            # AAA writer's batch, tens of thousands of sessions) would stay alive until
            # then, for the garbage collector to walk in every full collection.
            del job


def _run(
    call: Callable[[], Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
) -> None:
    try:
        result = call()
    except BaseException as exc:  # handed to the awaiting task, not lost here
        _settle(loop, future, exc, None)
    else:
        _settle(loop, future, None, result)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    error: BaseException | None,
    result: object,
) -> None:
    def settle() -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    # RuntimeError: the loop closed while the call ran; nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)
