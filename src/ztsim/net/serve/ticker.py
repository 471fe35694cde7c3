"""A thread that runs one step on a clock: the net role's timer and the audit's flush.

Both need the same loop: run `step` at least every `period` seconds (sooner when `due`
names an earlier moment), log what it raises and go on, and stop promptly. An expected
failure (a tool refused, the database is down) is a warning naming the error, once per
run of failures (the next success says so), since it is retried every period; anything
else is a bug, logged with its traceback each time; neither ends the thread. After a
failure the next step waits a whole period, whatever `due` says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ztsim.errors import ZtsimError

_log = logging.getLogger("ztsim.net")


class Ticker:
    """Runs `step` on a thread named `name` every `period` seconds at most; `due` gives
    the seconds until the next step is wanted sooner (None: not sooner)."""

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        *,
        period: float = 1.0,
        due: Callable[[], float | None] = lambda: None,
        expected: tuple[type[Exception], ...] = (),
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.name = name
        self._step = step
        self._period = period
        self._due = due
        self._expected = expected
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the thread after the step it may be running."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        failed = False
        while not self._stopping.is_set():
            wait = self._period
            sooner = None if failed else self._due()  # after a failure: a whole period
            if sooner is not None:
                wait = min(wait, max(0.0, sooner))
            if self._stopping.wait(wait):
                return
            streak, failed = failed, True
            try:
                self._step()
                failed = False
            except self._expected as exc:
                if not streak:
                    # A tool's message (ZtsimError) says what failed; a driver's may quote
                    # the values of a statement (the events'), so only its class is named.
                    said = f": {exc}" if isinstance(exc, ZtsimError) else ""
                    _log.warning("%s: %s, retrying%s", self.name, type(exc).__name__, said)
            except Exception:  # a bug: logged, the thread goes on
                _log.exception("%s: a step failed", self.name)
            if streak and not failed:
                _log.warning("%s: working again", self.name)
