"""Running a role until SIGINT or SIGTERM, and stopping it in order (records flushed).

The handlers are in place before the role binds anything: a signal that arrives while
it starts is kept and acted on as soon as the start returns, never the default action
that would end the process with acknowledged records still unwritten.

A process that forks workers (`ztsim serve dns --workers N`) holds the signals pending
while it forks (`stop_signals_held`): each child inherits them held and takes them
when its own `run_role` has its handlers in place; the parent takes them once its
forwarding handler (`on_stop_signal`) is in place and every child exists.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class Role(Protocol):
    async def stop(self) -> None:
        """Stop serving and write what is still held."""


R = TypeVar("R", bound=Role)


async def run_role(
    start: Callable[[], Awaitable[R]],
    *,
    ended: Callable[[R], asyncio.Future[Any]] | None = None,
) -> None:
    """Install the stop handlers, then `start` the role (bind, spawn), then serve until a
    stop signal or, for a role that can end on its own, until its `ended` future is done
    (the role's own: left for its `stop`, never cancelled here); then `stop` it."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stopping.set)
    # Held by a parent across its fork (see the module notes): delivered from here on.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        role = await start()
        try:
            await _until(stopping, None if ended is None else ended(role))
        finally:
            await role.stop()
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _until(stopping: asyncio.Event, ended: asyncio.Future[Any] | None) -> None:
    if ended is None:
        await stopping.wait()
        return
    signalled = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({signalled, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        signalled.cancel()


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM stay pending (neither lost nor acted on) inside the block."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def on_stop_signal(handler: Callable[[int], None]) -> None:
    """`handler(signum)` on SIGINT or SIGTERM, for a process without an event loop."""

    def handle(signum: int, _frame: object) -> None:
        handler(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)
