"""The common Nudm generate-auth-data request, answered without FastAPI's stack.

An AUSF's vector request is the one request a UDM serves by the thousand per second,
and through FastAPI (its middleware, routing, dependency solving and models) it cost
several times the vector itself. This pure ASGI layer sits inside the HTTP edge (so
the gate has checked the bearer token before the body, the body limit applies, and
the security headers and request metrics are those of every response) and answers
the plain case itself: a POST for an `imsi-` SUPI, by a principal allowed vectors,
with a well-formed JSON body without `resynchronizationInfo`. Everything else (a
SUCI, a resynchronisation, a malformed request, another role, another path) goes on
to `routes_udm`, the reference, with the body handed on as read; so the errors and
their shapes have one implementation. The answers are those of `routes_udm`.
On a server, most such requests never get here: `ueau_lane` answers them from the
connection once the gate remembers their token; this layer serves the rest (a token
seen for the first time in a second, a client of the app without that server).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ztsim.api.context import ApiContext
from ztsim.api.gate import PRINCIPAL_KEY
from ztsim.api.problems import database_unavailable, log_unavailable, unavailable_response
from ztsim.api.routes_udm import AuthenticationInfoRequest, issuer_of, sbi_problem
from ztsim.errors import NotFound
from ztsim.identity.roles import Permission, Principal, allows
from ztsim.udm import service
from ztsim.udm.issuer import VectorRequest

# TS 29.503 Nudm_UEAU: POST {apiRoot}/nudm-ueau/v1/{supiOrSuci}/security-information/generate-auth-data
PLAIN_PATH = r"/nudm-ueau/v1/imsi-([0-9]{5,15})/security-information/generate-auth-data"
_PATH = re.compile(PLAIN_PATH)
_JSON = re.compile(rb"application/(?:[A-Za-z0-9.+-]+\+)?json(?:\s*;.*)?", re.IGNORECASE)
_HEADERS = [(b"content-type", b"application/json")]


def json_content_type(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Content-Type names JSON (or is absent, which FastAPI also reads as JSON)."""
    for name, value in headers:
        if name == b"content-type":
            return _JSON.fullmatch(value) is not None
    return True


class UeauFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _PATH.fullmatch(scope["path"])
        principal = scope.get(PRINCIPAL_KEY) if match is not None else None
        if (
            match is None
            or not isinstance(principal, Principal)
            or not allows(principal.role, Permission.AKA_VECTORS)
            or not json_content_type(scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left before its body arrived: no one to answer
        try:
            request = AuthenticationInfoRequest.model_validate_json(body)
        except ValidationError:
            request = None
        if request is None or request.resynchronizationInfo is not None:
            await self.app(scope, _replay(body, receive), send)
            return
        ctx = scope["app"].state.ctx
        assert isinstance(ctx, ApiContext)
        try:
            result = await issuer_of(scope["app"].state, ctx).issue_async(
                VectorRequest(
                    principal.org_id,
                    match.group(1),
                    request.servingNetworkName,
                    request.ausfInstanceId,
                    ctx.clock(),
                )
            )
        except NotFound:
            response = sbi_problem(404, "USER_NOT_FOUND", "no subscriber with that SUPI")
            await response(scope, receive, send)
            return
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log_unavailable(exc)
            await unavailable_response()(scope, receive, send)
            return
        if isinstance(result, service.Refusal):
            await sbi_problem(403, "AUTHENTICATION_REJECTED", result.reason)(scope, receive, send)
            return
        await _send_json(send, result_json(result))


def result_json(result: service.IssuedVector) -> bytes:
    """AuthenticationInfoResult (TS 29.503), as `routes_udm` renders it."""
    av = result.vector
    return (
        '{"authType":"5G_AKA","authenticationVector":{"avType":"5G_HE_AKA",'
        f'"rand":"{av.rand.hex()}","xresStar":"{av.xres_star.hex()}",'
        f'"autn":"{av.autn.hex()}","kausf":"{av.kausf.hex()}"}},'
        f'"supi":{json.dumps(result.supi)}}}'
    ).encode()


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (the edge bounds its size while it streams); None on disconnect."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app behind: the body already read, then the connection's own."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _send_json(send: Send, body: bytes) -> None:
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
