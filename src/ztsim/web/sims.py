"""What the SIM pages read: a search over the org's SIMs, one SIM with its person, its
bound device and its live sessions (the person an `assign` names: `person_key`).

Every read is scoped to the viewer's org. The search is the one read the inventory's
repository has no function for (it filters by exact values only); it pages by ICCID,
as `GET /api/v1/sims` does, with the same opaque cursors. No secret column (K, OPc,
PIN, PUK) is selected by anything here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.errors import NotFound
from ztsim.identity import repository as identities
from ztsim.identity.models import Identity
from ztsim.inventory import repository as inventory
from ztsim.inventory.lifecycle import SimAction, allowed_actions
from ztsim.inventory.models import Device, Sim
from ztsim.radius.store import registry
from ztsim.sessions import repository as sessions

PAGE_SIZE = 50
MAX_QUERY = 100  # the search box's maxlength: no identifier or name is longer
LIVE_SHOWN = 20  # a SIM holds one bearer per APN: a handful at most
_s = schema.sims
_i = schema.identities
_r = schema.radius_sessions
# What people type around numbers: "+49 171-234 5678", "(0171) 2345".
_NUMBER_NOISE = re.compile(r"[\s+\-().]")


@dataclass(frozen=True, slots=True)
class SimRow:
    iccid: str
    imsi: str
    msisdn: str | None
    kind: str
    state: str
    person: str | None  # name, and email when there is one
    live: bool


@dataclass(frozen=True, slots=True)
class Found:
    query: str
    rows: list[SimRow]
    next_cursor: str | None


def normalized(query: str) -> str:
    return query.strip()[:MAX_QUERY]


def _matches(query: str) -> ColumnElement[bool]:
    """ICCID, IMSI or MSISDN by their first digits; a person by part of name or email."""
    needle = query.lower()
    person = or_(
        func.lower(_i.c.name).contains(needle, autoescape=True),
        func.lower(_i.c.email).contains(needle, autoescape=True),
    )
    digits = _NUMBER_NOISE.sub("", query)
    if not digits.isdigit():
        return person
    return or_(
        _s.c.iccid.startswith(digits, autoescape=True),
        _s.c.imsi.startswith(digits, autoescape=True),
        _s.c.msisdn.startswith(digits, autoescape=True),
        person,
    )


def _person(name: str | None, email: str | None) -> str | None:
    if name is None:
        return None
    return f"{name} <{email}>" if email else name


def _live(conn: Connection, org_id: str, iccids: list[str]) -> set[str]:
    if not iccids:
        return set()
    found = conn.scalars(
        select(_r.c.iccid)
        .where(_r.c.org_id == org_id, _r.c.stopped_at.is_(None), _r.c.iccid.in_(iccids))
        .distinct()
    )
    return {str(i) for i in found}


def search(
    conn: Connection, org_id: str, query: str, *, limit: int = PAGE_SIZE, cursor: str | None = None
) -> Found:
    """The org's SIMs matching `query` (all of them when it is empty), by ICCID."""
    check_limit(limit)
    query = normalized(query)
    held_by = and_(_i.c.id == _s.c.identity_id, _i.c.org_id == _s.c.org_id)
    stmt = (
        select(_s.c.iccid, _s.c.imsi, _s.c.msisdn, _s.c.kind, _s.c.state, _i.c.name, _i.c.email)
        .select_from(_s.outerjoin(_i, held_by))
        .where(_s.c.org_id == org_id)
    )
    if query:
        stmt = stmt.where(_matches(query))
    if cursor is not None:
        stmt = stmt.where(_s.c.iccid > decode_cursor(cursor, str))
    rows = conn.execute(stmt.order_by(_s.c.iccid).limit(limit + 1)).all()
    page = rows[:limit]
    live = _live(conn, org_id, [r.iccid for r in page])
    found = [
        SimRow(
            r.iccid, r.imsi, r.msisdn, r.kind, r.state, _person(r.name, r.email), r.iccid in live
        )
        for r in page
    ]
    more = len(rows) > limit
    return Found(query, found, encode_cursor(found[-1].iccid) if more and found else None)


@dataclass(frozen=True, slots=True)
class LiveSession:
    address: str | None
    apn: str | None
    gateway: str  # its name, or its id when it was deleted meanwhile
    imei: str | None
    started_at: datetime
    updated_at: datetime


def live_sessions(conn: Connection, org_id: str, iccid: str) -> list[LiveSession]:
    """The SIM's sessions not stopped yet, newest first, as the API's /sessions reads them."""
    page, _ = sessions.list_sessions(
        conn, org_id, sessions.SessionFilter(live=True, iccid=iccid), limit=LIVE_SHOWN
    )
    names: dict[str, str] = {}
    out = []
    for stored in page:
        s = stored.session
        if s.gateway_id not in names:
            try:
                names[s.gateway_id] = registry.get_gateway(conn, org_id, s.gateway_id).name
            except NotFound:
                names[s.gateway_id] = s.gateway_id
        out.append(
            LiveSession(
                s.ue_address, s.apn, names[s.gateway_id], s.imei, s.started_at, s.updated_at
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class SimFacts:
    sim: Sim
    person: Identity | None
    device: Device | None
    actions: list[SimAction] = field(default_factory=list)  # allowed from its state


def read_sim(conn: Connection, org_id: str, iccid: str) -> SimFacts:
    """The SIM with its person and bound device; NotFound for another org's ICCID too."""
    sim = inventory.get_sim(conn, org_id, iccid)
    person = (
        None if sim.identity_id is None else identities.get_identity(conn, org_id, sim.identity_id)
    )
    device = None if sim.device_id is None else inventory.get_device(conn, org_id, sim.device_id)
    return SimFacts(sim, person, device, allowed_actions(sim.state))
