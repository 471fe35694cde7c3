"""The overview's gateways and their health: each packet gateway of the org with its
live sessions and the last accounting it sent (`gateways:read` and `sessions:read`).

A gateway that keeps sessions live but has sent no accounting for long, or none at
all, is the one to look at. Counted in one grouped read of the session table, bounded
to live sessions and those stopped within `RECENT` (the table keeps ended sessions,
which would otherwise make the read grow without end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Integer, case, func, or_, select

from ztsim.db import schema
from ztsim.radius.store import registry

RECENT = timedelta(hours=24)
_s = schema.radius_sessions


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    gateway: registry.Gateway
    live: int
    last_accounting: datetime | None  # None: none within RECENT


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def read(conn: Connection, org_id: str, now: datetime) -> list[GatewayHealth]:
    live = func.sum(case((_s.c.stopped_at.is_(None), 1), else_=0), type_=Integer)
    stmt = (
        select(_s.c.gateway_id, live, func.max(_s.c.updated_at), func.max(_s.c.stopped_at))
        .where(
            _s.c.org_id == org_id, or_(_s.c.stopped_at.is_(None), _s.c.stopped_at >= now - RECENT)
        )
        .group_by(_s.c.gateway_id)
    )
    seen = {row[0]: (int(row[1] or 0), _latest(row[2], row[3])) for row in conn.execute(stmt)}
    out = []
    for g in registry.list_gateways(conn, org_id):
        count, last = seen.get(g.id, (0, None))
        out.append(GatewayHealth(g, count, last))
    return out
