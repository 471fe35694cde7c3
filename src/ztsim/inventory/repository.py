"""SIMs, devices and stock imports in the database. Every query is scoped by org."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, insert, or_, select, update

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.inventory.lifecycle import SimState
from ztsim.inventory.models import Device, Sim, SimKind, StockImport

_s = schema.sims
_d = schema.devices
_imp = schema.stock_imports
_risk = schema.risk_settings

# An org without risk settings: 24 hours of `sim.swap_recent` after a swap. The same
# default as ztsim.risk.settings.DEFAULT_COOLING_OFF (a layer above, which we cannot import).
DEFAULT_COOLING_OFF = timedelta(hours=24)

_SIM_COLUMNS = (
    _s.c.iccid,
    _s.c.org_id,
    _s.c.imsi,
    _s.c.msisdn,
    _s.c.kind,
    _s.c.state,
    _s.c.identity_id,
    _s.c.device_id,
    _s.c.bound_at,
    _s.c.import_id,
    _s.c.created_at,
    _s.c.updated_at,
)


def _sim(m: RowMapping) -> Sim:
    return Sim(
        m["iccid"],
        m["org_id"],
        m["imsi"],
        m["msisdn"],
        SimKind(m["kind"]),
        SimState(m["state"]),
        m["identity_id"],
        m["device_id"],
        m["bound_at"],
        m["import_id"],
        m["created_at"],
        m["updated_at"],
    )


@dataclass(frozen=True, slots=True)
class SimFilter:
    state: SimState | None = None
    kind: SimKind | None = None
    identity_id: str | None = None
    imsi: str | None = None


def get_sim(conn: Connection, org_id: str, iccid: str) -> Sim:
    row = conn.execute(
        select(*_SIM_COLUMNS).where(_s.c.org_id == org_id, _s.c.iccid == iccid)
    ).first()
    if row is None:
        raise NotFound("SIM not found")
    return _sim(row._mapping)


def list_sims(
    conn: Connection, org_id: str, f: SimFilter, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[Sim], str | None]:
    """Ordered by ICCID; keyset pagination on the (org_id, iccid) index."""
    check_limit(limit)
    stmt = select(*_SIM_COLUMNS).where(_s.c.org_id == org_id)
    if f.state is not None:
        stmt = stmt.where(_s.c.state == f.state.value)
    if f.kind is not None:
        stmt = stmt.where(_s.c.kind == f.kind.value)
    if f.identity_id is not None:
        stmt = stmt.where(_s.c.identity_id == f.identity_id)
    if f.imsi is not None:
        stmt = stmt.where(_s.c.imsi == f.imsi)
    if cursor is not None:
        stmt = stmt.where(_s.c.iccid > decode_cursor(cursor, str))
    rows = conn.execute(stmt.order_by(_s.c.iccid).limit(limit + 1)).all()
    page = [_sim(r._mapping) for r in rows[:limit]]
    return page, (encode_cursor(page[-1].iccid) if len(rows) > limit else None)


def existing(conn: Connection, column: str, values: Sequence[str]) -> set[str]:
    """Which of `values` already exist in a unique SIM column, across all orgs."""
    col = _s.c[column]
    found: set[str] = set()
    for start in range(0, len(values), 500):
        chunk = list(values[start : start + 500])
        found.update(conn.scalars(select(col).where(col.in_(chunk))))
    return found


def insert_sims(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    conn.execute(insert(_s), list(rows))


def change_state(
    conn: Connection,
    org_id: str,
    iccid: str,
    expected: SimState,
    target: SimState,
    now: datetime,
    **values: Any,
) -> None:
    """Compare-and-set on the state, so two concurrent transitions cannot both win."""
    result = conn.execute(
        update(_s)
        .where(_s.c.org_id == org_id, _s.c.iccid == iccid, _s.c.state == expected.value)
        .values(state=target.value, updated_at=now, **values)
    )
    if result.rowcount != 1:
        raise Conflict("the SIM changed meanwhile; try again")


def set_binding(
    conn: Connection, org_id: str, iccid: str, device_id: str | None, now: datetime
) -> None:
    conn.execute(
        update(_s)
        .where(_s.c.org_id == org_id, _s.c.iccid == iccid)
        .values(device_id=device_id, bound_at=now if device_id else None, updated_at=now)
    )


def set_msisdn(
    conn: Connection, org_id: str, iccid: str, msisdn: str | None, now: datetime
) -> None:
    """Put a number on a SIM (None: take it off). sims.msisdn is unique across orgs: a
    number moving between SIMs is cleared from the one before it is set on the other."""
    conn.execute(
        update(_s)
        .where(_s.c.org_id == org_id, _s.c.iccid == iccid)
        .values(msisdn=msisdn, updated_at=now)
    )


def cooling_off(conn: Connection, org_id: str) -> timedelta:
    """The org's cooling-off after a swap (`risk_settings.cooling_off_s`), or the default
    for an org that has not set its risk settings."""
    seconds = conn.execute(select(_risk.c.cooling_off_s).where(_risk.c.org_id == org_id)).scalar()
    return DEFAULT_COOLING_OFF if seconds is None else timedelta(seconds=int(seconds))


def mark_swapped(conn: Connection, org_id: str, iccid: str, now: datetime) -> None:
    """Record that this SIM replaced another for its subscriber (a re-issue, a SIM swap):
    policies read it as `sim.swap_age`, and as `sim.swap_recent` until the org's
    cooling-off ends. The end is fixed now, so a later change of the setting does not
    reopen or shorten this swap. Publishes nothing: every caller changes this SIM's state
    in the same use case (its assignment), whose SIM change makes the planes re-read it."""
    until = now + cooling_off(conn, org_id)
    conn.execute(
        update(_s)
        .where(_s.c.org_id == org_id, _s.c.iccid == iccid)
        .values(swapped_at=now, swap_recent_until=until)
    )


# -- devices ------------------------------------------------------------------------------


def _device(m: RowMapping) -> Device:
    return Device(
        m["id"],
        m["org_id"],
        m["imei"],
        m["eid"],
        m["owner_id"],
        m["name"],
        m["created_at"],
        m["serial_number"],
    )


def _serial_free(conn: Connection, org_id: str, serial_number: str, but: str | None) -> None:
    taken = conn.execute(
        select(_d.c.id).where(_d.c.org_id == org_id, _d.c.serial_number == serial_number)
    ).scalar()
    if taken is not None and taken != but:
        raise Conflict("a device with that serial number is registered")


def create_device(
    conn: Connection,
    org_id: str,
    *,
    imei: str,
    eid: str | None,
    owner_id: str | None,
    name: str,
    now: datetime,
    serial_number: str | None = None,
) -> Device:
    taken = conn.execute(select(_d.c.id).where(_d.c.org_id == org_id, _d.c.imei == imei)).first()
    if taken is not None:
        raise Conflict("a device with that IMEI is registered")
    if serial_number is not None:
        _serial_free(conn, org_id, serial_number, None)
    device_id = new_id()
    conn.execute(
        insert(_d).values(
            id=device_id,
            org_id=org_id,
            imei=imei,
            eid=eid,
            owner_id=owner_id,
            name=name,
            serial_number=serial_number,
            created_at=now,
        )
    )
    return get_device(conn, org_id, device_id)


def update_device(
    conn: Connection, org_id: str, device_id: str, values: dict[str, str | None]
) -> Device:
    """Set a device's `name` and/or `serial_number` (None: no serial number)."""
    get_device(conn, org_id, device_id)
    serial = values.get("serial_number")
    if serial is not None:
        _serial_free(conn, org_id, serial, device_id)
    if values:
        conn.execute(update(_d).where(_d.c.org_id == org_id, _d.c.id == device_id).values(**values))
    return get_device(conn, org_id, device_id)


