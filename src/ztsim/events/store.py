"""Append and query events. Appends join the caller's transaction, so an action and
its audit record commit (or roll back) together."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Row,
    cast,
    extract,
    func,
    insert,
    select,
)

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


def _where(
    org_id: str,
    q: EventQuery,
    kind_prefix: str | None = None,
    outcome: Outcome | None = None,
) -> list[ColumnElement[bool]]:
    where = [_t.c.org_id == org_id]
    if q.kind is not None:
        where.append(_t.c.kind == q.kind)
    if kind_prefix is not None:
        where.append(_t.c.kind.startswith(kind_prefix, autoescape=True))
    if outcome is not None:
        where.append(_t.c.outcome == outcome.value)
    if q.subject is not None:
        where.append(_t.c.subject == q.subject)
    if q.subjects_in is not None:
        where.append(_t.c.subject.in_(list(q.subjects_in)))
    if q.since is not None:
        where.append(_t.c.time >= q.since)
    if q.until is not None:
        where.append(_t.c.time < q.until)
    return where


def query(
    conn: Connection, org_id: str, q: EventQuery, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[Event], str | None]:
    """Newest first; the cursor continues to older events."""
    check_limit(limit)
    stmt = select(_t).where(*_where(org_id, q))
    if cursor is not None:
        stmt = stmt.where(_t.c.id < decode_cursor(cursor, int))
    rows = conn.execute(stmt.order_by(_t.c.id.desc()).limit(limit + 1)).all()
    page = [_event(r) for r in rows[:limit]]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return page, next_cursor


# -- the console's explorer: more filters, and paging both ways ------------------------------


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page newest first, with a cursor to each side that has more (None where not)."""

    events: list[Event]
    older: str | None
    newer: str | None


def kinds(conn: Connection, org_id: str) -> list[str]:
    """The kinds of event the org has, sorted: the explorer offers them to choose from."""
    stmt = select(_t.c.kind).where(_t.c.org_id == org_id).distinct().order_by(_t.c.kind)
    return [str(k) for k in conn.execute(stmt.limit(500)).scalars()]


def search(
    conn: Connection,
    org_id: str,
    q: EventQuery,
    *,
    kind_prefix: str | None = None,
    outcome: Outcome | None = None,
    limit: int = 100,
    older_than: str | None = None,
    newer_than: str | None = None,
) -> EventPage:
    """As `query`, narrowed also by a kind prefix and an outcome. `older_than` is the API's
    cursor (continue to older events); `newer_than` walks back towards the newest."""
    check_limit(limit)
    where = _where(org_id, q, kind_prefix, outcome)

    def more(*beyond: ColumnElement[bool]) -> bool:
        return conn.execute(select(_t.c.id).where(*where, *beyond).limit(1)).first() is not None

    if newer_than is not None:
        key = decode_cursor(newer_than, int)
        stmt = select(_t).where(*where, _t.c.id > key).order_by(_t.c.id.asc())
        rows = conn.execute(stmt.limit(limit + 1)).all()
        page = [_event(r) for r in reversed(rows[:limit])]
        has_newer = len(rows) > limit
        has_older = bool(page) and more(_t.c.id < page[-1].id)
    else:
        stmt = select(_t).where(*where)
        if older_than is not None:
            stmt = stmt.where(_t.c.id < decode_cursor(older_than, int))
        rows = conn.execute(stmt.order_by(_t.c.id.desc()).limit(limit + 1)).all()
        page = [_event(r) for r in rows[:limit]]
        has_older = len(rows) > limit
        has_newer = bool(page) and more(_t.c.id > page[0].id)
    return EventPage(
        page,
        encode_cursor(page[-1].id) if has_older else None,
        encode_cursor(page[0].id) if has_newer else None,
    )


@dataclass(frozen=True, slots=True)
class Tally:
    """Events of one span, outcome and reason: how many, and their payload fields summed."""

    bucket: int  # 0 is the span that starts at `since`
    outcome: Outcome
    reason: str
    events: int
    sums: dict[str, int]


def _epoch_seconds(conn: Connection) -> ColumnElement[int]:
    # Whole seconds since 1970 of `time`, in SQL: no portable spelling exists.
    if conn.dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", _t.c.time)), BigInteger)
    # SQLite keeps the text `YYYY-MM-DD HH:MM:SS.ffffff` and its date functions round to
    # the millisecond (08:59:59.9999 would be 09:00): read the whole seconds only.
    return cast(func.strftime("%s", func.substr(_t.c.time, 1, 19)), Integer)


def tally(
    conn: Connection,
    org_id: str,
    kind: str,
    *,
    since: datetime,
    width: timedelta,
    buckets: int,
    sums: Sequence[str] = (),
) -> list[Tally]:
    """Events of `kind` in `buckets` spans of `width` from `since`, counted in SQL per
    span, outcome and reason (no row is fetched); `sums`: integer payload fields, added up
    (absent counts as 0). `width` is whole seconds; spans with no event are left out."""
    step = int(width.total_seconds())
    if step < 1 or step != width.total_seconds() or buckets < 1:
        raise ValueError("width must be whole seconds and buckets at least 1")
    start = int(since.timestamp())
    bucket = cast((_epoch_seconds(conn) - start) // step, Integer).label("bucket")
    totals = [
        func.coalesce(func.sum(_t.c.payload[name].as_integer()), 0).label(f"sum{i}")
        for i, name in enumerate(sums)
    ]
    stmt = (
        select(bucket, _t.c.outcome, _t.c.reason, func.count().label("n"), *totals)
        .where(
            _t.c.org_id == org_id,
            _t.c.kind == kind,
            _t.c.time >= since,
            _t.c.time < since + width * buckets,
        )
        .group_by(bucket, _t.c.outcome, _t.c.reason)
    )
    return [
        Tally(
            int(row[0]),
            Outcome(row[1]),
            row[2],
            int(row[3]),
            {name: int(row[4 + i]) for i, name in enumerate(sums)},
        )
        for row in conn.execute(stmt)
    ]
