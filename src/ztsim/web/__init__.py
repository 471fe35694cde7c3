"""The web pages: the admin console (overview, SIMs, people, onboarding, DNS policy,
events, gateways, settings), an employee's own record, and the API's docs, server-rendered (Jinja2), served by the API's app with nothing loaded from another host.

`install(app)` mounts them: the pages' router, the static files under /static, the
bearer scheme in the OpenAPI document, and the Content-Security-Policy on every response.
The app must be created with FastAPI's own docs turned off (`docs_url=None`,
`redoc_url=None`): those load Swagger UI and ReDoc from a CDN.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ztsim.web import (
    routes_dns,
    routes_events,
    routes_gateways,
    routes_onboarding,
    routes_people,
    routes_settings,
    routes_sims,
)
from ztsim.web.csp import CspMiddleware
from ztsim.web.docs import install_openapi
from ztsim.web.routes import router

__all__ = ["install"]

STATIC_PATH = "/static"


def install(app: FastAPI) -> None:
    app.include_router(router)
    for pages in (
        routes_sims,
        routes_people,
        routes_onboarding,
        routes_dns,
        routes_events,
        routes_gateways,
        routes_settings,
    ):
        app.include_router(pages.router)
    app.mount(STATIC_PATH, StaticFiles(packages=[("ztsim.web", "static")]), name="static")
    install_openapi(app)
    app.add_middleware(CspMiddleware)
