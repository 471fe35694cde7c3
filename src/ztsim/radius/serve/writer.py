"""The AAA records' writer: the hot path's `Sink`, written in batches, one transaction each.

The hot path only appends tuples; `take()` hands the batch collected so far to the
writer (and moves on to the next `generation`), `write()` turns it into rows and
commits it. A batch that fails (the database is down) is kept whole and merged into
the next one, so the next commit takes both: nothing is dropped that an answer depends
on. Accounting replies wait for their batch's commit (see `ztsim.radius.aaa.core`), and
the core stops taking accounting past its own bound, so the records they wait for stay
bounded. Access decisions were answered before they were written: while commits fail
they are kept up to `MAX_RETAINED_EVENTS` records, the oldest decisions past it are
dropped, counted per org (logged once per outage), and each org gets one
`radius.records_dropped` event in the first commit that succeeds.

A batch taken with the accounting journal's marks (`take(journal)`) records them in the
same transaction (`journal_marks`): how far into each journal file its records reach.

Each commit also publishes, last in its transaction, what it changed on the change feed
(`ztsim.feed`): a SESSION change per session written (keyed by its UE address, else
"<gateway id>/<Acct-Session-Id>"), and a SIM change per first-attach binding made (by
the binding's use case, `inventory.service.bind_on_first_attach`), so every plane
learns them in the same commit that makes them durable.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine

from ztsim.clock import Clock, utc_now
from ztsim.db import schema
from ztsim.db.bulk import insert_rows, rows_per_statement, takes_driver_rows
from ztsim.errors import ZtsimError
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.feed.change import MAX_KEY, NewChange, Topic
from ztsim.inventory import service as inventory
from ztsim.radius.aaa.accounting import session_event, session_event_row
from ztsim.radius.aaa.traffic import (
    EVENT_COLUMNS,
    AccessRecord,
    AccessRows,
    EventRow,
    access_events,
    sqlite_time,
    stored_event_row,
)
from ztsim.radius.serve import journal_marks
from ztsim.radius.serve.journal import Marks
from ztsim.sessions import repository as sessions_repo
from ztsim.sessions.allocator import PoolEntry
from ztsim.sessions.leases import NewLease, record_leases
from ztsim.sessions.table import Session
from ztsim.usecase import use_case

log = logging.getLogger("ztsim.radius.serve.writer")

# An access decision, an event with its time, or a session's start or end (`kind`) with
# its time: told apart by their lengths (11, 2, 3).
_EventItem = AccessRecord | tuple[NewEvent, datetime] | tuple[Session, str, datetime]
# A first-attach binding to make: org id, ICCID, IMEI, when.
Binding = tuple[str, str, str, datetime]

# Events kept while commits fail: about 1 KB each in memory, so about 100 MB at most;
# at 1,000 decisions a second, a minute and a half of outage before any is dropped.
MAX_RETAINED_EVENTS = 100_000
DROPPED_KIND = "radius.records_dropped"


@dataclass
class Batch:
    # Events in arrival order: access decisions and sessions' starts and ends as the hot
    # path left them, other events with their time. Turned into rows by the writer, so
    # the hot path's thread only appends a tuple.
    events: list[_EventItem] = field(default_factory=list)
    leases: list[NewLease] = field(default_factory=list)
    sessions: dict[tuple[str, str], Session] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    # The newest generation whose records are in this batch.
    generation: int = 0
    # How far into the accounting journal the batch's records reach (see `take`).
    journal: Marks | None = None

    def __bool__(self) -> bool:
        return bool(
            self.events
            or self.leases
            or self.sessions
            or self.bindings
            or (self.journal is not None and (self.journal.finished or self.journal.forget))
        )

    def then(self, later: Batch) -> Batch:
        """This (failed) batch followed by `later`: one commit writes both, in order."""
        journal = self.journal
        if later.journal is not None:
            journal = later.journal if journal is None else journal.then(later.journal)
        return Batch(
            self.events + later.events,
            self.leases + later.leases,
            {**self.sessions, **later.sessions},  # a session's later state wins
            self.bindings + later.bindings,
            later.generation,
            journal,
        )


class BatchWriter:
    """The `Sink` of the hot path: collects records, `take()` then `write()` commits them.
    `take` and `write` are called by one writer at a time (the service's flush)."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._batch = Batch()
        # Events and sessions, the bulk, go through deques: append and popleft are atomic,
        # so the hot path records them without taking a lock. The rest is rare and locked.
        self._events: collections.deque[_EventItem] = collections.deque()
        self._sessions: collections.deque[Session] = collections.deque()
        # The hot path's thread adds while the event loop takes.
        self._lock = threading.Lock()
        self.generation = 0
        self._failed: Batch | None = None
        self.written_events = 0
        self.dropped_access = 0
        self._dropped: dict[str, int] = {}  # org id -> decisions dropped, not yet reported
        self._drop_logged = False
        dialect = engine.dialect.name
        self._raw = takes_driver_rows(dialect)
        self._sqlite = dialect == "sqlite"
        self._access_rows = AccessRows(sqlite=self._sqlite)
        self._last_when: datetime | None = None
        self._last_time: object = None

    # -- the Sink ------------------------------------------------------------------------

    def access(self, record: AccessRecord) -> None:
        self._events.append(record)

    def event(self, event: NewEvent, when: datetime) -> None:
        self._events.append((event, when))

    def session_event(self, session: Session, kind: str, when: datetime) -> None:
        self._events.append((session, kind, when))

    def session(self, session: Session) -> None:
        self._sessions.append(session)

    def lease(self, pool: PoolEntry, imsi: str, address: str, when: datetime) -> None:
        with self._lock:
            self._batch.leases.append((pool, imsi, address, when))

    def bind(self, org_id: str, iccid: str, imei: str, when: datetime) -> None:
        with self._lock:
            self._batch.bindings.append((org_id, iccid, imei, when))

    # -- the writer's side ---------------------------------------------------------------

    @property
    def retained(self) -> int:
        """Events kept from failed commits."""
        return 0 if self._failed is None else len(self._failed.events)

    def take(self, journal: Marks | None = None) -> Batch:
        """What was recorded so far (after what failed before): the batch `generation`.
        `journal`: the journal's marks, read under the lock that the journal's appends
        take, as this is called, so that the batch holds what they cover."""
        with self._lock:
            batch, self._batch = self._batch, Batch()
            # In the same step as the swap: see `Sink.generation`.
            batch.generation = self.generation
            self.generation += 1
        batch.journal = journal
        # Appends racing with this land in the next batch.
        take = self._events.popleft
        batch.events = [take() for _ in range(len(self._events))]
        take_session, sessions = self._sessions.popleft, batch.sessions
        for _ in range(len(self._sessions)):
            session = take_session()
            sessions[session.key] = session  # a session's later state wins
        failed, self._failed = self._failed, None
        if failed is None:
            return batch
        batch = failed.then(batch)
        if len(batch.events) > MAX_RETAINED_EVENTS:
            batch.events = self._drop_oldest_decisions(batch.events)
        return batch

    def keep(self, batch: Batch) -> None:
        """A batch whose commit failed: written with the next one."""
        self._failed = batch

    def _drop_oldest_decisions(self, events: list[_EventItem]) -> list[_EventItem]:
        excess = len(events) - MAX_RETAINED_EVENTS
        kept: list[_EventItem] = []
        for item in events:
            # Only decisions: the other events are session changes whose accounting
            # replies wait for them, and revocations' outcomes, both few.
            org_id = item[0]  # an access record's org id; the others begin with an object
            if excess > 0 and isinstance(org_id, str):
                excess -= 1
                self._dropped[org_id] = self._dropped.get(org_id, 0) + 1
                self.dropped_access += 1
            else:
                kept.append(item)
        if not self._drop_logged:
            self._drop_logged = True
            log.warning(
                "the database is unavailable: more than %d RADIUS records wait, the oldest "
                "access decisions are dropped (counted, and reported per org when writing "
                "resumes)",
                MAX_RETAINED_EVENTS,
            )
        return kept

    def write(self, batch: Batch) -> None:
        """Commit `batch` (and the drop reports due); raises if the commit fails, with
        nothing of it kept: the caller decides (`keep`)."""
        dropped, self._dropped = self._dropped, {}
        try:
            written = self._commit(batch, dropped)
        except BaseException:
            for org_id, count in dropped.items():
                self._dropped[org_id] = self._dropped.get(org_id, 0) + count
            raise
        self._drop_logged = False
        self.written_events += written

    def _commit(self, batch: Batch, dropped: dict[str, int]) -> int:
        with self._engine.begin() as conn:
            record_leases(conn, batch.leases)
            if batch.sessions:
                sessions_repo.save(conn, batch.sessions.values())
            # Rows are built a statement's worth at a time: the driver lets go of the GIL
            # while SQLite works, so the hot path never waits behind a whole batch's
            # worth of row building.
            written = 0
            events = batch.events
            for start in range(0, len(events), _EVENTS_PER_STATEMENT):
                rows = self._rows(events[start : start + _EVENTS_PER_STATEMENT])
                written += insert_rows(conn, schema.events, EVENT_COLUMNS, rows)
            if batch.journal is not None:
                journal_marks.save(conn, batch.journal.offsets)
                journal_marks.forget(conn, batch.journal.forget)
            now = self._clock()
            if dropped:
                reports = [self._row(_dropped_event(o, n), now) for o, n in dropped.items()]
                written += insert_rows(conn, schema.events, EVENT_COLUMNS, reports)
            # Last, and once, as the feed asks: publishing takes a lock held until the
            # commit (on PostgreSQL), so no row lock may be taken after it. The bindings'
            # use cases nest in this one, which publishes their SIM changes with the
            # sessions'.
            with use_case(conn, now) as uc:
                _bind(conn, batch.bindings)
                uc.changes(session_change(s) for s in batch.sessions.values())
        return written

    def _rows(self, events: list[_EventItem]) -> list[EventRow]:
        rows: list[EventRow] = []
        for item in events:
            if len(item) == 2:
                rows.append(self._row(*item))
            elif len(item) == 3:
                session, kind, when = item
                if self._raw:
                    rows.append(session_event_row(session, kind, self._stored_time(when)))
                else:
                    rows.append(self._row(session_event(session, kind), when))
            elif self._raw:
                rows.extend(self._access_rows(item))
            else:
                when = item[9]
                rows.extend(self._row(event, when) for event in access_events(item))
        return rows

    def _stored_time(self, when: datetime) -> object:
        # The requests of one received batch share their time: its text once.
        if when is not self._last_when:
            self._last_when = when
            self._last_time = sqlite_time(when) if self._sqlite else when
        return self._last_time

    def _row(self, event: NewEvent, when: datetime) -> EventRow:
        if self._raw:
            return stored_event_row(event, self._stored_time(when))
        return (
            event.org_id,
            when,
            event.kind,
            event.actor,
            event.subject,
            event.outcome.value,
            event.reason,
            event.payload,
        )


def _bind(conn: Connection, bindings: list[Binding]) -> None:
    for org_id, iccid, imei, when in bindings:
        try:
            with conn.begin_nested():
                inventory.bind_on_first_attach(conn, org_id, iccid, imei, now=when)
        except ZtsimError as exc:
            log.warning("first-attach binding of a SIM failed: %s", exc)


def session_change(s: Session) -> NewChange:
    """The SESSION change for a session as written (see the change feed's topics)."""
    key = s.ue_address or f"{s.gateway_id}/{s.acct_session_id}"
    # An Acct-Session-Id may be 253 octets: cut to the outbox's key. Consumers find the
    # session by the payload, which has it whole; a shared cut key only wakes them twice.
    return NewChange(
        s.org_id,
        Topic.SESSION,
        key[:MAX_KEY],
        {
            "iccid": s.iccid,
            "gateway_id": s.gateway_id,
            "acct_session_id": s.acct_session_id,
            "stopped": s.stopped_at is not None,
        },
    )


def _dropped_event(org_id: str, count: int) -> NewEvent:
    return NewEvent(
        org_id,
        DROPPED_KIND,
        "system:radius-writer",
        subject_of("org", org_id),
        Outcome.FAILURE,
        "database_unavailable",
        {"kind": "radius.access", "dropped": count},
    )


# A statement's worth of events; the risk events that come with a few decisions spill
# over into a short second statement.
_EVENTS_PER_STATEMENT = rows_per_statement(len(EVENT_COLUMNS))
