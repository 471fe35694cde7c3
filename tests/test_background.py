"""The lower-priority worker thread that RADIUS records are written on."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import weakref

import pytest

from ztsim.background import BackgroundThread, lower_this_thread


def test_calls_run_in_order_on_the_thread_and_errors_reach_the_caller() -> None:
    async def scenario() -> None:
        worker = BackgroundThread("test-worker", nice=5)
        seen: list[tuple[int, str]] = []

        def record(n: int) -> int:
            seen.append((n, threading.current_thread().name))
            return n * 2

        results = await asyncio.gather(*(worker.run(record, n) for n in range(5)))
        assert results == [0, 2, 4, 6, 8]
        assert seen == [(n, "test-worker") for n in range(5)]

        def fail() -> None:
            raise ValueError("no")

        with pytest.raises(ValueError, match="no"):
            await worker.run(fail)
        # The thread goes on serving after a failed call.
        assert await worker.run(record, 7) == 14
        worker.close()

    asyncio.run(scenario())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_only_the_worker_thread_is_lowered() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)

    async def scenario() -> int:
        worker = BackgroundThread("test-nice", nice=7)
        try:
            return await worker.run(
                lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            )
        finally:
            worker.close()

    assert asyncio.run(scenario()) == min(before + 7, 19)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


def test_nothing_to_lower_at_zero() -> None:
    assert lower_this_thread(0) is False


class _Batch:
    """Stands for a writer's batch: only its lifetime matters here."""


def test_a_finished_call_keeps_nothing_alive_while_the_thread_waits() -> None:
    # The AAA's writer hands each batch of records to this thread: a batch kept until the
    # next call kept tens of thousands of sessions for the collector to walk.
    async def scenario() -> bool:
        worker = BackgroundThread("test-worker", nice=0)
        batch = _Batch()
        ref = weakref.ref(batch)
        assert await worker.run(lambda b: isinstance(b, _Batch), batch)
        del batch
        deadline = time.monotonic() + 5
        while ref() is not None and time.monotonic() < deadline:  # bounded
            await asyncio.sleep(0.01)
        released = ref() is None  # before `close`, which ends the thread and its frame
        worker.close()
        return released

    assert asyncio.run(scenario())
