"""The session table in the database: written by the AAA process (batched, off its hot
path), read by the API and the DNS gateway. Every read is scoped by org."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, RowMapping, insert, select, update

from ztsim.db import schema
from ztsim.db.bulk import takes_driver_rows, upsert_rows
from ztsim.db.jsontext import json_text
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.sessions.table import Session

_t = schema.radius_sessions
_FIELDS = [_t.c[name] for name in Session._fields]  # a row in the tuple's field order


def _session(m: RowMapping) -> Session:
    return Session(
        org_id=m["org_id"],
        gateway_id=m["gateway_id"],
        acct_session_id=m["acct_session_id"],
        nas_address=m["nas_address"],
        imsi=m["imsi"],
        iccid=m["iccid"],
        identity_id=m["identity_id"],
        device_id=m["device_id"],
        imei=m["imei"],
        ue_address=m["ue_address"],
        apn=m["apn"],
        rat=m["rat"],
        location=m["location"],
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        stopped_at=m["stopped_at"],
        stop_cause=m["stop_cause"],
    )


def _values(s: Session) -> dict[str, object]:
    return {
        "org_id": s.org_id,
        "gateway_id": s.gateway_id,
        "acct_session_id": s.acct_session_id,
        "nas_address": s.nas_address,
        "imsi": s.imsi,
        "iccid": s.iccid,
        "identity_id": s.identity_id,
        "device_id": s.device_id,
        "imei": s.imei,
        "ue_address": s.ue_address,
        "apn": s.apn,
        "rat": s.rat,
        "location": s.location,
        "started_at": s.started_at,
        "updated_at": s.updated_at,
        "stopped_at": s.stopped_at,
        "stop_cause": s.stop_cause,
    }


_COLUMNS = (
    "org_id", "gateway_id", "acct_session_id", "nas_address", "imsi", "iccid",
    "identity_id", "device_id", "imei", "ue_address", "apn", "rat", "location",
    "started_at", "updated_at", "stopped_at", "stop_cause",
)  # fmt: skip
# The unique key (schema.radius_sessions' UniqueConstraint), and what an update keeps.
_KEY = ("gateway_id", "acct_session_id")
_KEPT = ("started_at",)


def _time(when: datetime | None, sqlite: bool) -> object:
    # The forms UtcDateTime binds: naive UTC text on SQLite, aware UTC elsewhere.
    if when is None:
        return None
    if when.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    utc = when.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else utc


class _Times:
    """`_time` of each time, remembered by object: the sessions a batch of accounting
    made share one `now` (and a Start's started_at is its updated_at)."""

    __slots__ = ("_sqlite", "_texts")

    def __init__(self, sqlite: bool) -> None:
        self._sqlite = sqlite
        # By id, cheaper than a datetime's hash; each time is kept with its text, so no
        # id is reused by another object while this lasts.
        self._texts: dict[int, tuple[datetime, object]] = {}

    def __call__(self, when: datetime | None) -> object:
        if when is None:
            return None
        known = self._texts.get(id(when))
        if known is None:
            known = self._texts[id(when)] = (when, _time(when, self._sqlite))
        return known[1]


def _row(s: Session, time: Callable[[datetime | None], object]) -> tuple[object, ...]:
    """A session as the driver takes it: the location as the JSON text SQLAlchemy's JSON
    binds (None too becomes "null"), the times as `_time`."""
    return (
        s.org_id,
        s.gateway_id,
        s.acct_session_id,
        s.nas_address,
        s.imsi,
        s.iccid,
        s.identity_id,
        s.device_id,
        s.imei,
        s.ue_address,
        s.apn,
        s.rat,
        "null" if s.location is None else json_text(s.location),
        time(s.started_at),
        time(s.updated_at),
        time(s.stopped_at),
        s.stop_cause,
    )


def save(conn: Connection, sessions: Iterable[Session]) -> None:
    """Insert or update by (gateway, Acct-Session-Id), at most one of each key. On SQLite
    and PostgreSQL multi-row upserts (ON CONFLICT DO UPDATE) straight to the driver: two
    statements per session cost about 0.75 ms each, which capped accounting answered
    after its commit at about 1,300 a second, and SQLAlchemy's per-row type processing
    was then most of the writing left. Elsewhere update-then-insert, which needs no lock
    since the AAA process is the only writer of its gateways' sessions."""
    dialect = conn.dialect.name
    if takes_driver_rows(dialect):
        time = _Times(dialect == "sqlite")
        rows = [_row(s, time) for s in sessions]
        upsert_rows(conn, _t, _COLUMNS, rows, key=_KEY, kept=_KEPT)
        return
    for values in (_values(s) for s in sessions):
        done = conn.execute(
            update(_t)
            .where(
                _t.c.gateway_id == values["gateway_id"],
                _t.c.acct_session_id == values["acct_session_id"],
            )
            .values(**{k: v for k, v in values.items() if k != "started_at"})
        )
        if done.rowcount == 0:
            conn.execute(insert(_t).values(**values))


def load_live(conn: Connection) -> list[Session]:
    # Fetched whole and built from plain rows: per-row fetches and mappings were most of
    # a gateway's start with 1M live sessions.
    rows = conn.execute(select(*_FIELDS).where(_t.c.stopped_at.is_(None))).all()
    return [Session(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class SessionFilter:
    live: bool = True
    imsi: str | None = None
    iccid: str | None = None
    identity_id: str | None = None
    gateway_id: str | None = None
    ue_address: str | None = None


@dataclass(frozen=True, slots=True)
class StoredSession:
    id: int
    session: Session


def list_sessions(
    conn: Connection,
    org_id: str,
    f: SessionFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
    at: datetime | None = None,
) -> tuple[list[StoredSession], str | None]:
    """Newest first. `at` narrows to sessions live at that instant (who had an address then)."""
    check_limit(limit)
    stmt = select(_t).where(_t.c.org_id == org_id)
    if f.live:
        stmt = stmt.where(_t.c.stopped_at.is_(None))
    for column, value in (
        (_t.c.imsi, f.imsi),
        (_t.c.iccid, f.iccid),
        (_t.c.identity_id, f.identity_id),
        (_t.c.gateway_id, f.gateway_id),
        (_t.c.ue_address, f.ue_address),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if at is not None:
        stmt = stmt.where(
            _t.c.started_at <= at, (_t.c.stopped_at.is_(None)) | (_t.c.stopped_at > at)
        )
    if cursor is not None:
        stmt = stmt.where(_t.c.id < decode_cursor(cursor, int))
    rows = conn.execute(stmt.order_by(_t.c.id.desc()).limit(limit + 1)).mappings().all()
    page = [StoredSession(m["id"], _session(m)) for m in rows[:limit]]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else None
    return page, next_cursor
