"""Risk settings, swap requests (the two-person rule) and physical SIM replacement.

A swap (an eSIM re-issue, a SIM replacement) answers 202 with a pending request when the
org requires approval: nothing changes until a second admin approves it here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from ztsim.api.context import ApiContext
from ztsim.api.deps import Ctx, SimsWrite, require
from ztsim.api.schemas import Page, Reason, Request, RequiredReason, SimOut
from ztsim.errors import Conflict
from ztsim.identity.roles import Permission, Principal
from ztsim.risk.approvals import RequestState, SwapRequest, requester_key
from ztsim.risk.settings import RiskSettings
from ztsim.risk.store import swaps
from ztsim.risk.store.settings import get_settings, put_settings

router = APIRouter()
RiskRead = Annotated[Principal, Depends(require(Permission.RISK_READ))]
RiskWrite = Annotated[Principal, Depends(require(Permission.RISK_WRITE))]
SwapsApprove = Annotated[Principal, Depends(require(Permission.SWAPS_APPROVE))]
Limit = Annotated[int, Query(ge=1, le=1000)]
IccidText = Annotated[str, StringConstraints(pattern=r"^[0-9]{18,20}$")]
Duration = Annotated[str, StringConstraints(max_length=32)]


class DetectorIn(Request):
    response: Annotated[str, StringConstraints(max_length=16)] | None = None
    devices: int | None = None
    window: Duration | None = None


class RiskSettingsIn(Request):
    """Any subset of the settings; a detector's entry may name only some of its fields."""

    approval_required: bool | None = None
    cooling_off: Duration | None = Field(default=None, description="e.g. 24h, 90m, 7d")
    monitored_days: int | None = None
    detectors: dict[str, DetectorIn] | None = None


class DetectorOut(BaseModel):
    response: str
    devices: int
    window: str


class RiskSettingsOut(BaseModel):
    approval_required: bool
    cooling_off: str
    monitored_days: int
    detectors: dict[str, DetectorOut]


class SwapRequestOut(BaseModel):
    id: str
    kind: str = Field(description="esim_reissue (target: the order) or sim_replace (the SIM).")
    target: str
    new_iccid: str | None = Field(description="sim_replace: the stock SIM to take over.")
    eid: str | None = Field(description="esim_reissue: the eUICC the new order is bound to.")
    reason: str
    state: RequestState
    requested_by: str
    requester: str = Field(description="The person who asked: identity:<id> or token:<id>.")
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    result: dict[str, Any] | None = Field(
        description="approved: the SIMs (and new order) swapped; failed: the error; "
        "rejected: the reason. An approved re-issue's code is printed from the new "
        "order's pack."
    )


class ReplaceIn(Request):
    new_iccid: IccidText
    reason: RequiredReason


class RejectIn(Request):
    reason: Reason = ""


PENDING_DOC: dict[int | str, dict[str, Any]] = {
    202: {"model": SwapRequestOut, "description": "Waiting for a second admin's approval."}
}


def _settings_out(settings: RiskSettings) -> RiskSettingsOut:
    return RiskSettingsOut.model_validate(settings.as_json())


def swap_request_out(request: SwapRequest) -> SwapRequestOut:
    return SwapRequestOut(
        id=request.id,
        kind=request.kind.value,
        target=request.target,
        new_iccid=request.params.get("new_iccid"),
        eid=request.params.get("eid"),
        reason=request.reason,
        state=request.state,
        requested_by=request.requested_by,
        requester=request.requester,
        requested_at=request.requested_at,
        expires_at=request.expires_at,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        result=None if request.result is None else dict(request.result),
    )


def pending_response(request: SwapRequest) -> JSONResponse:
    """202: the swap waits for approval."""
    return JSONResponse(jsonable_encoder(swap_request_out(request)), status_code=202)


def swap_tools(ctx: ApiContext) -> swaps.SwapTools:
    return swaps.SwapTools(ctx.sealer, ctx.esim, ctx.random)


@router.get("/risk/settings", tags=["risk"])
def read_settings(ctx: Ctx, p: RiskRead) -> RiskSettingsOut:
    """The org's risk settings: whether a swap needs a second admin's approval
    (`approval_required`), how long a swapped SIM carries `sim.swap_recent` (`cooling_off`),
    how many days of each number's history are kept (`monitored_days`), and each detector's
    response (alert, restrict or suspend). Admins, operators and auditors (`risk:read`)."""
    with ctx.read() as conn:
        return _settings_out(get_settings(conn, p.org_id))


