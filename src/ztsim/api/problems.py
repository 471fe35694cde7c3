"""Errors as RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from ztsim.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, ZtsimError

PROBLEM_MEDIA_TYPE = "application/problem+json"
# 3GPP service-based interfaces answer with TS 29.571 ProblemDetails instead.
SBI_PREFIXES = ("/nudm-",)
log = logging.getLogger("ztsim.api")
# Seconds a client is asked to wait while the database is unreachable (RFC 9110 §10.2.3).
RETRY_AFTER_UNAVAILABLE = 5
# Connection-level failures: the database is down or unreachable, not the request wrong.
UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    # Field-level errors of a request or of a file's rows.
    errors: list[dict[str, Any]] | None = None


def problem_response(
    status: int,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors)
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def unavailable_response() -> JSONResponse:
    return problem_response(
        503,
        "the database is unreachable; try again later",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
    )


def database_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    )


def log_unavailable(exc: BaseException) -> None:
    # The type only: a driver's message can quote the statement and its parameters.
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    log.warning("database unavailable (%s); answering 503", type(cause).__name__)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(routes: list[Any], scope: Scope) -> list[str]:
    """Every method some route serves at this path (RFC 9110 §15.5.6: a 405 lists them).
    Starlette's own `Allow` names only the first route that matched the path."""
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _problem_schema() -> dict[str, Any]:
    return Problem.model_json_schema()


def problem_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response entries for the problems a route can answer with."""
    schema = _problem_schema()
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


_STATUS_OF: tuple[tuple[type[ZtsimError], int], ...] = (
    (Unauthenticated, 401),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (InvalidInput, 422),
)


def install(app: FastAPI) -> None:
    @app.exception_handler(ZtsimError)
    async def _ztsim_error(_request: Request, exc: Exception) -> JSONResponse:
        for kind, status in _STATUS_OF:
            if isinstance(exc, kind):
                return problem_response(status, str(exc))
        log.error("unhandled ztsim error: %s", type(exc).__name__)
        return problem_response(500, "internal error")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if request.url.path.startswith(SBI_PREFIXES):
            # TS 29.500 §5.2.7.2: malformed requests are 400 INVALID_MSG_FORMAT with invalidParams.
            invalid = [
                {
                    "param": "/".join(str(p) for p in e.get("loc", ())),
                    "reason": str(e.get("msg", "")),
                }
                for e in exc.errors()
            ]
            body = {
                "title": "Bad Request",
                "status": 400,
                "cause": "INVALID_MSG_FORMAT",
                "invalidParams": invalid,
            }
            return JSONResponse(body, status_code=400, media_type=PROBLEM_MEDIA_TYPE)
        errors = [
            # Echo where and why, never the submitted value: it may be a secret.
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return problem_response(422, "the request is invalid", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope))
        return problem_response(exc.status_code, str(exc.detail), headers=headers)

    async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc
        log_unavailable(exc)
        return unavailable_response()

    for kind in (*UNAVAILABLE, sa_exc.DBAPIError):
        app.add_exception_handler(kind, _unavailable)