def get_device(conn: Connection, org_id: str, device_id: str) -> Device:
    row = conn.execute(select(_d).where(_d.c.org_id == org_id, _d.c.id == device_id)).first()
    if row is None:
        raise NotFound("device not found")
    return _device(row._mapping)


def find_device_by_imei(conn: Connection, org_id: str, imei: str) -> Device | None:
    row = conn.execute(select(_d).where(_d.c.org_id == org_id, _d.c.imei == imei)).first()
    return None if row is None else _device(row._mapping)


def list_devices(
    conn: Connection,
    org_id: str,
    *,
    owner_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Device], str | None]:
    check_limit(limit)
    stmt = select(_d).where(_d.c.org_id == org_id)
    if owner_id is not None:
        stmt = stmt.where(_d.c.owner_id == owner_id)
    if cursor is not None:
        stmt = stmt.where(_d.c.id > decode_cursor(cursor, str))
    rows = conn.execute(stmt.order_by(_d.c.id).limit(limit + 1)).all()
    page = [_device(r._mapping) for r in rows[:limit]]
    return page, (encode_cursor(page[-1].id) if len(rows) > limit else None)


# -- stock imports ------------------------------------------------------------------------


def _import(m: RowMapping) -> StockImport:
    stored = m["errors"]
    # Stored as {"total": n, "first": [...]}; rows from before the cap hold a plain list.
    first = list(stored["first"]) if isinstance(stored, dict) else list(stored)
    total = int(stored["total"]) if isinstance(stored, dict) else len(first)
    return StockImport(
        m["id"],
        m["org_id"],
        m["filename"],
        m["status"],
        m["rows"],
        m["imported"],
        first,
        m["actor"],
        m["created_at"],
        total,
    )


def record_import(conn: Connection, record: StockImport) -> None:
    conn.execute(
        insert(_imp).values(
            id=record.id,
            org_id=record.org_id,
            filename=record.filename,
            status=record.status,
            rows=record.rows,
            imported=record.imported,
            errors={"total": record.error_count, "first": record.errors},
            actor=record.actor,
            created_at=record.created_at,
        )
    )


def get_import(conn: Connection, org_id: str, import_id: str) -> StockImport:
    row = conn.execute(select(_imp).where(_imp.c.org_id == org_id, _imp.c.id == import_id)).first()
    if row is None:
        raise NotFound("stock import not found")
    return _import(row._mapping)


def list_imports(
    conn: Connection, org_id: str, *, limit: int = 100, cursor: str | None = None
) -> tuple[list[StockImport], str | None]:
    """Newest first; keyset pagination on (created_at, id), the cursor holding both."""
    check_limit(limit)
    stmt = select(_imp).where(_imp.c.org_id == org_id)
    if cursor is not None:
        after_time, after_id = _import_key(str(decode_cursor(cursor, str)))
        stmt = stmt.where(
            or_(
                _imp.c.created_at < after_time,
                and_(_imp.c.created_at == after_time, _imp.c.id > after_id),
            )
        )
    rows = conn.execute(stmt.order_by(_imp.c.created_at.desc(), _imp.c.id).limit(limit + 1)).all()
    page = [_import(r._mapping) for r in rows[:limit]]
    more = len(rows) > limit
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor(f"{last.created_at.isoformat()}|{last.id}") if more and last else None
    )
    return page, next_cursor


def _import_key(key: str) -> tuple[datetime, str]:
    time, _, import_id = key.partition("|")
    try:
        at = datetime.fromisoformat(time)
    except ValueError:
        raise InvalidInput("cursor is not one this API issued") from None
    if not import_id or at.tzinfo is None:
        raise InvalidInput("cursor is not one this API issued")
    return at, import_id
