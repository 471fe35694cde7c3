"""What the change feed's tests share: publishing in a transaction of its own, an
`apply` that records what it got and when, waiting on a condition with a deadline, and
a publisher in another process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from ztsim.db.engine import for_writing
from ztsim.feed import outbox
from ztsim.feed.change import Change, NewChange, Topic

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ORG = "0" * 31 + "1"


def change(key: str, payload: dict[str, object] | None = None) -> NewChange:
    return NewChange(ORG, Topic.SIM, key, payload or {})


def publish(engine: Engine, *keys: str, now: datetime = NOW) -> None:
    """One write transaction publishing one change per key (SIM topic)."""
    with for_writing(engine).begin() as conn:
        outbox.publish(conn, [change(k) for k in keys], now)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Whether `condition` came true before `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")


class Recorder:
    """An idempotent `apply`: keeps every batch it was given and when (wall clock, to
    compare with another process's commit time). While `failures` is above 0 a call
    raises instead (and is kept in `failed`)."""

    def __init__(self) -> None:
        self.batches: list[tuple[Change, ...]] = []
        self.failed: list[tuple[Change, ...]] = []
        self.applied_at: dict[str, float] = {}  # key -> when first applied
        self.failures = 0
        self._lock = threading.Lock()

    def __call__(self, batch: Sequence[Change]) -> None:
        with self._lock:
            if self.failures:
                self.failures -= 1
                self.failed.append(tuple(batch))
                raise RuntimeError("apply failed (planted)")
            self.batches.append(tuple(batch))
            now = time.time()
            for c in batch:
                self.applied_at.setdefault(c.key, now)

    @property
    def seqs(self) -> list[int]:
        """Every change applied, in the order applied."""
        with self._lock:
            return [c.seq for batch in self.batches for c in batch]

    @property
    def keys(self) -> list[str]:
        with self._lock:
            return [c.key for batch in self.batches for c in batch]


# A publisher in another process: no in-process wake can reach the follower, only NOTIFY
# (PostgreSQL) or the poll (SQLite). Prints the wall-clock time its commit returned.
_PUBLISHER = """
import sys, time
from ztsim.db.engine import for_writing, make_engine
from ztsim.feed import outbox
from ztsim.feed.change import NewChange, Topic
from datetime import UTC, datetime
url, schema, org, key = sys.argv[1:5]
engine = make_engine(url, schema=schema or None)
with for_writing(engine).begin() as conn:
    outbox.publish(conn, [NewChange(org, Topic.SIM, key)], datetime.now(UTC))
print(time.time(), flush=True)
engine.dispose()
"""


def publish_from_another_process(url: str, schema: str | None, key: str) -> float:
    """Publish one change from a fresh interpreter; returns when its commit returned."""
    done = subprocess.run(
        [sys.executable, "-c", _PUBLISHER, url, schema or "", ORG, key],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])
