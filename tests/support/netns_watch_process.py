"""The watcher (`netns_watch`) and a Disconnect-Request listener in a process of their
own, at a higher priority than the hosts they watch: outside observers should note when
a reply arrives, not when a busy process (the load's HTTP threads, its GIL) gets round
to it. On a real network they would be other machines.

The parent sends targets (plain data) down a queue; the child sends back, as each
closes, when it was applied (or that it was lost), and at the end its probe statistics
and the Disconnect-Requests it received. The child is forked: start it before the
parent starts threads of its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from support.netns_clients import CoaListener, CoaReply, Disconnect
from support.netns_hosts import enter_for_good
from support.netns_watch import Target, Watcher

PRIORITY = -5  # nice value of the child: ahead of the hosts (needs root; else unchanged)


@dataclass
class WatchStats:
    probes: int = 0
    round_trips: dict[str, list[float]] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)
    disconnects: list[Disconnect] = field(default_factory=list)


def _child(settings: dict[str, Any], inbox: multiprocessing.Queue[Any], outbox: Any) -> None:
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, PRIORITY)
    enter_for_good(settings["ns"])

    def done(target: Target) -> None:
        outbox.put(
            (
                "done",
                (target.change, target.host),
                target.applied_at,
                target.lost,
                target.replies,
                target.broken,
                str(target.last),
            )
        )

    watcher = Watcher(
        settings["ns"],
        settings["nas"],
        settings["secret"],
        confirm=settings["confirm"],
        deadline=settings["deadline"],
        on_done=done,
    ).start()
    coa = None
    if settings["coa"] is not None:
        coa = CoaListener(
            settings["ns"], settings["nas"], settings["secret"], CoaReply(settings["coa"])
        ).start()
    while (item := inbox.get()) is not None:
        watcher.add(item)
    watcher.wait(settings["deadline"] + 2)
    watcher.stop()
    disconnects: list[Disconnect] = []
    if coa is not None:
        coa.close()
        disconnects = coa.received
    outbox.put(
        ("stats", WatchStats(watcher.probes, watcher.round_trips, watcher.timeouts, disconnects))
    )


class WatchProcess:
    """`start`, `add` targets (their fields are filled in here as the child reports),
    `wait` until all have closed, `stop` for the statistics."""

    def __init__(
        self,
        ns: str,
        nas_address: str,
        secret: str,
        *,
        confirm: int = 4,
        deadline: float = 10.0,
        coa: CoaReply | None = None,
        on_close: Callable[[Target], None] | None = None,
    ) -> None:
        self.on_close = on_close  # on the results' thread, as each target closes
        self.settings = {
            "ns": ns,
            "nas": nas_address,
            "secret": secret,
            "confirm": confirm,
            "deadline": deadline,
            "coa": None if coa is None else coa.value,
        }
        context = multiprocessing.get_context("fork")
        self._inbox: multiprocessing.Queue[Any] = context.Queue()
        self._outbox: multiprocessing.Queue[Any] = context.Queue()
        self._process = context.Process(
            target=_child, args=(self.settings, self._inbox, self._outbox), daemon=True
        )
        self._targets: dict[tuple[int, str], Target] = {}
        self._open = 0
        self._changed = threading.Condition()
        self._stats: WatchStats | None = None
        self._reader = threading.Thread(target=self._read, name="watch-results", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> WatchProcess:
        self._process.start()
        self._reader.start()
        return self

    def add(self, target: Target) -> None:
        with self._changed:
            self._targets[(target.change, target.host)] = target
            self._open += 1
        self._inbox.put(target)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._open:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def stop(self, timeout: float = 60.0) -> WatchStats:
        self._inbox.put(None)
        with self._changed:
            self._changed.wait_for(lambda: self._stats is not None, timeout)
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
        return self._stats or WatchStats()

    def _read(self) -> None:
        while True:
            try:
                message = self._outbox.get()
            except (EOFError, OSError):
                return
            with self._changed:
                if message[0] == "stats":
                    self._stats = message[1]
                    self._changed.notify_all()
                    return
                _, key, applied_at, lost, replies, broken, last = message
                target = self._targets.get(key)
                if target is not None:
                    target.applied_at, target.lost = applied_at, lost
                    target.replies, target.broken, target.last = replies, broken, last
                    self._open -= 1
                self._changed.notify_all()
            if target is not None and self.on_close is not None:
                self.on_close(target)
