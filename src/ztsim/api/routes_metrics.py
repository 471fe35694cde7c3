"""`GET /metrics`: the process's Prometheus metrics, and the API's own request metrics.

Who may scrape: clients on loopback always, others only from the CIDRs of
`ZTSIM_METRICS_ALLOW` (none by default); everyone else gets the same 404 as a path that
does not exist. The client is the requester as the HTTP edge resolved it, so a trusted
proxy on loopback does not open the endpoint to the clients it forwards. The metrics
name no org and no person: they have no org, identity, SIM or address labels, and the
API's requests are labelled by route template (`/api/v1/sims/{iccid}`), never by path.

Not in the OpenAPI document: the body is Prometheus' text format, not JSON, and the
route is not part of the REST API.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ztsim.metrics.exposition import CONTENT_TYPE, render
from ztsim.metrics.registry import Registry

router = APIRouter(include_in_schema=False)

Network = IPv4Network | IPv6Network
UNMATCHED = "unmatched"  # the route label of a path no route serves
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds; from a cached read (a few ms) to a stock import of 100k rows (many seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def scraper_allowed(client: str | None, allow: Sequence[Network]) -> bool:
    """Loopback always (IPv4-mapped loopback too); others inside `allow` only."""
    try:
        ip = ip_address(client or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if ip.is_loopback or (mapped is not None and mapped.is_loopback):
        return True
    return any(ip in network for network in allow)


class RouteTemplates:
    """The route template a path is served by: built from the routers as the app includes
    them (prefix + path), so a label is always a template, never a raw path."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._exact: set[str] = set()
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for template in dict.fromkeys(templates):
            if "{" in template:
                self._patterns.append((compile_path(template)[0], template))
            else:
                self._exact.add(template)

    @classmethod
    def of(cls, routers: Iterable[tuple[str, Sequence[BaseRoute]]]) -> RouteTemplates:
        return cls(
            prefix + path
            for prefix, routes in routers
            for route in routes
            if isinstance(path := getattr(route, "path", None), str)
        )

    def __call__(self, path: str) -> str:
        if path in self._exact:
            return path
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return UNMATCHED


@dataclass
class ApiMetrics:
    """The registry `/metrics` serves, the API's request metrics in it, and who may scrape."""

    registry: Registry
    allow: tuple[Network, ...] = ()

    def __post_init__(self) -> None:
        labels = ("method", "route", "status")
        self.requests = self.registry.counter(
            "ztsim_api_requests_total", "API requests answered, by route template.", labels
        )
        self.durations = self.registry.histogram(
            "ztsim_api_request_duration_seconds",
            "Seconds from a request's arrival to the end of its response.",
            DURATION_BUCKETS,
            labels,
        )
        self.in_flight = self.registry.gauge(
            "ztsim_api_requests_in_flight", "API requests being handled now."
        )


class RequestMetrics:
    """Pure ASGI, outside the HTTP edge: counts every response, those of the edge too
    (401, 413, 429)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, templates: RouteTemplates) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: the app failed before answering
        started = time.perf_counter()

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        metrics = self.metrics
        metrics.in_flight.add(1)
        try:
            await self.app(scope, receive, counted)
        finally:
            metrics.in_flight.add(-1)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            labels = (method, self.templates(scope["path"]), str(status))
            metrics.requests.inc(*labels)
            metrics.durations.observe(time.perf_counter() - started, *labels)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The Prometheus exposition: loopback and the allowed networks only; anyone else gets a
    404, as if nothing were here."""
    api_metrics: ApiMetrics = request.app.state.metrics
    if not scraper_allowed(request.client.host if request.client else None, api_metrics.allow):
        raise HTTPException(404, "Not Found")
    return Response(render(api_metrics.registry.samples()), media_type=CONTENT_TYPE)
