"""`/settings`: the org's settings for roles with `org:read` (a `self` sign-in gets 403),
and the DNS privacy mode's change for roles with `dns:write`, in two steps: the form
posts the chosen mode and gets back what changes for employees; only the confirmation's
post (`confirm=yes`) writes it, through the same use case as PUT /api/v1/dns/settings.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.errors import Conflict, InvalidInput
from ztsim.identity.roles import Permission
from ztsim.web import settings_page
from ztsim.web.access import refused, signed_in, to
from ztsim.web.forms import read_form
from ztsim.web.render import page, refusal
from ztsim.web.session import csrf_matches
from ztsim.web.viewer import Viewer, context

router = APIRouter(include_in_schema=False)

SETTINGS_PATH = "/settings"
SAVED_PATH = "/settings?saved=privacy"


async def _settings(
    request: Request, viewer: Viewer, change: settings_page.Change | None = None
) -> Response:
    ctx = context(request)

    def read() -> settings_page.SettingsView:
        with ctx.read() as conn:
            return settings_page.read(conn, viewer)

    return page(
        "settings.html",
        viewer,
        nav=SETTINGS_PATH,
        title="Settings",
        view=await run_in_threadpool(read),
        change=change,
        saved=request.query_params.get("saved") == "privacy" and change is None,
        may_change=viewer.may(Permission.DNS_WRITE),
    )


@router.get(SETTINGS_PATH)
async def settings_page_view(request: Request) -> Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if no := refused(
        viewer, Permission.ORG_READ, "Settings are for the organisation's administrators."
    ):
        return no
    return await _settings(request, viewer)


@router.post(SETTINGS_PATH + "/privacy")
async def change_privacy(request: Request) -> Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if no := refused(
        viewer, Permission.DNS_WRITE, "Your role may read the settings, not change them."
    ):
        return no
    try:
        form = await read_form(request)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    if not csrf_matches(viewer.csrf, form.get("csrf")):
        return refusal(viewer, 403, "The form has expired. Reload the page and try again.")
    try:
        mode = settings_page.parse_mode(form.get("privacy"))
    except InvalidInput as exc:
        return refusal(viewer, 400, f"Nothing changed: {exc}.")
    org_id = viewer.principal.org_id
    ctx = context(request)
    if form.get("confirm") != "yes":

        def preview() -> settings_page.Change:
            with context(request).read() as conn:
                return settings_page.preview(conn, org_id, mode)

        return await _settings(request, viewer, await run_in_threadpool(preview))

    def write() -> None:
        with ctx.tx() as conn:
            settings_page.change_privacy(
                conn, org_id, mode, actor=viewer.principal.actor, now=ctx.clock()
            )

    try:
        await run_in_threadpool(write)
    except (InvalidInput, Conflict) as exc:  # the networks kept as they were, refused now
        return refusal(viewer, 400, f"Nothing changed: {exc}.")
    return to(SAVED_PATH)
