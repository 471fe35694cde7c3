"""The API's documentation, served from this node: Swagger UI from vendored files
(`static/vendor/swagger-ui`, checked by `MANIFEST.sha256`), started by a script of ours,
so `/docs` works on a network that reaches no CDN and under a CSP with no inline script.

The OpenAPI document declares a bearer scheme (OpenAPI 3.1 §4.8.27, HTTP "bearer",
RFC 6750) on the routes the gate protects (`/api/...`, `/nudm-...`), so Swagger UI's
"Authorize" button takes an API token and sends it with "Try it out".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

SCHEME = "bearerToken"
# The paths the API's auth gate protects (ztsim.api.gate.PROTECTED_PREFIXES).
BEARER_PREFIXES = ("/api/", "/nudm-")
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def with_bearer(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the bearer scheme declared and required on the gated paths."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`ztsim token create`), sent as `Authorization: Bearer`.",
    }
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(BEARER_PREFIXES):
            continue
        for method, operation in operations.items():
            if method in _METHODS:
                operation.setdefault("security", [{SCHEME: []}])
    return document


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json) carry the bearer scheme; built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = with_bearer(document)
        return app.openapi_schema

    replace: Callable[[], dict[str, Any]] = openapi
    app.openapi = replace  # type: ignore[method-assign]
