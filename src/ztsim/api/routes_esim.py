"""eSIM orders: create, list, get, cancel, re-issue, the onboarding pack, and the SM-DP+'s
progress callback. A `self` token sees only its own identity's orders and packs; for it,
every other order does not exist (404). The matching ID appears only in the create and
re-issue responses and in packs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints
from sqlalchemy import Connection

from ztsim.api import routes_risk as risk_routes
from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import ObjectId, Page, Reason, Request, RequiredReason
from ztsim.dns.store import repository as dns_store
from ztsim.errors import NotFound
from ztsim.esim import repository as repo
from ztsim.esim import service
from ztsim.esim.config import placeholder_warning
from ztsim.esim.orders import NotificationPoint, OrderRefused, OrderState, ProgressStatus
from ztsim.esim.orders import effective_state as _effective
from ztsim.esim.pack import render_html, render_pdf
from ztsim.esim.privacy import DnsLogging, DnsLogMode
from ztsim.esim.qr import qr_png, qr_svg
from ztsim.identity.roles import Permission, Principal
from ztsim.risk.approvals import SwapRequest, requester_key
from ztsim.risk.store import swaps

router = APIRouter(prefix="/esim", tags=["esim"])
EsimRead = Annotated[Principal, Depends(require(Permission.ESIM_READ))]
EsimWrite = Annotated[Principal, Depends(require(Permission.ESIM_WRITE))]
EsimReissue = Annotated[Principal, Depends(require(Permission.ESIM_REISSUE))]
EsimPack = Annotated[Principal, Depends(require(Permission.ESIM_PACK))]
EsimProgress = Annotated[Principal, Depends(require(Permission.ESIM_PROGRESS))]
Limit = Annotated[int, Query(ge=1, le=1000)]
EidText = Annotated[str, StringConstraints(pattern=r"^[0-9]{32}$")]
IccidText = Annotated[str, StringConstraints(pattern=r"^[0-9]{18,20}$")]


class OrderIn(Request):
    identity_id: ObjectId
    eid: EidText | None = Field(default=None, description="Bind the order to this eUICC.")
    iccid: IccidText | None = Field(default=None, description="A given eSIM from stock.")
    confirmation_code: bool = Field(
        default=False, description="Also require a confirmation code (shown once)."
    )


class CancelIn(Request):
    reason: Reason = ""


class ReissueIn(Request):
    reason: RequiredReason
    eid: EidText | None = None


class ProgressIn(Request):
    """Modelled on ES2+ HandleDownloadProgressInfo (GSMA SGP.22 §5.3.5)."""

    iccid: IccidText
    eid: EidText | None = None
    notification_point_id: NotificationPoint
    status: ProgressStatus
    profile_type: Annotated[str, StringConstraints(max_length=100)] | None = None
    timestamp: AwareDatetime | None = None


class OrderOut(BaseModel):
    id: str
    identity_id: str
    iccid: str
    eid: str | None
    state: OrderState
    smdp_address: str
    smdp_oid: str | None
    confirmation_code_required: bool
    expires_at: datetime
    replaces_id: str | None
    replaced_by: str | None
    reason: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class OrderCreated(OrderOut):
    activation_code: str = Field(description="`LPA:1$...` (SGP.22 §4.1). A bearer secret.")
    matching_id: str
    confirmation_code: str | None = Field(description="Shown once; only its hash is kept.")
    warnings: list[str] = Field(
        default_factory=list,
        description="For the operator, e.g. an SM-DP+ address that is still a placeholder.",
    )


class PackFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"
    PNG = "png"
    SVG = "svg"


_MEDIA = {
    PackFormat.HTML: "text/html; charset=utf-8",
    PackFormat.PDF: "application/pdf",
    PackFormat.PNG: "image/png",
    PackFormat.SVG: "image/svg+xml",
}
_PACK_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The onboarding page (html, pdf) or the bare QR code (png, svg).",
        "content": {
            media.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
            for media in _MEDIA.values()
        },
    }
}


def _out(order: repo.Order, now: datetime) -> OrderOut:
    return OrderOut(
        id=order.id,
        identity_id=order.identity_id,
        iccid=order.iccid,
        eid=order.eid,
        state=_effective(order.state, order.expires_at, now),
        smdp_address=order.smdp_address,
        smdp_oid=order.smdp_oid,
        confirmation_code_required=order.confirmation_required,
        expires_at=order.expires_at,
        replaces_id=order.replaces_id,
        replaced_by=order.replaced_by,
        reason=order.reason,
        created_by=order.created_by,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


def _created(issued: service.Issued, now: datetime) -> OrderCreated:
    return OrderCreated(
        **_out(issued.order, now).model_dump(),
        activation_code=issued.code.to_qr_text(),
        matching_id=issued.code.matching_id,
        confirmation_code=issued.confirmation_code,
        warnings=[w for w in (placeholder_warning(issued.code.smdp_address),) if w],
    )


def _visible(conn: Connection, p: Principal, order_id: str) -> repo.Order:
    order = repo.get_order(conn, p.org_id, order_id)
    if p.own_identity is not None and order.identity_id != p.own_identity:
        raise NotFound("eSIM order not found")
    return order


@router.post("/orders", status_code=201)
def create_order(ctx: Ctx, p: EsimWrite, body: OrderIn) -> OrderCreated:
    """Order an eSIM for an identity: an eSIM profile is taken from stock (the lowest ICCID,
    or `iccid`) and assigned to the identity, and its activation code is returned, here and
    in the onboarding pack only. The SIM becomes active when the SM-DP+ reports the profile
    enabled. Admins and operators (`esim:write`); 409 when the identity has an open order or
    is disabled, or no such eSIM is in stock, 404 for an identity not in the org."""
    now = ctx.clock()
    with ctx.tx() as conn:
        issued = service.create_order(
            conn,
            ctx.sealer,
            p.org_id,
            body.identity_id,
            config=ctx.esim,
            actor=p.actor,
            now=now,
            rand=ctx.random,
            eid=body.eid,
            iccid=body.iccid,
            confirmation=body.confirmation_code,
        )
    return _created(issued, now)


@router.get("/orders")
def list_orders(
    ctx: Ctx,
    p: EsimRead,
    state: OrderState | None = None,
    identity_id: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[OrderOut]:
    """The org's eSIM orders, a page at a time, optionally of one `state` or `identity_id`.
    Filtering on `state` matches the stored state (an unswept expired order is `issued`
    there); each item shows its state as of now. Admins, operators, auditors and self
    (`esim:read`); a self token sees only its own orders."""
    if p.own_identity is not None:
        identity_id = p.own_identity if identity_id in (None, p.own_identity) else "-"
    now = ctx.clock()
    with ctx.read() as conn:
        items, next_cursor = repo.list_orders(
            conn,
            p.org_id,
            repo.OrderFilter(state=state, identity_id=identity_id),
            limit=limit,
            cursor=cursor,
        )
    return Page[OrderOut](items=[_out(o, now) for o in items], next_cursor=next_cursor)


@router.get("/orders/{order_id}")
def get_order(ctx: Ctx, p: EsimRead, order_id: str) -> OrderOut:
    """One eSIM order and its state as of now (issued, downloaded, installed, enabled,
    expired, cancelled or failed), without its activation code. Admins, operators, auditors
    and self (`esim:read`); 404 for another org's order or, for a self token, an order not
    its own."""
    with ctx.read() as conn:
        return _out(_visible(conn, p, order_id), ctx.clock())


@router.post("/orders/{order_id}/cancel")
def cancel_order(ctx: Ctx, p: EsimWrite, order_id: str, body: CancelIn) -> OrderOut:
    """Cancel an order that is not on a phone yet (`issued` or `downloaded`). Its SIM is
    retired, not returned to stock, since its activation code has been handed out. Admins
    and operators (`esim:write`); 409 for an order in any other state (re-issue an installed
    or enabled one instead), 404 for an order not in the org."""
    now = ctx.clock()
    with ctx.tx() as conn:
        order = service.cancel_order(
            conn, p.org_id, order_id, actor=p.actor, reason=body.reason, now=now
        )
    return _out(order, now)


@router.post(
    "/orders/{order_id}/reissue",
    status_code=201,
    response_model=OrderCreated,
    responses=risk_routes.PENDING_DOC,
)
def reissue_order(
    ctx: Ctx, p: EsimReissue, order_id: str, body: ReissueIn
) -> OrderCreated | JSONResponse:
    """Lost or new phone: retires the old profile's SIM and issues a new order. 202 with a
    pending swap request instead when the org requires a second admin's approval (see
    /risk/settings): nothing changes until then. Admins only (`esim:reissue`); 409 for a
    cancelled order, 422 without a reason, 404 for an order not in the org."""
    now = ctx.clock()
    with ctx.tx() as conn:
        done = swaps.request_reissue(
            conn,
            risk_routes.swap_tools(ctx),
            p.org_id,
            order_id,
            actor=p.actor,
            requester=requester_key(p),
            reason=body.reason,
            now=now,
            eid=body.eid,
        )
    if isinstance(done, SwapRequest):
        return risk_routes.pending_response(done)
    return _created(done, now)


@router.get("/orders/{order_id}/pack", response_class=Response, responses=_PACK_DOC)
def get_pack(
    ctx: Ctx, p: EsimPack, order_id: str, format: PackFormat = PackFormat.HTML
) -> Response:
    """The employee's onboarding page (`format` html or pdf), or its QR code alone (png or
    svg). It carries the activation code, so it has its own permission (`esim:pack`):
    admins, operators and self, a self token for its own orders only. 409 once the order is
    no longer `issued`, 404 for another org's order or, for a self token, one not its own."""
    now = ctx.clock()
    with ctx.read() as conn:
        _visible(conn, p, order_id)
        dns, _ = dns_store.get_settings(conn, p.org_id)
        logging = DnsLogging(DnsLogMode(dns.privacy.value), dns.pseudonymise)
        page = service.pack_page(conn, ctx.sealer, p.org_id, order_id, now, dns=logging)
    if format is PackFormat.HTML:
        body = render_html(page)
    elif format is PackFormat.PDF:
        body = render_pdf(page)
    elif format is PackFormat.PNG:
        body = qr_png(page.code)
    else:
        body = qr_svg(page.code)
    return Response(body, media_type=_MEDIA[format], headers={"Cache-Control": "no-store, private"})


@router.post("/progress")
def report_progress(ctx: Ctx, p: EsimProgress, body: ProgressIn) -> OrderOut:
    """Called by the SM-DP+ (a `smdp` token) as a profile is downloaded, installed and
    enabled. Expired, cancelled, failed and completed orders refuse reports (409). When the
    profile is enabled, the order's SIM becomes active. Only `smdp` tokens
    (`esim:progress`); 404 for an ICCID with no order in the org."""
    now = ctx.clock()
    try:
        with ctx.tx() as conn:
            order = service.report_progress(
                conn,
                p.org_id,
                iccid=body.iccid,
                eid=body.eid,
                point=body.notification_point_id,
                status=body.status,
                actor=p.actor,
                now=now,
            )
    except OrderRefused as exc:
        with ctx.tx() as conn:
            service.record_refused_progress(
                conn, p.org_id, iccid=body.iccid, why=str(exc), actor=p.actor, now=now
            )
        raise
    return _out(order, now)
