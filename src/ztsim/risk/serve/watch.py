"""The detectors' background reader: signal events in, findings and responses out.

Every `every` seconds the watcher reads the events of the signal kinds above its cursor
(`risk_cursors`, name `detectors`), feeds them to the detectors, applies each finding's
response with its org's settings (`ztsim.risk.store.responses`, one transaction per
finding) and moves the cursor to the highest id read. On PostgreSQL ids are taken at
insert and may commit out of order, so for a while after the cursor moves it re-reads
the `OVERLAP` ids below it: an event committed late is found there, and one read twice
is harmless (a finding is recorded once per detector and source event; the detectors
judge an event the same way twice). A database error is logged by its class and the
round is tried again, from the same cursor, at the next tick. A first start begins at
the current end of the log: history is not judged again; later starts resume from the
stored cursor. On an SQLite file a tick with no commit since the one before leaves its
round out (`ztsim.db.data_version`): there is nothing new to read.

The node runs one watcher per database (the API process's or `ztsim up`'s): a second
would do the same work, and change nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Container
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from ztsim.clock import Clock, utc_now
from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.db.data_version import DataVersion
from ztsim.db.engine import for_writing
from ztsim.risk.detectors import SIGNAL_KINDS, Detectors, Signal, signal_of
from ztsim.risk.settings import RiskSettings
from ztsim.risk.store import cursors
from ztsim.risk.store.responses import Applied, respond
from ztsim.risk.store.settings import get_settings

log = logging.getLogger("ztsim.risk.watch")

CURSOR = "detectors"
# Ids below the cursor read again: PostgreSQL commits a few concurrent inserts late; the
# AAA writer's batch is the largest such transaction.
OVERLAP = 2_000
# How long after the cursor last moved the overlap is still read: a transaction that
# took its ids longer ago than this has committed or failed.
SETTLE_SECONDS = 10.0
BATCH = 5_000
# How often the cursor's position is written while only other events move it.
STORE_EVERY_SECONDS = 1.0
# Event ids already fed, remembered so the overlap is not judged again each round.
SEEN = 50_000

_e = schema.events


class Watcher:
    """`start()` runs `run_once` every `every` seconds in a thread until `stop()`."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utc_now,
        every: float = 0.1,
        detectors: Detectors | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.every = every
        self.detectors = detectors or Detectors()
        self.position: int | None = None
        self.rounds_failed = 0
        self._moved_at = float("-inf")
        self._stored_at = float("-inf")
        self._floor = 0
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Ticks whose round was left out: nothing committed since the tick before.
        self.rounds_left_out = 0

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ztsim-risk-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        version = DataVersion(self.engine)
        retry = True  # the first round, and one after a round that failed
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                if version.changed() or retry:
                    failed = self.rounds_failed
                    self.run_once(self.clock())
                    retry = self.rounds_failed != failed
                else:
                    self.rounds_left_out += 1
                self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))
        finally:
            version.close()

    # -- one round -------------------------------------------------------------------------

    def run_once(self, now: datetime) -> list[Applied]:
        """One round: the responses applied (findings already recorded are not). A
        database error is logged and leaves the cursor where it was."""
        try:
            if self.position is None:
                self.position = self._resume(now)
            return self._round(now)
        except SQLAlchemyError as exc:
            # By class only: a driver's message may quote the statement and its values.
            self.rounds_failed += 1
            log.warning("risk detectors: the database failed (%s); retrying", type(exc).__name__)
            return []

    def _resume(self, now: datetime) -> int:
        with for_writing(self.engine).begin() as conn:
            position = cursors.stored(conn, CURSOR)
            if position is not None:
                return position
            end = int(conn.execute(select(func.coalesce(func.max(_e.c.id), 0))).scalar_one())
            cursors.advance(conn, CURSOR, end, now)
            # History is not judged: the overlap stops at where the first start began.
            self._floor = end
            return end

    def _round(self, now: datetime) -> list[Applied]:
        assert self.position is not None
        start = self.position
        if time.monotonic() - self._moved_at < SETTLE_SECONDS:
            start = max(self._floor, start - OVERLAP)
        with self.engine.connect() as conn:
            signals, ignored, highest = _read(conn, start, self.position, self._seen)
        for event_id in ignored:
            self._remember(event_id)
        applied: list[Applied] = []
        settings: dict[str, RiskSettings] = {}
        for signal in signals:
            if signal.event_id in self._seen:
                continue
            org = settings.get(signal.org_id)
            if org is None:
                with self.engine.connect() as conn:
                    org = settings[signal.org_id] = get_settings(conn, signal.org_id)
            for finding in self.detectors.feed(signal, org):
                response = org.detector(finding.detector).response
                with for_writing(self.engine).begin() as conn:
                    done = respond(conn, finding, response, now=now)
                if done is not None:
                    applied.append(done)
                    log.info(
                        "risk finding %s on sim:%s: %s (%s)",
                        done.detector.value,
                        done.iccid,
                        done.response.value,
                        done.outcome.value,
                    )
            self._remember(signal.event_id)
        if highest > self.position:
            self.position = highest
            self._moved_at = time.monotonic()
            # The stored cursor only says where a restart resumes: written at most once a
            # second (or when findings were acted on), not on every round that other
            # events moved, which under load would take the write lock ten times a second.
            # A restart re-reads what it missed; findings are recorded once anyway.
            if applied or self._moved_at - self._stored_at >= STORE_EVERY_SECONDS:
                with for_writing(self.engine).begin() as conn:
                    cursors.advance(conn, CURSOR, highest, now)
                self._stored_at = self._moved_at
        return applied

    def _remember(self, event_id: int) -> None:
        self._seen[event_id] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)


