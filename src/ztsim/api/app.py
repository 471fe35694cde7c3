"""The FastAPI application: routers under /api/v1, problem details, one context."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from ztsim import __version__
from ztsim.api import (
    problems,
    routes_dns,
    routes_doh,
    routes_esim,
    routes_events,
    routes_identity,
    routes_inventory,
    routes_radius,
    routes_udm,
)
from ztsim.api.context import ApiContext
from ztsim.api.edge import HttpEdge, wrap
from ztsim.api.problems import problem_doc
from ztsim.dns.serve.doh import DohService

API_PREFIX = "/api/v1"

# Every route may answer with these; documented so clients (and schemathesis) know.
_COMMON_PROBLEMS = problem_doc(400, 401, 403, 404, 405, 409, 413, 422, 429, 503)


class _EdgedApp(FastAPI):
    """FastAPI with the HTTP edge (`edge.py`) around all of Starlette's stack, its
    error middleware included, so every response passes through the edge."""

    edge: HttpEdge = HttpEdge()

    def build_middleware_stack(self) -> ASGIApp:
        return wrap(super().build_middleware_stack(), self.edge)


def create_app(
    ctx: ApiContext, doh: DohService | None = None, edge: HttpEdge | None = None
) -> FastAPI:
    """The app; `doh` is the DNS gateway's DoH service when the gateway runs in this process;
    `edge` its limits and trusted proxies (the node's settings; defaults otherwise)."""
    app = _EdgedApp(
        title="ztsim",
        version=__version__,
        description="Zero Trust SIM platform: identities, SIM inventory, devices and events.",
    )
    app.edge = edge or HttpEdge()
    app.state.ctx = ctx
    app.state.doh = doh
    problems.install(app)
    for module in (routes_identity, routes_inventory, routes_events, routes_esim):
        app.include_router(module.router, prefix=API_PREFIX, responses=_COMMON_PROBLEMS)
    app.include_router(routes_radius.router, prefix=API_PREFIX, responses=_COMMON_PROBLEMS)
    # 3GPP service-based interface: its own path, its own error shapes (TS 29.571).
    app.include_router(routes_udm.router, responses=problem_doc(401, 403, 413, 429, 503))
    app.include_router(routes_dns.router, prefix=API_PREFIX, responses=_COMMON_PROBLEMS)
    app.include_router(routes_doh.router)  # RFC 8484 DoH: its own authentication
    return app
