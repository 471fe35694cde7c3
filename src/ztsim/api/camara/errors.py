"""CAMARA error bodies (`ErrorInfo`: status, code, message) and the `x-correlator` header.

Every CAMARA answer, errors included, echoes a valid `x-correlator` (the specs'
XCorrelator pattern); an invalid one is itself a 400 INVALID_ARGUMENT, not echoed.
`CamaraRoute` makes routes answer this way: request validation errors become 400
INVALID_ARGUMENT and a `CamaraError` raised by a handler or a dependency becomes its
body, before the app's problem-details handlers could see either. Messages name fields,
never submitted values (one could be a secret or a number the caller should not see
repeated in logs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from ztsim.errors import ZtsimError

# The codes the SIM Swap 2.1.0 and Device Swap 1.0.0 responses define (Generic4xx).
INVALID_ARGUMENT = "INVALID_ARGUMENT"
OUT_OF_RANGE = "OUT_OF_RANGE"
UNAUTHENTICATED = "UNAUTHENTICATED"
PERMISSION_DENIED = "PERMISSION_DENIED"
IDENTIFIER_NOT_FOUND = "IDENTIFIER_NOT_FOUND"
SERVICE_NOT_APPLICABLE = "SERVICE_NOT_APPLICABLE"
MISSING_IDENTIFIER = "MISSING_IDENTIFIER"
UNNECESSARY_IDENTIFIER = "UNNECESSARY_IDENTIFIER"
TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"

CORRELATOR_HEADER = "x-correlator"
# The specs' XCorrelator schema (`-` after a range is a literal in both Python and ECMA).
_CORRELATOR = re.compile(r"[a-zA-Z0-9-_:;.\/<>{}]{0,256}")


class CamaraError(ZtsimError):
    """An error answered as CAMARA's ErrorInfo."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def unauthenticated() -> CamaraError:
    return CamaraError(
        401,
        UNAUTHENTICATED,
        "Request not authenticated due to missing, invalid, or expired credentials.",
    )


def permission_denied() -> CamaraError:
    return CamaraError(
        403,
        PERMISSION_DENIED,
        "Client does not have sufficient permissions to perform this action.",
    )


def identifier_not_found() -> CamaraError:
    return CamaraError(404, IDENTIFIER_NOT_FOUND, "Device identifier not found.")


def not_applicable(message: str) -> CamaraError:
    return CamaraError(422, SERVICE_NOT_APPLICABLE, message)


def valid_correlator(value: str | None) -> bool:
    return value is not None and _CORRELATOR.fullmatch(value) is not None


def correlator_in(scope: Scope) -> str | None:
    """The request's `x-correlator` when it is valid (and so may be echoed), else None."""
    for name, raw in scope.get("headers", ()):
        if name == b"x-correlator":
            value = raw.decode("latin-1")
            return value if valid_correlator(value) else None
    return None


def error_response(
    error: CamaraError, correlator: str | None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    out = dict(headers or {})
    if error.status == 401:
        out["WWW-Authenticate"] = "Bearer"  # RFC 6750 §3
    if correlator is not None:
        out[CORRELATOR_HEADER] = correlator
    body = {"status": error.status, "code": error.code, "message": error.message}
    return JSONResponse(body, status_code=error.status, headers=out)


def validation_message(errors: Sequence[Any]) -> str:
    """Where the request is wrong, from pydantic's errors: the field and the rule."""
    if not errors:
        return "Client specified an invalid argument, request body or query param."
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class CamaraRoute(APIRoute):
    """A route that answers as CAMARA does: ErrorInfo bodies and the correlator echoed."""

    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            raw = request.headers.get(CORRELATOR_HEADER)
            if raw is not None and not valid_correlator(raw):
                bad = CamaraError(400, INVALID_ARGUMENT, "x-correlator: invalid format")
                return error_response(bad, None)
            try:
                response = await inner(request)
            except RequestValidationError as exc:
                invalid = CamaraError(400, INVALID_ARGUMENT, validation_message(exc.errors()))
                return error_response(invalid, raw)
            except CamaraError as exc:
                return error_response(exc, raw)
            except HTTPException as exc:
                if exc.status_code != 400:  # a body too large stays the edge's 413
                    raise
                # A body FastAPI could not parse (not UTF-8, say).
                unreadable = CamaraError(400, INVALID_ARGUMENT, "the request body is unreadable")
                return error_response(unreadable, raw)
            if raw is not None:
                response.headers[CORRELATOR_HEADER] = raw
            return response

        return handler
