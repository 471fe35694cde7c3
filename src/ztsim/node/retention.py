"""The API role keeps the change feed short: old changes are pruned every few minutes.

One role prunes (the API: `ztsim up` and `ztsim serve api`), so the gateways only read.
Several API processes pruning at once is harmless: each chunk deletes a prefix of the
outbox, and `pruned_through` only grows.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ztsim.clock import Clock, utc_now
from ztsim.feed.retention import prune_older_than

log = logging.getLogger("ztsim.node.retention")

EVERY_SECONDS = 600.0


class Pruner:
    def __init__(
        self,
        engine: Engine,
        keep: timedelta,
        *,
        every: float = EVERY_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.keep = keep
        self.every = every
        self.clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def prune_now(self) -> int:
        return prune_older_than(self.engine, self.keep, self.clock())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="feed-pruner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            try:
                gone = self.prune_now()
            except (SQLAlchemyError, OSError) as exc:
                # The class only: a driver's message may quote values. Next round retries.
                log.warning("pruning the change feed failed (%s)", type(exc).__name__)
                continue
            if gone:
                log.info("pruned %d changes older than %s from the change feed", gone, self.keep)
