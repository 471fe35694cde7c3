"""Append and query events. Appends join the caller's transaction, so an action and
its audit record commit (or roll back) together."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, insert, select

from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.events.schema import Event, NewEvent, Outcome

_t = schema.events


def append(conn: Connection, events: Iterable[NewEvent], now: datetime) -> None:
    rows = [
        {
            "org_id": e.org_id,
            "time": now,
            "kind": e.kind,
            "actor": e.actor,
            "subject": e.subject,
            "outcome": e.outcome.value,
            "reason": e.reason,
            "payload": e.payload,
        }
        for e in events
    ]
    if rows:
        conn.execute(insert(_t), rows)


@dataclass(frozen=True, slots=True)
class EventQuery:
    kind: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Narrows to events about any of these subjects (a `self` token's own objects).
    subjects_in: Sequence[str] | None = None


def _event(row: Row[tuple[object, ...]]) -> Event:
    m = row._mapping
    return Event(
        id=m["id"],
        org_id=m["org_id"],
        time=m["time"],
        kind=m["kind"],
        actor=m["actor"],
        subject=m["subject"],
        outcome=Outcome(m["outcome"]),
        reason=m["reason"],
        payload=m["payload"],
    )


def query(
    conn: Connection, org_id: str, q: EventQuery, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[Event], str | None]:
    """Newest first; the cursor continues to older events."""
    check_limit(limit)
    stmt = select(_t).where(_t.c.org_id == org_id)
    if q.kind is not None:
        stmt = stmt.where(_t.c.kind == q.kind)
    if q.subject is not None:
        stmt = stmt.where(_t.c.subject == q.subject)
    if q.subjects_in is not None:
        stmt = stmt.where(_t.c.subject.in_(list(q.subjects_in)))
    if q.since is not None:
        stmt = stmt.where(_t.c.time >= q.since)
    if q.until is not None:
        stmt = stmt.where(_t.c.time < q.until)
    if cursor is not None:
        stmt = stmt.where(_t.c.id < decode_cursor(cursor, int))
    rows = conn.execute(stmt.order_by(_t.c.id.desc()).limit(limit + 1)).all()
    page = [_event(r) for r in rows[:limit]]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return page, next_cursor
