"""Errors as RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ztsim.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, ZtsimError

PROBLEM_MEDIA_TYPE = "application/problem+json"
# 3GPP service-based interfaces answer with TS 29.571 ProblemDetails instead.
SBI_PREFIXES = ("/nudm-",)
log = logging.getLogger("ztsim.api")


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    # Field-level errors of a request or of a file's rows.
    errors: list[dict[str, Any]] | None = None


def problem_response(
    status: int, detail: str | None = None, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


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
    async def _http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(exc.status_code, str(exc.detail))
