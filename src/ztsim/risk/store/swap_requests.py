"""The `swap_requests` table: requests stored, decided, read by id and listed newest
first. No use cases here (`risk.store.swaps` has them); every read says the state as of
a given time, so a pending request past its expiry reads as expired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, insert, or_, select, update

from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.risk.approvals import RequestState, SwapKind, SwapRequest

_t = schema.swap_requests


def _row(m: RowMapping) -> SwapRequest:
    return SwapRequest(
        m["id"],
        m["org_id"],
        SwapKind(m["kind"]),
        m["target"],
        dict(m["params"]),
        RequestState(m["state"]),
        m["requested_by"],
        m["requester"],
        m["requested_at"],
        m["expires_at"],
        m["decided_by"],
        m["decided_at"],
        None if m["result"] is None else dict(m["result"]),
    )


def insert_request(conn: Connection, request: SwapRequest) -> None:
    """Store a new request; refused while another for the same target is pending."""
    open_ = conn.execute(
        select(_t.c.id, _t.c.expires_at).where(
            _t.c.org_id == request.org_id,
            _t.c.target == request.target,
            _t.c.state == RequestState.PENDING.value,
        )
    ).all()
    if any(row.expires_at > request.requested_at for row in open_):
        raise Conflict("a swap request for this is already pending")
    conn.execute(
        insert(_t).values(
            id=request.id,
            org_id=request.org_id,
            kind=request.kind.value,
            target=request.target,
            params=dict(request.params),
            state=request.state.value,
            requested_by=request.requested_by,
            requester=request.requester,
            requested_at=request.requested_at,
            expires_at=request.expires_at,
        )
    )


def locked(conn: Connection, org_id: str, request_id: str) -> SwapRequest:
    """The request as stored, its row locked until commit (two deciders take turns)."""
    row = conn.execute(
        select(_t).where(_t.c.org_id == org_id, _t.c.id == request_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound("swap request not found")
    return _row(row._mapping)


def save(conn: Connection, request: SwapRequest) -> None:
    """Store a decided request's state, decider and result."""
    conn.execute(
        update(_t)
        .where(_t.c.org_id == request.org_id, _t.c.id == request.id)
        .values(
            state=request.state.value,
            decided_by=request.decided_by,
            decided_at=request.decided_at,
            result=None if request.result is None else dict(request.result),
        )
    )


def get_request(conn: Connection, org_id: str, request_id: str, now: datetime) -> SwapRequest:
    """The request with its state as of `now` (a pending one past its expiry: expired)."""
    row = conn.execute(select(_t).where(_t.c.org_id == org_id, _t.c.id == request_id)).first()
    if row is None:
        raise NotFound("swap request not found")
    return _row(row._mapping).as_of(now)


def _state_filter(state: RequestState, now: datetime) -> Any:
    pending = _t.c.state == RequestState.PENDING.value
    if state is RequestState.PENDING:
        return and_(pending, _t.c.expires_at > now)
    if state is RequestState.EXPIRED:
        return or_(and_(pending, _t.c.expires_at <= now), _t.c.state == state.value)
    return _t.c.state == state.value


def _cursor_key(cursor: str) -> tuple[datetime, str]:
    time, _, request_id = str(decode_cursor(cursor, str)).partition("|")
    try:
        at = datetime.fromisoformat(time)
    except ValueError:
        raise InvalidInput("cursor is not one this API issued") from None
    if not request_id or at.tzinfo is None:
        raise InvalidInput("cursor is not one this API issued")
    return at, request_id


def list_requests(
    conn: Connection,
    org_id: str,
    now: datetime,
    *,
    state: RequestState | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[SwapRequest], str | None]:
    """Newest first, each as of `now`; keyset pages on (requested_at, id)."""
    check_limit(limit)
    stmt = select(_t).where(_t.c.org_id == org_id)
    if state is not None:
        stmt = stmt.where(_state_filter(state, now))
    if cursor is not None:
        at, after = _cursor_key(cursor)
        stmt = stmt.where(
            or_(_t.c.requested_at < at, and_(_t.c.requested_at == at, _t.c.id > after))
        )
    rows = conn.execute(stmt.order_by(_t.c.requested_at.desc(), _t.c.id).limit(limit + 1)).all()
    page = [_row(r._mapping).as_of(now) for r in rows[:limit]]
    last = page[-1] if page and len(rows) > limit else None
    next_cursor = encode_cursor(f"{last.requested_at.isoformat()}|{last.id}") if last else None
    return page, next_cursor
