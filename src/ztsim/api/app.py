"""The FastAPI application: routers under /api/v1, problem details, one context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from ztsim import __version__
from ztsim.api import (
    problems,
    routes_api_clients,
    routes_dns,
    routes_doh,
    routes_esim,
    routes_events,
    routes_identity,
    routes_inventory,
    routes_metrics,
    routes_net,
    routes_numbers,
    routes_policy,
    routes_posture,
    routes_radius,
    routes_risk,
    routes_risk_findings,
    routes_udm,
)
from ztsim.api.camara import routes_oauth, routes_subscriptions, routes_swap
from ztsim.api.context import ApiContext
from ztsim.api.edge import HttpEdge, failure_limiter, wrap
from ztsim.api.problems import problem_doc
from ztsim.api.ratelimit import FailureLimiter
from ztsim.api.routes_metrics import ApiMetrics, Network, RequestMetrics, RouteTemplates
from ztsim.api.ueau_fast_path import UeauFastPath
from ztsim.api.ueau_lane import UeauLane
from ztsim.dns.serve.doh import DohService
from ztsim.metrics.registry import Registry
from ztsim.web import install as install_web

API_PREFIX = "/api/v1"

# Every route may answer with these; documented so clients (and schemathesis) know.
_COMMON_PROBLEMS = problem_doc(400, 401, 403, 404, 405, 409, 413, 422, 429, 503)


class _EdgedApp(FastAPI):
    """FastAPI with the HTTP edge (`edge.py`) around all of Starlette's stack, its
    error middleware included, so every response passes through the edge; the request
    metrics around the edge, so they count its answers too. Inside the edge, before
    FastAPI, the Nudm vector request's fast path (`ueau_fast_path`); before all of it,
    in the server's connection, the lane (`ueau_lane`) that shares the edge's limiter."""

    edge: HttpEdge = HttpEdge()
    templates: RouteTemplates = RouteTemplates(())
    _limiter: FailureLimiter | None = None
    _lane: UeauLane | None = None

    def build_middleware_stack(self) -> ASGIApp:
        edged = wrap(UeauFastPath(super().build_middleware_stack()), self.edge, self._limiter)
        return RequestMetrics(edged, self.state.metrics, self.templates)

    def set_edge(self, edge: HttpEdge) -> None:
        self.edge = edge
        self._limiter = failure_limiter(edge)
        self._lane = None

    @property
    def ueau_lane(self) -> UeauLane:
        """What `api.server`'s connections ask first (see `ueau_lane`)."""
        if self._lane is None:
            self._lane = UeauLane(
                self.state,
                self.state.ctx,
                limits=self.edge.limits,
                trusted_proxies=self.edge.trusted_proxies,
                limiter=self._limiter,
                metrics=self.state.metrics,
                templates=self.templates,
            )
        return self._lane


def create_app(
    ctx: ApiContext,
    doh: DohService | None = None,
    edge: HttpEdge | None = None,
    *,
    metrics: Registry | None = None,
    metrics_allow: Sequence[Network] = (),
) -> FastAPI:
    """The app; `doh` is the DNS gateway's DoH service when the gateway runs in this process;
    `edge` its limits and trusted proxies (the node's settings; defaults otherwise);
    `metrics` what `/metrics` serves besides the API's own request metrics (the other roles
    of the process), `metrics_allow` who may scrape it besides loopback."""
    app = _EdgedApp(
        title="ztsim",
        version=__version__,
        description="Zero Trust SIM platform: identities, SIM inventory, devices and events.",
        # FastAPI's own docs pages load Swagger UI and ReDoc from a CDN: `web` serves /docs.
        docs_url=None,
        redoc_url=None,
        # No OpenTelemetry here (the metrics are ztsim's own): without this FastAPI asks
        # the tracing API for its provider, an environment lookup, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        lifespan=routes_udm.issuer_lifespan,
    )
    app.set_edge(edge or HttpEdge())
    app.state.ctx = ctx
    app.state.doh = doh
    app.state.metrics = ApiMetrics(metrics or Registry(), tuple(metrics_allow))
    problems.install(app)
    udm_problems = problem_doc(401, 403, 413, 429, 503)
    routers: list[tuple[APIRouter, str, dict[int | str, dict[str, Any]] | None]] = [
        # 3GPP service-based interface: its own path, its own error shapes (TS 29.571).
        # First: requests are matched against the routers in this order, and the AUSFs'
        # are the many (a tenth of a vector request's CPU went to matching the others).
        (routes_udm.router, "", udm_problems),
        (routes_identity.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_inventory.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_events.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_esim.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_radius.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_dns.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_posture.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_policy.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_risk.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_risk_findings.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_numbers.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_api_clients.router, API_PREFIX, _COMMON_PROBLEMS),
        (routes_net.router, API_PREFIX, _COMMON_PROBLEMS),
        # CAMARA SIM Swap and Device Swap, and their OAuth token endpoint: documented by
        # the spec files they serve (GET /sim-swap/v2/openapi.yaml ...), not /openapi.json.
        (routes_swap.router, "", None),
        (routes_oauth.router, "", None),
        (routes_doh.router, "", None),  # RFC 8484 DoH: its own authentication
        (routes_metrics.router, "", None),  # Prometheus: loopback and ZTSIM_METRICS_ALLOW
    ]
    for router, prefix, responses in routers:
        app.include_router(router, prefix=prefix, responses=responses)
    app.templates = RouteTemplates.of((prefix, router.routes) for router, prefix, _ in routers)
    # CAMARA SIM Swap Subscriptions: documented by the spec file, not by /openapi.json.
    app.include_router(
        routes_subscriptions.router, prefix=routes_subscriptions.PREFIX, include_in_schema=False
    )
    # The pages (/, /login, /overview, /me, /docs), /static, the bearer scheme, the CSP.
    install_web(app)
    return app
