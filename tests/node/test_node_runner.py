"""The role runner: a stop signal that arrives while the role starts is kept and acted on
once the start returns; the role's own end stops it too; signals held across a fork
reach the runner's handlers."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from ztsim.node.runner import on_stop_signal, run_role, stop_signals_held


class _Role:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def stop(self) -> None:
        self.steps.append("stopped")


@pytest.fixture
def fallback() -> Iterator[list[int]]:
    """Where SIGTERM lands when nobody else took it (instead of ending the test run)."""
    landed: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        landed.append(signum)

    previous = signal.signal(signal.SIGTERM, record)
    yield landed
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_during_start_stops_the_role_once_started(fallback: list[int]) -> None:
    steps: list[str] = []

    async def start() -> _Role:
        os.kill(os.getpid(), signal.SIGTERM)  # as if it came in while the ports were bound
        await asyncio.sleep(0.05)
        steps.append("started")
        return _Role(steps)

    asyncio.run(asyncio.wait_for(run_role(start), timeout=5))
    assert steps == ["started", "stopped"]
    assert fallback == []  # taken by the runner, not left to the default action


def test_the_role_ending_on_its_own_stops_it() -> None:
    steps: list[str] = []

    async def start() -> _Role:
        role = _Role(steps)
        asyncio.get_running_loop().call_later(0.05, role.ended.set_result, None)
        return role

    asyncio.run(asyncio.wait_for(run_role(start, ended=lambda role: role.ended), timeout=5))
    assert steps == ["stopped"]


def test_a_failed_start_leaves_no_handler_behind() -> None:
    async def start() -> _Role:
        raise OSError("address in use")

    with pytest.raises(OSError, match="address in use"):
        asyncio.run(run_role(start))
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_signal_held_across_a_fork_reaches_the_runner(fallback: list[int]) -> None:
    """A forked worker inherits the signals held; its runner takes them once ready. (A
    forked child has one thread: the signal is aimed at this one, which holds it.)"""
    steps: list[str] = []

    async def start() -> _Role:
        steps.append("started")
        return _Role(steps)

    with stop_signals_held():
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        assert fallback == []  # pending, not delivered
        asyncio.run(asyncio.wait_for(run_role(start), timeout=5))
    assert steps == ["started", "stopped"]
    assert fallback == []


def test_on_stop_signal_calls_the_handler_with_the_signal() -> None:
    seen: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        on_stop_signal(seen.append)
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert seen == [signal.SIGTERM, signal.SIGINT]
