"""The web pages: an admin overview, an employee's own record, and the API's docs,
server-rendered (Jinja2), served by the API's app with nothing loaded from another host.

`install(app)` mounts them: the pages' router, the static files under /static, the
bearer scheme in the OpenAPI document, and the Content-Security-Policy on every response.
The app must be created with FastAPI's own docs turned off (`docs_url=None`,
`redoc_url=None`): those load Swagger UI and ReDoc from a CDN.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ztsim.web.csp import CspMiddleware
from ztsim.web.docs import install_openapi
from ztsim.web.routes import router

__all__ = ["install"]

STATIC_PATH = "/static"


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(packages=[("ztsim.web", "static")]), name="static")
    install_openapi(app)
    app.add_middleware(CspMiddleware)
