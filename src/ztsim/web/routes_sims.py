"""The SIM pages: `/sims` (search), `/sims/{iccid}` (facts, person, device, timeline),
`/sims/{iccid}/session` (the live-session fragment the SIM page refreshes every 2 s),
and `/sims/{iccid}/{action}` for the lifecycle: GET asks for confirmation, POST does it.

A POST changes the SIM through `ztsim.inventory.service.change_state`, the use case
behind `POST /api/v1/sims/{iccid}/{action}`, in one transaction, with the viewer's
token as the actor: the same audit event and the same change on the feed, so the AAA
role refuses a suspended SIM and sends Disconnect-Requests for its live sessions.
Another org's ICCID and an unknown one answer the same 404.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.identity.roles import Permission
from ztsim.inventory import service
from ztsim.inventory.lifecycle import REASON_REQUIRED, TRANSITIONS, IllegalTransition, SimAction
from ztsim.web import sim_timeline, sims
from ztsim.web.access import LOGIN_PATH, refused, signed_in, to
from ztsim.web.forms import read_form
from ztsim.web.person_key import find_person
from ztsim.web.render import page, refusal
from ztsim.web.session import csrf_matches
from ztsim.web.viewer import Viewer, context

router = APIRouter(include_in_schema=False)
NAV = "/sims"
MAX_REASON = 1000  # the API's bound on a reason (`api.schemas.Reason`)
NOT_HERE = "No SIM with that ICCID in this organisation."
NOT_OPERATOR = "SIMs are for the organisation's administrators, operators and auditors."
NOT_WRITER = "Changing a SIM is for the organisation's administrators and operators."

# What each action does, said before it is done and after.
CONSEQUENCES = {
    SimAction.ASSIGN: "The SIM will be given to the person named below. It cannot attach "
    "until it is activated.",
    SimAction.ACTIVATE: "The SIM will be able to attach from now on.",
    SimAction.SUSPEND: "The SIM will be refused from now on, and each of its live sessions "
    "disconnected: the gateway is sent a Disconnect-Request and the DNS gateway stops "
    "answering its address.",
    SimAction.RESUME: "The SIM will be able to attach again.",
    SimAction.RETIRE: "The SIM will be refused for good and its live sessions disconnected. "
    "A retired SIM cannot be used again.",
}
NOTICES = {
    SimAction.ASSIGN: "The SIM is assigned.",
    SimAction.ACTIVATE: "The SIM is active.",
    SimAction.SUSPEND: "The SIM is suspended. Its live sessions are being disconnected.",
    SimAction.RESUME: "The SIM is active again.",
    SimAction.RETIRE: "The SIM is retired. Its live sessions are being disconnected.",
}


def _path(iccid: str, suffix: str = "") -> str:
    return f"/sims/{quote(iccid, safe='')}{suffix}"


async def _viewer(request: Request, permission: Permission, message: str) -> Viewer | Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    return refused(viewer, permission, message) or viewer


@router.get("/sims")
async def sims_page(request: Request, q: str = "", cursor: str | None = None) -> Response:
    viewer = await _viewer(request, Permission.SIMS_READ, NOT_OPERATOR)
    if isinstance(viewer, Response):
        return viewer
    ctx = context(request)

    def read() -> sims.Found:
        with ctx.read() as conn:
            return sims.search(conn, viewer.principal.org_id, q, cursor=cursor)

    try:
        found = await run_in_threadpool(read)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    return page("sims.html", viewer, nav=NAV, title="SIMs", found=found)


@router.get("/sims/{iccid}")
async def sim_page(
    request: Request, iccid: str, events: str | None = None, done: str = ""
) -> Response:
    viewer = await _viewer(request, Permission.SIMS_READ, NOT_OPERATOR)
    if isinstance(viewer, Response):
        return viewer
    ctx = context(request)
    org = viewer.principal.org_id
    shows_sessions = viewer.may(Permission.SESSIONS_READ)
    shows_events = viewer.may(Permission.EVENTS_READ)

    def read() -> tuple[
        sims.SimFacts, list[sims.LiveSession], list[sim_timeline.Moment], str | None
    ]:
        with ctx.read() as conn:
            facts = sims.read_sim(conn, org, iccid)
            live = sims.live_sessions(conn, org, iccid) if shows_sessions else []
            moments, older = (
                sim_timeline.read(conn, org, iccid, facts.sim.imsi, cursor=events)
                if shows_events
                else ([], None)
            )
            return facts, live, moments, older

    try:
        facts, live, moments, older = await run_in_threadpool(read)
    except NotFound:
        return refusal(viewer, 404, NOT_HERE)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    notice = next((text for action, text in NOTICES.items() if action.value == done), "")
    return page(
        "sim.html",
        viewer,
        nav=NAV,
        title=f"SIM {facts.sim.iccid}",
        facts=facts,
        iccid=facts.sim.iccid,
        sessions=live,
        shows_sessions=shows_sessions,
        shows_events=shows_events,
        timeline=moments,
        older=older,
        may_write=viewer.may(Permission.SIMS_WRITE),
        notice=notice,
    )


@router.get("/sims/{iccid}/session")
async def session_fragment(request: Request, iccid: str) -> Response:
    signed = await signed_in(request)
    if isinstance(signed, Response):
        # Polled by htmx, which would follow a redirect and put the sign-in page inside
        # the SIM page: it is told to load the sign-in page as a whole instead.
        return Response(status_code=401, headers={"HX-Redirect": LOGIN_PATH})
    viewer = refused(signed, Permission.SIMS_READ, NOT_OPERATOR) or signed
    if isinstance(viewer, Response):
        return viewer
    if no := refused(viewer, Permission.SESSIONS_READ, "Sessions are not for this role."):
        return no
    ctx = context(request)
    org = viewer.principal.org_id

    def read() -> list[sims.LiveSession]:
        with ctx.read() as conn:
            sims.read_sim(conn, org, iccid)  # NotFound for another org's SIM
            return sims.live_sessions(conn, org, iccid)

    try:
        live = await run_in_threadpool(read)
    except NotFound:
        return refusal(viewer, 404, NOT_HERE)
    return page("sim_session.html", viewer, iccid=iccid, sessions=live, shows_sessions=True)


def _action(name: str) -> SimAction | None:
    return next((a for a in SimAction if a.value == name), None)


@router.get("/sims/{iccid}/{name}")
async def confirm_page(request: Request, iccid: str, name: str) -> Response:
    viewer = await _viewer(request, Permission.SIMS_WRITE, NOT_WRITER)
    if isinstance(viewer, Response):
        return viewer
    action = _action(name)
    if action is None:
        return refusal(viewer, 404, "There is no such page.")
    ctx = context(request)
    org = viewer.principal.org_id

    def read() -> tuple[sims.SimFacts, list[sims.LiveSession]]:
        with ctx.read() as conn:
            return sims.read_sim(conn, org, iccid), sims.live_sessions(conn, org, iccid)

    try:
        facts, live = await run_in_threadpool(read)
    except NotFound:
        return refusal(viewer, 404, NOT_HERE)
    if (facts.sim.state, action) not in TRANSITIONS:
        return refusal(viewer, 400, str(IllegalTransition(facts.sim.state, action)))
    return page(
        "sim_confirm.html",
        viewer,
        nav=NAV,
        title=f"{action.value.capitalize()} SIM {facts.sim.iccid}?",
        facts=facts,
        action=action.value,
        consequence=CONSEQUENCES[action],
        live_count=len(live),
        reason_required=action in REASON_REQUIRED,
        asks_person=action is SimAction.ASSIGN,
        max_reason=MAX_REASON,
    )


def _checked_reason(form: dict[str, str]) -> str:
    reason = form.get("reason", "").strip()
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"the reason is longer than {MAX_REASON} characters")
    if "\x00" in reason:
        raise InvalidInput("the reason must not contain NUL characters")
    return reason


@router.post("/sims/{iccid}/{name}")
async def perform(request: Request, iccid: str, name: str) -> Response:
    viewer = await _viewer(request, Permission.SIMS_WRITE, NOT_WRITER)
    if isinstance(viewer, Response):
        return viewer
    action = _action(name)
    if action is None:
        return refusal(viewer, 404, "There is no such page.")
    try:
        form = await read_form(request)
        reason = _checked_reason(form)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    if not csrf_matches(viewer.csrf, form.get("csrf")):
        return refusal(viewer, 403, "The form has expired. Reload the page and try again.")
    ctx = context(request)
    p = viewer.principal

    def run() -> None:
        identity_id = None
        if action is SimAction.ASSIGN:
            with ctx.read() as conn:
                person = find_person(conn, p.org_id, form.get("person", ""))
            if person is None:
                raise InvalidInput("No person in this organisation has that email or id.")
            identity_id = person.id
        with ctx.tx() as conn:
            service.change_state(
                conn,
                p.org_id,
                iccid,
                action,
                actor=p.actor,
                reason=reason,
                now=ctx.clock(),
                identity_id=identity_id,
            )

    try:
        await run_in_threadpool(run)
    except NotFound:
        return refusal(viewer, 404, NOT_HERE)
    except (InvalidInput, Conflict) as exc:
        return refusal(viewer, 400, str(exc))
    return to(_path(iccid, f"?done={action.value}"))
