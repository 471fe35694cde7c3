"""The OAuth 2.0 token endpoint for CAMARA API clients: client credentials (RFC 6749 §4.4).

`POST /oauth2/token`, form-encoded (§4.4.2), the client authenticated by HTTP Basic or
by `client_id` and `client_secret` in the body (§2.3.1; not both). Answers are §5.1
(access_token, token_type, expires_in, scope) and §5.2 errors, all with Cache-Control:
no-store. Failed client authentications are counted by the edge's gate per requester,
like failed bearer tokens. Neither secret nor token is ever logged or put in an event.
"""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ztsim.api.context import ApiContext
from ztsim.risk.clients import format_scopes
from ztsim.risk.store import clients
from ztsim.risk.store.clients import IssuedToken, Refused

router = APIRouter(include_in_schema=False)
log = logging.getLogger("ztsim.api.oauth")

TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# A token request is a few short parameters; anything longer is not one.
MAX_FORM_BYTES = 4096
# RFC 6749 §5.1 and §5.2: token responses must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(error: str, description: str, *, status: int = 400) -> JSONResponse:
    headers = dict(_NO_STORE)
    if error == "invalid_client":
        status = 401
        headers["WWW-Authenticate"] = 'Basic realm="ztsim"'  # §5.2: the scheme to use
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=headers)


class _BadRequest(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _form(raw: bytes, content_type: str) -> dict[str, str]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media != FORM_MEDIA_TYPE:
        raise _BadRequest(f"the request must be {FORM_MEDIA_TYPE}")
    if len(raw) > MAX_FORM_BYTES:
        raise _BadRequest("the request is too long")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise _BadRequest("the request body is not valid form data") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # §3.2: no parameter more than once
            raise _BadRequest(f"parameter {name} is repeated")
        if value:  # §3.1: a parameter without a value is omitted
            form[name] = value
    return form


def _basic(header: str | None) -> tuple[str, str] | None:
    """§2.3.1: Basic credentials, each part form-urlencoded before base64 (RFC 7617)."""
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise _BadRequest("only Basic client authentication is supported in Authorization")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _BadRequest("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _BadRequest("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def _credentials(form: dict[str, str], authorization: str | None) -> tuple[str, str] | None:
    basic = _basic(authorization)
    in_body = "client_secret" in form
    if basic is not None and in_body:
        raise _BadRequest("use one client authentication method, not two")  # §2.3
    if basic is not None:
        if "client_id" in form and form["client_id"] != basic[0]:
            raise _BadRequest("client_id differs from the authenticated client")
        return basic
    if in_body:
        return form.get("client_id", ""), form["client_secret"]
    return None


def _issue(
    ctx: ApiContext, client_id: str, secret: str, scope: str | None
) -> IssuedToken | Refused:
    with ctx.tx() as conn:
        return clients.issue_token(
            conn, client_id, secret, scope, now=ctx.clock(), random=ctx.random
        )


@router.post(TOKEN_PATH)
async def token(request: Request) -> JSONResponse:
    """RFC 6749 §4.4 client credentials: an access token for an API client that
    authenticates, with the scopes asked for (all of its own by default)."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    requester = request.client.host if request.client else "-"
    try:
        form = _form(await request.body(), request.headers.get("content-type", ""))
        credentials = _credentials(form, request.headers.get("authorization"))
    except _BadRequest as exc:
        return oauth_error("invalid_request", exc.description)
    if credentials is None:
        return oauth_error("invalid_client", "client authentication is required")
    grant_type = form.get("grant_type")
    if grant_type is None:
        return oauth_error("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        return oauth_error("unsupported_grant_type", "only client_credentials is supported")
    result = await run_in_threadpool(_issue, ctx, *credentials, form.get("scope"))
    if isinstance(result, Refused):
        # The client id is public; the secret is not, and is never logged.
        log.info("token refused (%s) for a client from %s", result.error, requester)
        return oauth_error(result.error, result.description)
    assert isinstance(result, IssuedToken)
    body = {
        "access_token": result.access_token,
        "token_type": "Bearer",
        "expires_in": result.expires_in,
        "scope": format_scopes(result.grant.scopes),
    }
    return JSONResponse(body, headers=_NO_STORE)
