"""DNS over HTTPS (RFC 8484) at /dns-query and /dns-query/{token}, GET and POST.

Not under the API's bearer-token scheme (DoH clients send none): `/dns-query`
is authorised like UDP by the client address (session table), and the path
token of `/dns-query/{token}` is itself the device's credential. Both answer
REFUSED to anyone the gateway does not know. Kept out of the OpenAPI document:
the bodies are DNS messages, specified by RFC 8484, not JSON.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from ztsim.dns.policy.identity import Requester
from ztsim.dns.serve.doh import (
    MAX_MESSAGE,
    MEDIA_TYPE,
    DohInputError,
    DohService,
    max_age,
    message_from_get,
    message_from_post,
)

router = APIRouter(include_in_schema=False)


def _service_of(request: Request) -> DohService | None:
    """The gateway of this process, given to `create_app` by the node that runs both."""
    service = getattr(request.app.state, "doh", None)
    return service if isinstance(service, DohService) else None


def _problem(status: int, detail: str) -> Response:
    body = json.dumps({"type": "about:blank", "status": status, "detail": detail})
    return Response(body, status_code=status, media_type="application/problem+json")


async def _answer(request: Request, token: str | None) -> Response:
    service = _service_of(request)
    if service is None:
        return _problem(503, "the DNS gateway does not run in this process")
    try:
        if request.method == "GET":
            wire = message_from_get(request.query_params.get("dns"))
        else:
            body = await request.body()
            if len(body) > MAX_MESSAGE:
                return _problem(413, "DNS message too large")
            wire = message_from_post(request.headers.get("content-type"), body)
    except DohInputError as exc:
        status = 415 if "content type" in str(exc) else 400
        return _problem(status, str(exc))
    who: Requester | None
    if token is None:
        who = await service.requester(request.client.host if request.client else None)
    else:
        who = service.by_token(token)
    answer = await service.answer(wire, who)
    if answer is None:
        return _problem(400, "not a DNS query")
    headers = {"cache-control": f"max-age={max_age(answer)}"}
    return Response(answer, media_type=MEDIA_TYPE, headers=headers)


@router.api_route("/dns-query", methods=["GET", "POST"])
async def dns_query(request: Request) -> Response:
    """RFC 8484 DNS-over-HTTPS (GET `?dns=` or POST): the query is answered with the policy
    of whoever holds the source address, as over UDP."""
    return await _answer(request, None)


@router.api_route("/dns-query/{token}", methods=["GET", "POST"])
async def dns_query_device(request: Request, token: str) -> Response:
    """RFC 8484 DNS-over-HTTPS for one device: the token in the path names it, so its
    owner's policy applies wherever the device is connected."""
    return await _answer(request, token)
