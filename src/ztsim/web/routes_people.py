"""The people pages: `/people` (searchable, paged), `/people/{id}` (one person's SIMs,
devices, groups and fleets), `/groups` (groups and fleets with their members), and the
one change they make: adding a person to a group or fleet, or taking them out.

The change goes through `ztsim.identity.service`, as the API's PUT and DELETE member
routes do, so its audit event and the planes' change are the same whichever way it came.
Reads need `identities:read`, the change `identities:write`; a `self` sign-in gets 403,
another org's person or group 404.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.errors import InvalidInput, NotFound
from ztsim.identity import service
from ztsim.identity.models import IdentityKind
from ztsim.identity.roles import Permission
from ztsim.web import people
from ztsim.web.access import refused, signed_in, to
from ztsim.web.forms import read_form
from ztsim.web.render import page, refusal
from ztsim.web.session import csrf_matches
from ztsim.web.viewer import Viewer, context

router = APIRouter(include_in_schema=False)

READ_REFUSED = "People, groups and fleets are for the organisation's administrators."
WRITE_REFUSED = "Your role may read people, not change their groups."
NOT_FOUND = "There is no such person in your organisation."
# The path's collection word -> is it a fleet.
COLLECTIONS = {"groups": False, "fleets": True}
KINDS = ((IdentityKind.USER.value, "People"), (IdentityKind.SERVICE.value, "Service identities"))


async def _admitted(request: Request, permission: Permission, message: str) -> Viewer | Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    return refused(viewer, permission, message) or viewer


def person_path(identity_id: str) -> str:
    return f"/people/{quote(identity_id, safe='')}"


@router.get("/people")
async def people_page(request: Request) -> Response:
    viewer = await _admitted(request, Permission.IDENTITIES_READ, READ_REFUSED)
    if isinstance(viewer, Response):
        return viewer
    params = request.query_params
    q, cursor, kind_text = params.get("q", ""), params.get("cursor"), params.get("kind", "")
    try:
        kind = IdentityKind(kind_text) if kind_text else None
    except ValueError:
        return refusal(viewer, 400, "Show people, service identities, or everyone.")

    def read() -> people.Found:
        with context(request).read() as conn:
            return people.search(conn, viewer.principal.org_id, q, kind=kind, cursor=cursor)

    try:
        found = await run_in_threadpool(read)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    kept = {"q": q.strip(), "kind": kind_text}
    kept = {k: v for k, v in kept.items() if v}
    next_url = None
    if found.next_cursor is not None:
        next_url = "/people?" + urlencode({**kept, "cursor": found.next_cursor})
    first_url = ("/people?" + urlencode(kept)) if cursor else None
    return page(
        "people.html",
        viewer,
        nav="/people",
        title="People",
        found=found,
        q=q.strip(),
        kind=kind_text,
        kinds=KINDS,
        next_url=next_url,
        first_url=first_url,
    )


@router.get("/people/{identity_id}")
async def person_page(request: Request, identity_id: str) -> Response:
    viewer = await _admitted(request, Permission.IDENTITIES_READ, READ_REFUSED)
    if isinstance(viewer, Response):
        return viewer

    def read() -> people.Person:
        with context(request).read() as conn:
            return people.person(conn, viewer, identity_id)

    try:
        found = await run_in_threadpool(read)
    except NotFound:
        return refusal(viewer, 404, NOT_FOUND)
    return page(
        "person.html",
        viewer,
        nav="/people",
        title=found.identity.name,
        person=found,
        here=person_path(found.identity.id),
        may_change=viewer.may(Permission.IDENTITIES_WRITE),
    )


@router.get("/groups")
async def groups_page(request: Request) -> Response:
    viewer = await _admitted(request, Permission.IDENTITIES_READ, READ_REFUSED)
    if isinstance(viewer, Response):
        return viewer

    def read() -> tuple[list[people.Listed], list[people.Listed]]:
        with context(request).read() as conn:
            org = viewer.principal.org_id
            return people.collections(conn, org, fleet=False), people.collections(
                conn, org, fleet=True
            )

    groups, fleets = await run_in_threadpool(read)
    return page(
        "groups.html",
        viewer,
        nav="/people",
        title="Groups and fleets",
        groups=groups,
        fleets=fleets,
    )


@router.get("/fleets")
async def fleets_page() -> Response:
    return to("/groups#fleets")


async def _change(
    request: Request, identity_id: str, collection: str, cid: str | None, *, join: bool
) -> Response:
    viewer = await _admitted(request, Permission.IDENTITIES_WRITE, WRITE_REFUSED)
    if isinstance(viewer, Response):
        return viewer
    fleet = COLLECTIONS.get(collection)
    if fleet is None:
        return refusal(viewer, 404, "There is no such page.")
    try:
        form = await read_form(request)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    if not csrf_matches(viewer.csrf, form.get("csrf")):
        return refusal(viewer, 403, "The form has expired. Reload the page and try again.")
    chosen = cid if cid is not None else form.get("collection_id", "")
    ctx = context(request)

    def write() -> None:
        org, actor = viewer.principal.org_id, viewer.principal.actor
        with ctx.tx() as conn:
            if join:
                service.add_members(
                    conn, org, chosen, [identity_id], fleet=fleet, actor=actor, now=ctx.clock()
                )
            else:
                service.remove_member(
                    conn, org, chosen, identity_id, fleet=fleet, actor=actor, now=ctx.clock()
                )

    try:
        await run_in_threadpool(write)
    except NotFound as exc:
        return refusal(viewer, 404, f"Nothing changed: {exc}.")
    except InvalidInput as exc:
        return refusal(viewer, 400, f"Nothing changed: {exc}.")
    return to(person_path(identity_id))


@router.post("/people/{identity_id}/{collection}")
async def join_page(request: Request, identity_id: str, collection: str) -> Response:
    return await _change(request, identity_id, collection, None, join=True)


@router.post("/people/{identity_id}/{collection}/{cid}/remove")
async def leave_page(request: Request, identity_id: str, collection: str, cid: str) -> Response:
    return await _change(request, identity_id, collection, cid, join=False)
