"""Where a background reader of the risk context got to (`risk_cursors`), and the SIM
changes of numbers it reads (`number_changes`, written by the inventory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ztsim.db import schema

_c = schema.risk_cursors
_n = schema.number_changes
SIM = "sim"  # number_changes.kind when the number moved to another SIM


@dataclass(frozen=True, slots=True)
class SimChange:
    id: int
    org_id: str
    msisdn: str  # digits, no "+" (the sims table's form)
    at: datetime
    iccid: str


def stored(conn: Connection, name: str) -> int | None:
    """The reader's position, or None before its first start."""
    value = conn.execute(select(_c.c.position).where(_c.c.name == name)).scalar()
    return None if value is None else int(value)


def position(conn: Connection, name: str) -> int:
    return stored(conn, name) or 0


def advance(conn: Connection, name: str, to: int, now: datetime) -> None:
    """Move the cursor forward to `to` (never back)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(_c)
        .values(name=name, position=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    conn.execute(
        update(_c).where(_c.c.name == name, _c.c.position < to).values(position=to, updated_at=now)
    )


def sim_changes_after(conn: Connection, after_id: int, limit: int) -> list[SimChange]:
    """SIM changes of every org with an id above `after_id`, in id order."""
    rows = conn.execute(
        select(_n.c.id, _n.c.org_id, _n.c.msisdn, _n.c.at, _n.c.iccid)
        .where(_n.c.id > after_id, _n.c.kind == SIM)
        .order_by(_n.c.id)
        .limit(limit)
    ).all()
    return [SimChange(r.id, r.org_id, r.msisdn, r.at, r.iccid) for r in rows]
