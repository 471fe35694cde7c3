"""What the detectors found and the response each got; an admin lifts a clone suspicion.

Findings are read by who reads risk (admins, operators, auditors). Lifting
`sim.clone_suspected` is an admin's (`risk:write`): it undoes a `restrict` response. A
suspended SIM stays suspended until resumed through the inventory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import Page
from ztsim.identity.roles import Permission, Principal
from ztsim.risk.settings import Detector
from ztsim.risk.store import findings, responses

router = APIRouter()
RiskRead = Annotated[Principal, Depends(require(Permission.RISK_READ))]
RiskWrite = Annotated[Principal, Depends(require(Permission.RISK_WRITE))]


class FindingOut(BaseModel):
    id: int
    detector: Detector
    iccid: str
    at: datetime = Field(description="When the signal that made it was recorded.")
    source_event_id: int = Field(description="The event the detector read (GET /events).")
    response: str = Field(description="The org's response for this detector at the time.")
    detail: dict[str, Any] = Field(
        description="What the detector saw, and `outcome`: alerted, restricted, suspended, "
        "unchanged (nothing left to do) or unknown_sim."
    )


@router.get("/risk/findings", tags=["risk"])
def list_findings(
    ctx: Ctx,
    p: RiskRead,
    iccid: str | None = None,
    detector: Detector | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[FindingOut]:
    """Risk findings, newest first, a page at a time: what a detector (twin session, SQN
    anomaly, IMEI flapping, impossible travel) saw on one of the org's SIMs and the response
    taken, filtered by `iccid` or `detector`. Admins, operators and auditors (`risk:read`)."""
    with ctx.read() as conn:
        items, next_cursor = findings.list_findings(
            conn, p.org_id, iccid=iccid, detector=detector, limit=limit, cursor=cursor
        )
    return Page[FindingOut](
        items=[
            FindingOut(
                id=f.id,
                detector=f.detector,
                iccid=f.iccid,
                at=f.at,
                source_event_id=f.source_event_id,
                response=f.response.value,
                detail=dict(f.detail),
            )
            for f in items
        ],
        next_cursor=next_cursor,
    )


@router.delete("/sims/{iccid}/clone-suspicion", status_code=204, tags=["risk"])
def clear_clone_suspicion(ctx: Ctx, p: RiskWrite, iccid: str) -> Response:
    """Lift `sim.clone_suspected` (idempotent: 204 whether or not it was set); the planes
    re-read the SIM at once. A SIM that was suspended stays suspended until it is resumed.
    Admins only (`risk:write`); 404 for a SIM not in the org."""
    with ctx.tx() as conn:
        responses.clear_suspicion(conn, p.org_id, iccid, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)
