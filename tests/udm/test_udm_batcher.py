"""Group commit: concurrent jobs share a run, each caller gets its own result after it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from ztsim.udm.batcher import BatcherClosed, GroupCommit, LoopGroupCommit


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, jobs: Sequence[int]) -> list[int | Exception]:
        time.sleep(self.delay)  # a commit's wait for the disk
        with self.lock:
            self.batches.append(list(jobs))
        return [ValueError(f"odd {j}") if j % 2 else j * 10 for j in jobs]


def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    run = Recorder(delay=0.005)
    batcher: GroupCommit[int, int] = GroupCommit(run, max_batch=16)

    def one(job: int) -> int | str:
        try:
            return batcher.call(job)
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(200)))
    batcher.close()
    assert results == [f"odd {j}" if j % 2 else j * 10 for j in range(200)]
    assert sorted(j for b in run.batches for j in b) == list(range(200))
    assert max(len(b) for b in run.batches) > 1  # they did share
    assert all(len(b) <= 16 for b in run.batches)


def test_a_failed_run_fails_every_job_of_its_batch() -> None:
    def broken(jobs: Sequence[int]) -> list[int | Exception]:
        raise ConnectionError("database down")

    batcher: GroupCommit[int, int] = GroupCommit(broken)
    with pytest.raises(ConnectionError):
        batcher.call(1)
    batcher.close()


def test_wrong_result_count_is_an_error_not_a_hang() -> None:
    batcher: GroupCommit[int, int] = GroupCommit(lambda jobs: [])
    with pytest.raises(RuntimeError):
        batcher.call(1)
    batcher.close()


def test_async_callers() -> None:
    run = Recorder()
    batcher: GroupCommit[int, int] = GroupCommit(run)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(batcher.call_async(j * 2) for j in range(20))))

    assert asyncio.run(main()) == [j * 20 for j in range(20)]
    batcher.close()


def test_the_flusher_ends_when_idle_and_comes_back() -> None:
    batcher: GroupCommit[int, int] = GroupCommit(Recorder(), idle_exit=0.05, name="t-idle")
    assert batcher.call(2) == 20
    deadline = time.monotonic() + 5
    while any(t.name == "t-idle" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "t-idle" for t in threading.enumerate())
    assert batcher.call(4) == 40
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.submit(6)
    assert not any(t.name == "t-idle" for t in threading.enumerate())


# -- on one event loop ------------------------------------------------------------------


class AsyncRecorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    async def __call__(self, jobs: Sequence[int]) -> list[int | Exception]:
        await asyncio.sleep(self.delay)  # a commit's round trip, awaited
        self.batches.append(list(jobs))
        return [ValueError(f"odd {j}") if j % 2 else j * 10 for j in jobs]


def test_loop_callers_share_batches_and_get_their_own_results() -> None:
    run = AsyncRecorder(delay=0.005)
    batcher: LoopGroupCommit[int, int] = LoopGroupCommit(run, max_batch=16)

    async def one(job: int) -> int | str:
        await asyncio.sleep(job % 7 / 1000)
        try:
            return await batcher.call(job)
        except ValueError as exc:
            return str(exc)

    async def main() -> list[int | str]:
        return list(await asyncio.gather(*(one(j) for j in range(200))))

    assert asyncio.run(main()) == [f"odd {j}" if j % 2 else j * 10 for j in range(200)]
    assert sorted(j for b in run.batches for j in b) == list(range(200))
    assert max(len(b) for b in run.batches) > 1
    assert all(len(b) <= 16 for b in run.batches)


def test_a_failed_loop_run_fails_its_batch_only() -> None:
    calls = 0

    async def flaky(jobs: Sequence[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database down")
        return [j for j in jobs]

    async def main() -> None:
        batcher: LoopGroupCommit[int, int] = LoopGroupCommit(flaky)
        with pytest.raises(ConnectionError):
            await batcher.call(1)
        assert await batcher.call(2) == 2
        wrong: LoopGroupCommit[int, int] = LoopGroupCommit(_no_results)
        with pytest.raises(RuntimeError):
            await wrong.call(3)

    asyncio.run(main())


async def _no_results(jobs: Sequence[int]) -> list[int | Exception]:
    return []


def test_a_closed_loop_batcher_finishes_what_waits_and_refuses_more() -> None:
    run = AsyncRecorder(delay=0.01)

    async def main() -> None:
        batcher: LoopGroupCommit[int, int] = LoopGroupCommit(run)
        waiting = [asyncio.ensure_future(batcher.call(j)) for j in (2, 4, 6)]
        await asyncio.sleep(0)
        await batcher.aclose()
        assert [w.result() for w in waiting] == [20, 40, 60]
        with pytest.raises(BatcherClosed):
            await batcher.call(8)

    asyncio.run(main())


def test_a_cancelled_drain_leaves_no_caller_waiting() -> None:
    async def never(jobs: Sequence[int]) -> list[int | Exception]:
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    async def main() -> None:
        batcher: LoopGroupCommit[int, int] = LoopGroupCommit(never, max_batch=2)
        waiting = [asyncio.ensure_future(batcher.call(j)) for j in range(5)]
        await asyncio.sleep(0.01)
        drains = [t for t in asyncio.all_tasks() if t.get_name() == "group-commit"]
        assert len(drains) == 1
        drains[0].cancel()
        done, pending = await asyncio.wait(waiting, timeout=2)
        assert not pending
        assert all(w.cancelled() for w in done)

    asyncio.run(main())


def test_a_job_answered_early_keeps_that_answer_whatever_its_batch_does() -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def run(jobs: Sequence[int]) -> list[int | Exception]:
            for i, job in enumerate(jobs):
                if job < 10:
                    batcher.answer_now(i, job * 10)
            await release.wait()  # the rest of the batch: a commit that takes its time
            raise ConnectionError("database down")

        batcher: LoopGroupCommit[int, int] = LoopGroupCommit(run)
        calls = [asyncio.ensure_future(batcher.call(j)) for j in (1, 20, 3)]
        await asyncio.wait(calls, timeout=2, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0)
        assert [c.done() for c in calls] == [True, False, True]
        assert (calls[0].result(), calls[2].result()) == (10, 30)
        release.set()
        with pytest.raises(ConnectionError):
            await calls[1]
        assert (calls[0].result(), calls[2].result()) == (10, 30)

    asyncio.run(main())