_SIGNALS = select(
    _e.c.id, _e.c.org_id, _e.c.kind, _e.c.subject, _e.c.time, _e.c.reason, _e.c.payload
)


def _read(
    conn: Connection, start: int, position: int, seen: Container[int] = ()
) -> tuple[list[Signal], list[int], int]:
    """The signals with ids above `start` (but those in `seen`), in id order, at most
    `BATCH` of them above `position`; the ids of the rows that make no signal (about no
    known SIM); and where the cursor may move: the log's end as it was before the read
    (every id up to it is read or, committing late, within the overlap), or the last id
    read when the batch was full. The end moves the cursor past other kinds of events
    (DNS queries, sessions), so a round never scans more than what is new. The overlap
    is read as ids first: while attaches stream in it holds up to `OVERLAP` signals,
    nearly all fed already, and parsing them whole ten times a second was most of the
    API process's CPU."""
    end = int(conn.execute(select(func.coalesce(func.max(_e.c.id), 0))).scalar_one())
    signal_kinds = _e.c.kind.in_(SIGNAL_KINDS)
    overlap = conn.execute(
        select(_e.c.id).where(_e.c.id > start, _e.c.id <= position, signal_kinds)
    ).scalars()
    late = [event_id for event_id in overlap if event_id not in seen]
    rows = sorted(rows_in(conn, _SIGNALS, _e.c.id, late), key=lambda r: r[0]) if late else []
    new = conn.execute(
        _SIGNALS.where(_e.c.id > position, _e.c.id <= end, signal_kinds)
        .order_by(_e.c.id)
        .limit(BATCH)
    ).all()
    full = len(new) == BATCH
    signals: list[Signal] = []
    ignored: list[int] = []
    for event_id, org_id, kind, subject, at, reason, payload in [*rows, *new]:
        signal = signal_of(event_id, org_id, kind, subject, at, reason, payload or {})
        if signal is None:
            ignored.append(event_id)
        else:
            signals.append(signal)
    return signals, ignored, max(position, new[-1][0] if full else end)
