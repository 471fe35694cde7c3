"""`/dns`: the org's DNS policy, and a GET form that tests a name for a person.

For the roles that may read the DNS policy (dns:read); testing a name also needs
policy:explain, as the API's explain does. A name that is not one, or a person the org
does not have, is a 400 with the page and the message, not an error page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.errors import InvalidInput, NotFound
from ztsim.identity.roles import Permission
from ztsim.web import dns_policy
from ztsim.web.access import refused, signed_in
from ztsim.web.render import page, refusal
from ztsim.web.viewer import context

router = APIRouter(include_in_schema=False)
_MAX_FIELD = 320


@router.get("/dns")
async def dns_page(request: Request) -> Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if no := refused(viewer, Permission.DNS_READ, "The DNS policy is for the org's operators."):
        return no
    ctx = context(request)
    org = viewer.principal.org_id
    may_test = viewer.may(Permission.POLICY_EXPLAIN)
    name = request.query_params.get("name", "").strip()[:_MAX_FIELD]
    person = request.query_params.get("person", "").strip()[:_MAX_FIELD]
    asked = bool(name or person)
    if asked and not may_test:
        return refusal(viewer, 403, "Testing a name needs a role that may explain decisions.")

    def read() -> tuple[dns_policy.Policy, dns_policy.Tested | None, str]:
        tested, error = None, ""
        with ctx.read() as conn:
            policy = dns_policy.read(conn, org)
            if asked:
                if not (name and person):
                    error = "Give both a name and a person to test."
                else:
                    try:
                        tested = dns_policy.try_name(conn, org, name, person, ctx.clock())
                    except (InvalidInput, NotFound) as exc:
                        error = str(exc)
        return policy, tested, error

    policy, tested, error = await run_in_threadpool(read)
    return page(
        "dns.html",
        viewer,
        400 if error else 200,
        nav="/dns",
        title="DNS policy",
        policy=policy,
        may_test=may_test,
        name=name,
        person=person,
        tested=tested,
        error=error,
    )
