"""PostgreSQL LISTEN on the feed's channel: a wake-up hint for a follower.

One dedicated connection (outside the engine's pool, autocommit) per follower. Lost
connections are re-made with a growing pause; meanwhile the follower's poll covers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from ztsim.feed.outbox import CHANNEL

log = logging.getLogger("ztsim.feed.listen")

FIRST_PAUSE_SECONDS = 0.2
MAX_PAUSE_SECONDS = 5.0


class Listener:
    def __init__(self, engine: Engine, wake: Callable[[], None]) -> None:
        self.engine = engine
        self.wake = wake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pause = FIRST_PAUSE_SECONDS
        self._lost = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="feed-listen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        # The thread notices within its notifies() timeout (0.5 s); joined so that its
        # connection is closed before the caller disposes of the engine.
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self._pause = FIRST_PAUSE_SECONDS
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # SQLAlchemy's, the OS's and the driver's (psycopg.Error)
                if not self._lost:  # once per outage; the class only, never the message
                    log.debug("LISTEN connection lost (%s); retrying", type(exc).__name__)
                self._lost = True
            else:
                return  # stopping
            self._stopping.wait(self._pause)
            self._pause = min(self._pause * 2, MAX_PAUSE_SECONDS)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        try:
            # The driver's connection before detaching: once detached, the pool's proxy no
            # longer names it (driver_connection is None), and LISTEN never ran.
            driver = raw.driver_connection
            assert driver is not None
            raw.detach()  # this connection never goes back to the pool
            driver.autocommit = True
            driver.execute(f"LISTEN {CHANNEL}")
            # Listening again: the next loss retries quickly, not after the last pause.
            self._pause = FIRST_PAUSE_SECONDS
            self._lost = False
            # A hint may have been missed while (re)connecting.
            self.wake()
            while not self._stopping.is_set():
                for _notice in driver.notifies(timeout=0.5, stop_after=1):
                    self.wake()
        finally:
            raw.close()
