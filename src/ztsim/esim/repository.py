"""eSIM orders in the database. Every query is scoped by org. Nothing read here returns
the matching ID in clear: callers that need it open `sealed_matching_id` themselves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.errors import Conflict, NotFound
from ztsim.esim.orders import OrderState
from ztsim.inventory.lifecycle import SimState
from ztsim.inventory.models import SimKind

_o = schema.esim_orders
_s = schema.sims
_d = schema.devices

_COLUMNS = (
    _o.c.id,
    _o.c.org_id,
    _o.c.identity_id,
    _o.c.iccid,
    _o.c.eid,
    _o.c.state,
    _o.c.smdp_address,
    _o.c.smdp_oid,
    (_o.c.confirmation_hash.is_not(None)).label("confirmation_required"),
    _o.c.expires_at,
    _o.c.replaces_id,
    _o.c.replaced_by,
    _o.c.reason,
    _o.c.created_by,
    _o.c.created_at,
    _o.c.updated_at,
)


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    org_id: str
    identity_id: str
    iccid: str
    eid: str | None
    state: OrderState  # as stored; see `orders.effective_state` for expiry
    smdp_address: str
    smdp_oid: str | None
    confirmation_required: bool
    expires_at: datetime
    replaces_id: str | None
    replaced_by: str | None
    reason: str
    created_by: str
    created_at: datetime
    updated_at: datetime


def _order(m: RowMapping) -> Order:
    return Order(
        m["id"],
        m["org_id"],
        m["identity_id"],
        m["iccid"],
        m["eid"],
        OrderState(m["state"]),
        m["smdp_address"],
        m["smdp_oid"],
        bool(m["confirmation_required"]),
        m["expires_at"],
        m["replaces_id"],
        m["replaced_by"],
        m["reason"],
        m["created_by"],
        m["created_at"],
        m["updated_at"],
    )


def insert_order(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(_o).values(**values))


def get_order(conn: Connection, org_id: str, order_id: str) -> Order:
    row = conn.execute(select(*_COLUMNS).where(_o.c.org_id == org_id, _o.c.id == order_id)).first()
    if row is None:
        raise NotFound("eSIM order not found")
    return _order(row._mapping)


def get_order_by_iccid(conn: Connection, org_id: str, iccid: str) -> Order:
    row = conn.execute(select(*_COLUMNS).where(_o.c.org_id == org_id, _o.c.iccid == iccid)).first()
    if row is None:
        raise NotFound("no eSIM order for that ICCID")
    return _order(row._mapping)


@dataclass(frozen=True, slots=True)
class OrderFilter:
    state: OrderState | None = None
    identity_id: str | None = None


def list_orders(
    conn: Connection, org_id: str, f: OrderFilter, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[Order], str | None]:
    """Ordered by id; keyset pagination."""
    check_limit(limit)
    stmt = select(*_COLUMNS).where(_o.c.org_id == org_id)
    if f.state is not None:
        stmt = stmt.where(_o.c.state == f.state.value)
    if f.identity_id is not None:
        stmt = stmt.where(_o.c.identity_id == f.identity_id)
    if cursor is not None:
        stmt = stmt.where(_o.c.id > decode_cursor(cursor, str))
    rows = conn.execute(stmt.order_by(_o.c.id).limit(limit + 1)).all()
    page = [_order(r._mapping) for r in rows[:limit]]
    return page, (encode_cursor(page[-1].id) if len(rows) > limit else None)


def orders_of(conn: Connection, org_id: str, identity_ids: Sequence[str]) -> list[Order]:
    """Every order of these identities, oldest first."""
    found: list[Order] = []
    for start in range(0, len(identity_ids), 500):
        chunk = list(identity_ids[start : start + 500])
        rows = conn.execute(
            select(*_COLUMNS)
            .where(_o.c.org_id == org_id, _o.c.identity_id.in_(chunk))
            .order_by(_o.c.created_at, _o.c.id)
        )
        found.extend(_order(r._mapping) for r in rows)
    return found


def sealed_matching_ids(
    conn: Connection, org_id: str, order_ids: Sequence[str]
) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for start in range(0, len(order_ids), 500):
        chunk = list(order_ids[start : start + 500])
        rows = conn.execute(
            select(_o.c.id, _o.c.matching_id_sealed).where(
                _o.c.org_id == org_id, _o.c.id.in_(chunk)
            )
        )
        out.update({r.id: r.matching_id_sealed for r in rows})
    return out


def find_by_matching_id_hash(conn: Connection, digest: bytes) -> Order | None:
    """Across orgs on purpose: matching IDs are unique platform-wide."""
    row = conn.execute(select(*_COLUMNS).where(_o.c.matching_id_hash == digest)).first()
    return None if row is None else _order(row._mapping)


def change_state(
    conn: Connection,
    org_id: str,
    order_id: str,
    expected: OrderState,
    target: OrderState,
    now: datetime,
    **values: Any,
) -> None:
    """Compare-and-set on the state, so two concurrent reports cannot both win."""
    result = conn.execute(
        update(_o)
        .where(_o.c.org_id == org_id, _o.c.id == order_id, _o.c.state == expected.value)
        .values(state=target.value, updated_at=now, **values)
    )
    if result.rowcount != 1:
        raise Conflict("the eSIM order changed meanwhile; try again")


def first_stock_esim(conn: Connection, org_id: str) -> str | None:
    """The lowest-ICCID eSIM in stock (uses the (org_id, state, iccid) index)."""
    return conn.scalars(
        select(_s.c.iccid)
        .where(
            _s.c.org_id == org_id,
            _s.c.state == SimState.STOCK.value,
            _s.c.kind == SimKind.ESIM.value,
        )
        .order_by(_s.c.iccid)
        .limit(1)
    ).first()


def find_device_by_eid(conn: Connection, org_id: str, eid: str) -> tuple[str, str | None] | None:
    """(device id, owner id) of the org's device with this EID, if one is registered."""
    row = conn.execute(
        select(_d.c.id, _d.c.owner_id).where(_d.c.org_id == org_id, _d.c.eid == eid).limit(1)
    ).first()
    return None if row is None else (row.id, row.owner_id)


def resolve_identities(conn: Connection, org_id: str, keys: Sequence[str]) -> list[str]:
    """Identity ids for keys that are ids or email addresses, in order; NotFound names the
    first key that matches nothing."""
    _i = schema.identities
    found: list[str] = []
    for key in keys:
        column = _i.c.email if "@" in key else _i.c.id
        ident = conn.scalars(select(_i.c.id).where(_i.c.org_id == org_id, column == key)).first()
        if ident is None:
            raise NotFound(f"no identity {key!r} in this org")
        found.append(ident)
    return found
