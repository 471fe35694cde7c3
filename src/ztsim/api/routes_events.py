"""The event log: filter by kind, subject and time, newest first, cursor pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from sqlalchemy import Connection

from ztsim.api.deps import Ctx, EventsRead
from ztsim.api.schemas import EventOut, Page
from ztsim.events import store
from ztsim.events.schema import subject_of
from ztsim.identity.roles import Principal
from ztsim.inventory import repository as inventory

router = APIRouter()


def _own_subjects(conn: Connection, p: Principal) -> list[str]:
    """Everything a `self` token may read events about: its identity, SIMs and devices."""
    assert p.own_identity is not None
    subjects = [subject_of("identity", p.own_identity)]
    sims, _ = inventory.list_sims(
        conn, p.org_id, inventory.SimFilter(identity_id=p.own_identity), limit=1000
    )
    devices, _ = inventory.list_devices(conn, p.org_id, owner_id=p.own_identity, limit=1000)
    subjects += [subject_of("sim", s.iccid) for s in sims]
    subjects += [subject_of("device", d.id) for d in devices]
    return subjects


@router.get("/events", tags=["events"])
def list_events(
    ctx: Ctx,
    p: EventsRead,
    kind: str | None = None,
    subject: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[EventOut]:
    """The event log, newest first, a page at a time: the audit event of every change,
    attaches and their refusals, sessions, DNS queries (as the org's privacy mode logs them)
    and risk findings. Filter by `kind` (`sim.suspend`), `subject` (`sim:<ICCID>`), `since`
    (inclusive) and `until` (exclusive). Admins, analysts, auditors and self
    (`events:read`); a self token sees only events about its identity, its SIMs and its
    devices."""
    with ctx.read() as conn:
        subjects = _own_subjects(conn, p) if p.own_identity is not None else None
        items, next_cursor = store.query(
            conn,
            p.org_id,
            store.EventQuery(
                kind=kind, subject=subject, since=since, until=until, subjects_in=subjects
            ),
            limit=limit,
            cursor=cursor,
        )
    return Page[EventOut](
        items=[EventOut.model_validate(e, from_attributes=True) for e in items],
        next_cursor=next_cursor,
    )