@router.put("/risk/settings", tags=["risk"])
def change_settings(ctx: Ctx, p: RiskWrite, body: RiskSettingsIn) -> RiskSettingsOut:
    """Change the named settings, keep the others. `approval_required` turns on the
    two-person rule: an eSIM re-issue or SIM replacement then waits (202) until an admin
    other than its requester approves it. "Other" means another person: a token that names
    an identity is that person (two tokens of one person are one person), an admin token
    that names no identity counts as a person of its own. So the rule needs admin tokens
    that name their person; otherwise one admin holding two such tokens could approve their
    own swap. `cooling_off`: how long a swapped SIM carries `sim.swap_recent` (0s to 30d).
    Admins only (`risk:write`); 422 for a value out of range."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    now = ctx.clock()
    with ctx.tx() as conn:
        settings = get_settings(conn, p.org_id).updated(changes)
        stored = put_settings(conn, p.org_id, settings, actor=p.actor, now=now)
    return _settings_out(stored)


@router.get("/swap-requests", tags=["risk"])
def list_swap_requests(
    ctx: Ctx,
    p: RiskRead,
    state: RequestState | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[SwapRequestOut]:
    """The org's swap requests (eSIM re-issues and SIM replacements waiting for, or past, a
    second admin's decision), optionally of one `state`, a page at a time. Newest first; a
    pending request past its expiry is `expired`. Admins, operators and auditors
    (`risk:read`)."""
    with ctx.read() as conn:
        items, next_cursor = swaps.list_requests(
            conn, p.org_id, ctx.clock(), state=state, limit=limit, cursor=cursor
        )
    return Page[SwapRequestOut](items=[swap_request_out(r) for r in items], next_cursor=next_cursor)


@router.get("/swap-requests/{request_id}", tags=["risk"])
def get_swap_request(ctx: Ctx, p: RiskRead, request_id: str) -> SwapRequestOut:
    """One swap request: what it would swap, who asked, and its state as of now (pending,
    approved, rejected, expired or failed) with its result. Admins, operators and auditors
    (`risk:read`); 404 for a request that is unknown or another org's."""
    with ctx.read() as conn:
        return swap_request_out(swaps.get_request(conn, p.org_id, request_id, ctx.clock()))


@router.post("/swap-requests/{request_id}/approve", tags=["risk"])
def approve_swap_request(ctx: Ctx, p: SwapsApprove, request_id: str) -> SwapRequestOut:
    """Approve and make the swap (an admin other than the requester). A swap refused now
    (the order was cancelled, the spare SIM used meanwhile) leaves the request `failed` and
    answers 409 with the reason. Admins only (`swaps:approve`); 403 when the approver is the
    person who asked, 409 for a request no longer pending, 404 for one not in the org."""
    now = ctx.clock()
    with ctx.tx() as conn:
        done = swaps.approve(
            conn,
            swap_tools(ctx),
            p.org_id,
            request_id,
            actor=p.actor,
            decider=requester_key(p),
            now=now,
        )
    if done.state is RequestState.FAILED:
        raise Conflict(f"the swap failed, and the request with it: {done.error}")
    return swap_request_out(done)


@router.post("/swap-requests/{request_id}/reject", tags=["risk"])
def reject_swap_request(
    ctx: Ctx, p: SwapsApprove, request_id: str, body: RejectIn
) -> SwapRequestOut:
    """Reject a pending request: nothing is swapped. Admins only (`swaps:approve`),
    the requester among them (an admin may withdraw their own request this way); 409 for a request no longer pending, 404 for one not in
    the org."""
    with ctx.tx() as conn:
        done = swaps.reject(
            conn,
            p.org_id,
            request_id,
            actor=p.actor,
            decider=requester_key(p),
            reason=body.reason,
            now=ctx.clock(),
        )
    return swap_request_out(done)


@router.post("/sims/{iccid}/replace", tags=["sims"], response_model=SimOut, responses=PENDING_DOC)
def replace_sim(ctx: Ctx, p: SimsWrite, iccid: str, body: ReplaceIn) -> SimOut | JSONResponse:
    """A new physical card (from stock) for a SIM's subscriber, who keeps the number: the
    new SIM takes the identity, state and number, the old one is retired. 200 with the new
    SIM, or 202 with a pending request when the org requires approval. Admins and operators
    (`sims:write`); 409 when the old SIM is unassigned or retired or the new one is not
    another SIM in stock, 404 for a SIM not in the org."""
    with ctx.tx() as conn:
        done = swaps.request_replace(
            conn,
            p.org_id,
            iccid,
            body.new_iccid,
            actor=p.actor,
            requester=requester_key(p),
            reason=body.reason,
            now=ctx.clock(),
        )
    if isinstance(done, SwapRequest):
        return pending_response(done)
    return SimOut.model_validate(done, from_attributes=True)
