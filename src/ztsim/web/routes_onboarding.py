"""The onboarding pages: the org's eSIM orders, ordering one for a person, an order's
page with its QR code and printable pack, cancelling, and bulk packs (`onboarding_bulk`).

Every change goes through the use case the API's route calls (`ztsim.esim.service`:
`create_order`, `cancel_order`), in one transaction, so its audit events and change-feed
rows are the API's. The QR code, the activation code and the pack are shown only to roles
with `esim:pack` and only while the code can still be used (`service.pack_page` refuses
otherwise, as the API's pack route does); answers that carry them are never cached.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.dns.store import repository as dns_store
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.esim import service
from ztsim.esim.activation import ActivationCode
from ztsim.esim.config import placeholder_warning
from ztsim.esim.orders import CANCELLABLE, OrderState
from ztsim.esim.pack import PackPage, render_html, render_pdf
from ztsim.esim.privacy import DnsLogging, DnsLogMode
from ztsim.esim.qr import qr_png
from ztsim.identity.roles import Permission
from ztsim.web import onboarding, onboarding_bulk
from ztsim.web.access import to
from ztsim.web.onboarding_forms import NAV, admitted, not_found, posted, writing_context
from ztsim.web.render import NO_STORE, page, refusal
from ztsim.web.viewer import Viewer

router = APIRouter(include_in_schema=False)
router.include_router(onboarding_bulk.router)

MAX_REASON = 1000  # the API's `Reason`
_STYLE = re.compile(rb"<style>(.*?)</style>", re.DOTALL)


def order_path(order_id: str) -> str:
    return f"{NAV}/orders/{order_id}"


async def _listing(
    request: Request,
    viewer: Viewer,
    cursor: str | None,
    email: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    ctx = writing_context(request)

    def read() -> onboarding.OrdersPage:
        with ctx.read() as conn:
            return onboarding.list_orders(conn, viewer.principal.org_id, ctx.clock(), cursor=cursor)

    try:
        found = await run_in_threadpool(read)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    return page(
        "onboarding.html",
        viewer,
        status,
        nav=NAV,
        title="Onboarding",
        orders=found,
        cursor=cursor,
        email=email,
        error=error,
    )


@router.get(NAV)
async def onboarding_page(request: Request, cursor: str | None = None) -> Response:
    viewer = await admitted(request)
    if isinstance(viewer, Response):
        return viewer
    return await _listing(request, viewer, cursor)


@router.post(f"{NAV}/orders")
async def order_esim(request: Request) -> Response:
    viewer = await admitted(request, Permission.ESIM_WRITE)
    if isinstance(viewer, Response):
        return viewer
    form = await posted(request, viewer)
    if isinstance(form, Response):
        return form
    ctx = writing_context(request)
    p = viewer.principal
    email = form.get("email", "").strip()[: onboarding.MAX_EMAIL + 1]

    def order() -> str:
        with ctx.read() as conn:
            identity_id = onboarding.person_by_email(conn, p.org_id, email)
        now = ctx.clock()
        # The API's POST /esim/orders, argument for argument.
        with ctx.tx() as conn:
            issued = service.create_order(
                conn,
                ctx.sealer,
                p.org_id,
                identity_id,
                config=ctx.esim,
                actor=p.actor,
                now=now,
                rand=ctx.random,
            )
        return issued.order.id

    try:
        order_id = await run_in_threadpool(order)
    except (InvalidInput, NotFound, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return await _listing(request, viewer, None, email, str(exc), status)
    return to(order_path(order_id))


@router.get(NAV + "/orders/{order_id}")
async def order_page(request: Request, order_id: str) -> Response:
    viewer = await admitted(request)
    if isinstance(viewer, Response):
        return viewer
    ctx = writing_context(request)
    org = viewer.principal.org_id
    may_pack = viewer.may(Permission.ESIM_PACK)

    def read() -> tuple[onboarding.OrderDetail, ActivationCode | None]:
        with ctx.read() as conn:
            detail = onboarding.order_detail(
                conn, org, order_id, ctx.clock(), history=viewer.may(Permission.EVENTS_READ)
            )
            code = None
            if may_pack and detail.line.state is OrderState.ISSUED:
                code = service.activation_code(ctx.sealer, conn, detail.line.order)
        return detail, code

    try:
        detail, code = await run_in_threadpool(read)
    except NotFound:
        return not_found(viewer)
    response = page(
        "onboarding_order.html",
        viewer,
        nav=NAV,
        title=f"eSIM for {detail.line.person.name}",
        detail=detail,
        code=code,
        may_pack=may_pack,
        may_cancel=viewer.may(Permission.ESIM_WRITE) and detail.line.state in CANCELLABLE,
        warning=(placeholder_warning(code.smdp_address) if code else None) or "",
    )
    if code is not None:
        response.headers.update(NO_STORE)
    return response


async def _pack(request: Request, viewer: Viewer, order_id: str) -> PackPage | Response:
    """The order's pack as the API's pack route reads it, or the refusal to send."""
    ctx = writing_context(request)
    org = viewer.principal.org_id

    def read() -> PackPage:
        with ctx.read() as conn:
            settings, _ = dns_store.get_settings(conn, org)
            logging = DnsLogging(DnsLogMode(settings.privacy.value), settings.pseudonymise)
            return service.pack_page(conn, ctx.sealer, org, order_id, ctx.clock(), dns=logging)

    try:
        return await run_in_threadpool(read)
    except NotFound:
        return not_found(viewer)
    except Conflict as exc:
        return refusal(viewer, 409, str(exc))


@router.get(NAV + "/orders/{order_id}/qr.png")
async def order_qr(request: Request, order_id: str) -> Response:
    viewer = await admitted(request, Permission.ESIM_PACK)
    if isinstance(viewer, Response):
        return viewer
    found = await _pack(request, viewer, order_id)
    if isinstance(found, Response):
        return found
    return Response(qr_png(found.code), media_type="image/png", headers=NO_STORE)


def pack_policy(body: bytes) -> str:
    """The pack's own CSP: it is a document of its own (printed, or saved and mailed),
    styled by one inline <style> element allowed by its hash (CSP Level 3 §8.3), its QR
    code a data: image; nothing else may load or run."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in _STYLE.finditer(body)
    )
    return "; ".join(
        (
            "default-src 'none'",
            "style-src " + (hashes or "'none'"),
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


@router.get(NAV + "/orders/{order_id}/pack")
async def order_pack(request: Request, order_id: str, format: str = "html") -> Response:
    viewer = await admitted(request, Permission.ESIM_PACK)
    if isinstance(viewer, Response):
        return viewer
    if format not in ("html", "pdf"):
        return refusal(viewer, 400, "A pack is html or pdf.")
    found = await _pack(request, viewer, order_id)
    if isinstance(found, Response):
        return found
    if format == "pdf":
        pdf = await run_in_threadpool(render_pdf, found)
        return Response(pdf, media_type="application/pdf", headers=NO_STORE)
    body = render_html(found)
    headers = {**NO_STORE, "Content-Security-Policy": pack_policy(body)}
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


async def _cancellable(
    request: Request, order_id: str
) -> tuple[Viewer, onboarding.OrderDetail] | Response:
    viewer = await admitted(request, Permission.ESIM_WRITE)
    if isinstance(viewer, Response):
        return viewer
    ctx = writing_context(request)

    def read() -> onboarding.OrderDetail:
        with ctx.read() as conn:
            return onboarding.order_detail(
                conn, viewer.principal.org_id, order_id, ctx.clock(), history=False
            )

    try:
        return viewer, await run_in_threadpool(read)
    except NotFound:
        return not_found(viewer)


@router.get(NAV + "/orders/{order_id}/cancel")
async def cancel_form(request: Request, order_id: str) -> Response:
    found = await _cancellable(request, order_id)
    if isinstance(found, Response):
        return found
    viewer, detail = found
    if detail.line.state not in CANCELLABLE:
        return refusal(
            viewer, 409, f"An order that is {detail.line.state.value} cannot be cancelled."
        )
    return page(
        "onboarding_cancel.html",
        viewer,
        nav=NAV,
        title=f"Cancel the eSIM order for {detail.line.person.name}?",
        detail=detail,
        max_reason=MAX_REASON,
    )


@router.post(NAV + "/orders/{order_id}/cancel")
async def cancel_order(request: Request, order_id: str) -> Response:
    found = await _cancellable(request, order_id)
    if isinstance(found, Response):
        return found
    viewer, _ = found
    form = await posted(request, viewer)
    if isinstance(form, Response):
        return form
    reason = form.get("reason", "")
    if len(reason) > MAX_REASON or "\x00" in reason:
        return refusal(viewer, 400, f"A reason is at most {MAX_REASON} characters of text.")
    ctx = writing_context(request)
    p = viewer.principal

    def cancel() -> None:
        now = ctx.clock()
        # The API's POST /esim/orders/{id}/cancel, argument for argument.
        with ctx.tx() as conn:
            service.cancel_order(conn, p.org_id, order_id, actor=p.actor, reason=reason, now=now)

    try:
        await run_in_threadpool(cancel)
    except NotFound:
        return not_found(viewer)
    except Conflict as exc:
        return refusal(viewer, 409, str(exc))
    return to(order_path(order_id))
