"""A number's history: every SIM and device change behind an MSISDN, as CAMARA SIM Swap
and Device Swap answer from it, newest first.

Only the caller's org's history is read: a number that neither a SIM of the org holds
nor the org's history names is 404, whether another org holds it or nobody does, so the
route says nothing about other orgs' numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import Page
from ztsim.errors import NotFound
from ztsim.identity.roles import Permission, Principal
from ztsim.inventory import number_history
from ztsim.inventory.number_history import ChangeKind, NumberChange

router = APIRouter()
RiskRead = Annotated[Principal, Depends(require(Permission.RISK_READ))]
# E.164 with or without the '+': up to 15 digits, no leading 0 (ITU-T E.164 §6.1, §6.2.1).
Msisdn = Annotated[str, Path(pattern=r"^\+?[1-9][0-9]{0,14}$")]


class NumberChangeOut(BaseModel):
    id: int
    msisdn: str = Field(description="The number, in E.164 with '+'.")
    kind: ChangeKind = Field(
        description="sim: the number moved to another SIM; device: its "
        "SIM was seen in another device."
    )
    at: datetime
    actor: str
    iccid: str = Field(description="The SIM on the number after the change.")
    previous: str | None = Field(
        description="The ICCID (sim) or IMEI (device) before; null: the first one."
    )
    current: str = Field(description="The ICCID (sim) or IMEI (device) after.")


def _out(change: NumberChange) -> NumberChangeOut:
    return NumberChangeOut(
        id=change.id,
        msisdn="+" + change.msisdn,
        kind=change.kind,
        at=change.at,
        actor=change.actor,
        iccid=change.iccid,
        previous=change.previous,
        current=change.current,
    )


@router.get("/numbers/{msisdn}/changes", tags=["risk"])
def number_changes(
    ctx: Ctx,
    p: RiskRead,
    msisdn: Msisdn,
    kind: Literal["sim", "device"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[NumberChangeOut]:
    """A number's history, newest first: each time it moved to another SIM (`sim`) or its
    SIM was seen in another device (`device`), as CAMARA SIM Swap and Device Swap answer
    from it; `msisdn` in E.164, with or without '+'. Admins, operators and auditors
    (`risk:read`); 404 for a number that no SIM of the org holds and its history does not
    name, whether or not another org holds it."""
    with ctx.read() as conn:
        items, next_cursor = number_history.changes(
            conn,
            p.org_id,
            msisdn,
            kind=None if kind is None else ChangeKind(kind),
            limit=limit,
            cursor=cursor,
        )
        if not items and cursor is None and number_history.sim_of(conn, p.org_id, msisdn) is None:
            raise NotFound("number not found")
    return Page[NumberChangeOut](items=[_out(c) for c in items], next_cursor=next_cursor)
