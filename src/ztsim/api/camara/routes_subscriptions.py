"""CAMARA SIM Swap Subscriptions 0.3.0: create, list, read and delete subscriptions.

Mounted at PREFIX, out of ztsim's own /openapi.json: the spec document is the
documentation (`GET /sim-swap-subscriptions/v0.3/openapi.yaml`). A subscription belongs
to the API client that created it: another client's id answers 404 as an unknown one.
A 3-legged token sees and creates subscriptions on its own number only, and answers
never carry the number it did not name (the spec's data minimization). The sink
credential is sealed at creation and never answered. Notifications are the notifier's
(`risk/serve/notify.py`).

A number that no SIM of the client's org holds in service answers 422
SERVICE_NOT_APPLICABLE: the spec documents no 404 for creation, and this is its code
for "not available for the provided identifier" (the same answer for another org's
number, so no org learns another's numbers).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse, Response

from ztsim.api.camara.auth import requires, subject_number
from ztsim.api.camara.errors import CamaraError, CamaraRoute, not_applicable
from ztsim.api.deps import Ctx
from ztsim.errors import NotFound
from ztsim.risk.clients import SUBSCRIPTIONS_CREATE, SUBSCRIPTIONS_DELETE, SUBSCRIPTIONS_READ, Grant
from ztsim.risk.store import subscriptions as store
from ztsim.risk.subscriptions import RequestRefused, parse_request

PREFIX = "/sim-swap-subscriptions/v0.3"
_ID = re.compile(r"[0-9a-f]{32}")  # ztsim's subscription ids (uuid4 hex)

router = APIRouter(route_class=CamaraRoute)

Creator = Annotated[Grant, Depends(requires(SUBSCRIPTIONS_CREATE))]
Reader = Annotated[Grant, Depends(requires(SUBSCRIPTIONS_READ))]
Deleter = Annotated[Grant, Depends(requires(SUBSCRIPTIONS_DELETE))]


def _not_found() -> CamaraError:
    return CamaraError(404, "NOT_FOUND", "The specified resource is not found.")


def _own(ctx: Ctx, grant: Grant, subscription_id: str) -> store.Subscription:
    """The client's subscription (on its token's number, for a 3-legged one); 404 else."""
    if not _ID.fullmatch(subscription_id):
        raise _not_found()
    with ctx.read() as conn:
        try:
            sub = store.get(conn, grant.org_id, grant.client_id, subscription_id)
        except NotFound:
            raise _not_found() from None
    if grant.phone_number is not None and sub.phone_number != grant.phone_number:
        raise _not_found()
    return sub


@router.post("/subscriptions", status_code=201)
def create_subscription(
    ctx: Ctx, grant: Creator, body: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    """A subscription to the number's SIM swaps, notified to the client's sink."""
    now = ctx.clock()
    try:
        request = parse_request(body, now)
    except RequestRefused as exc:
        raise CamaraError(400, exc.code, exc.message) from None
    number = subject_number(grant, request.phone_number)
    with ctx.tx() as conn:
        try:
            sub = store.create(
                conn,
                ctx.sealer,
                org_id=grant.org_id,
                client_id=grant.client_id,
                phone_number=number,
                request=request,
                now=now,
            )
        except store.NumberNotServed:
            raise not_applicable(
                "The service is not available for the provided identifier."
            ) from None
        except store.QuotaExceeded:
            raise CamaraError(429, "QUOTA_EXCEEDED", "Out of resource quota.") from None
    return JSONResponse(sub.as_json(), status_code=201)


@router.get("/subscriptions")
def list_subscriptions(ctx: Ctx, grant: Reader) -> JSONResponse:
    """The client's subscriptions (a 3-legged token's: on its number only)."""
    with ctx.read() as conn:
        found = store.list_for(conn, grant.org_id, grant.client_id, grant.phone_number)
    return JSONResponse([s.as_json() for s in found])


@router.get("/subscriptions/{subscriptionId}")
def get_subscription(ctx: Ctx, grant: Reader, subscriptionId: str) -> JSONResponse:
    """One of the client's subscriptions; another client's is 404."""
    return JSONResponse(_own(ctx, grant, subscriptionId).as_json())


@router.delete("/subscriptions/{subscriptionId}", status_code=204)
def delete_subscription(ctx: Ctx, grant: Deleter, subscriptionId: str) -> Response:
    """End one of the client's subscriptions; another client's is 404."""
    _own(ctx, grant, subscriptionId)
    with ctx.tx() as conn:
        try:
            store.delete(conn, grant.org_id, grant.client_id, subscriptionId, now=ctx.clock())
        except NotFound:  # deleted meanwhile
            raise _not_found() from None
    return Response(status_code=204)
