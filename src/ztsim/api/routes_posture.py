"""Device posture: MDM connectors report what their MDM knows of each device; policies
read it through posture checks (`device.managed and device.os_version >= "17.0"`).

A connector holds a `posture` token: it may report, and read nothing back. Admins also
read and forget reports; auditors read; a `self` token reads its own devices' only.
Forgetting a report needs both posture permissions, so a connector cannot. Reports come
in ztsim's own shape or, with `?format=`, as Intune's or Jamf's device records
(`ztsim.policy.posture`); `docs/posture.md` has the mappings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, Field

from ztsim.api.deps import Ctx, require
from ztsim.errors import NotFound
from ztsim.identity.roles import Permission, Principal
from ztsim.inventory import repository as inventory
from ztsim.policy import posture
from ztsim.policy.store import posture as store

router = APIRouter()
PostureRead = Annotated[Principal, Depends(require(Permission.POSTURE_READ))]
PostureWrite = Annotated[Principal, Depends(require(Permission.POSTURE_WRITE))]
Format = Annotated[
    posture.Source,
    Query(alias="format", description="The shape of the body: ztsim's, Intune's or Jamf's."),
]


class PostureResult(BaseModel):
    applied: int = Field(description="Devices whose posture changed.")
    unmatched: list[int] = Field(description="Reports naming no device of the org, by index.")
    ignored: list[int] = Field(description="Reports no newer than the stored one, by index.")


class PostureOut(BaseModel):
    device_id: str
    source: str
    attributes: dict[str, bool | int | float | str]
    observed_at: datetime
    expires_at: datetime | None
    received_at: datetime
    expired: bool = Field(description="Past its expiry: every check reading it fails.")


@router.post("/posture", tags=["posture"])
def report_posture(
    ctx: Ctx,
    p: PostureWrite,
    body: Annotated[dict[str, Any], Body()],
    fmt: Format = posture.Source.GENERIC,
) -> PostureResult:
    """Record device posture from an MDM, in ztsim's shape or as Intune's or Jamf's device
    records (`format`): one report, or up to 1000 (`reports`, Graph's `value` page, Jamf's
    `results`). Each device's newest report wins, and the gateways re-read the devices whose
    posture changed at once; reports naming no device of the org are listed as `unmatched`,
    not refused. MDM connectors' `posture` tokens and admins (`posture:write`)."""
    now = ctx.clock()
    reports = posture.parse(fmt, body, now)
    with ctx.tx() as conn:
        result = store.record(conn, p.org_id, reports, actor=p.actor, now=now)
    return PostureResult(
        applied=len(result.applied), unmatched=result.unmatched, ignored=result.ignored
    )


@router.get("/devices/{device_id}/posture", tags=["posture"])
def get_posture(ctx: Ctx, p: PostureRead, device_id: str) -> PostureOut:
    """A device's last posture report: its source, attributes, when it was observed and
    whether it has expired. Admins, auditors and self (`posture:read`); a self token reads
    its own devices' only. 404 when the device has no report, is another org's or, for a
    self token, is not its own."""
    now = ctx.clock()
    with ctx.read() as conn:
        if p.own_identity is not None:
            # Another person's device does not exist for a `self` token.
            device = inventory.get_device(conn, p.org_id, device_id)
            if device.owner_id != p.own_identity:
                raise NotFound("device not found")
        stored = store.get(conn, p.org_id, device_id)
    report = stored.posture
    return PostureOut(
        device_id=stored.device_id,
        source=report.source,
        attributes=dict(report.attributes),
        observed_at=report.observed_at,
        expires_at=report.expires_at,
        received_at=stored.received_at,
        expired=report.expires_at is not None and now >= report.expires_at,
    )


@router.delete("/devices/{device_id}/posture", status_code=204, tags=["posture"])
def delete_posture(ctx: Ctx, p: PostureWrite, _reader: PostureRead, device_id: str) -> Response:
    """Forget a device's last posture report: the posture checks that read it fail as
    missing from then on, and the planes re-read the device at once. Admins only (both
    posture permissions, so a connector's `posture` token cannot); 404 when the device has
    no report or is not in the org."""
    with ctx.tx() as conn:
        store.delete(conn, p.org_id, device_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)
