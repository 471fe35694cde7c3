"""Group commit: concurrent jobs share a run, each caller gets its own result after it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from ztsim.udm.batcher import BatcherClosed, GroupCommit


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
