"""`/gateways`: the org's RADIUS gateways and IP pools, read-only, for roles with
`gateways:read` (a `self` sign-in gets 403). Changes stay with the API and the CLI, where
a gateway's shared secret is typed once; this page never shows it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.identity.roles import Permission
from ztsim.web import gateways
from ztsim.web.access import refused, signed_in
from ztsim.web.render import page
from ztsim.web.viewer import context

router = APIRouter(include_in_schema=False)


@router.get("/gateways")
async def gateways_page(request: Request) -> Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if no := refused(
        viewer, Permission.GATEWAYS_READ, "Gateways are for the organisation's operators."
    ):
        return no
    ctx = context(request)

    def read() -> gateways.GatewaysView:
        with ctx.read() as conn:
            return gateways.read(conn, viewer, ctx.clock())

    return page(
        "gateways.html",
        viewer,
        nav="/gateways",
        title="Gateways and IP pools",
        view=await run_in_threadpool(read),
    )
