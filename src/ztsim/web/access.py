"""Who may open a page: every page starts with `signed_in` (no session: 303 to the
sign-in page) and then `refused` (a person whose role lacks the page's permission, or a
`self` sign-in on an admin page: 403 in the site's layout).

A page's handler reads:

    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if (no := refused(viewer, Permission.SIMS_READ, "SIMs are for the org's operators.")):
        return no
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ztsim.identity.roles import Permission
from ztsim.web.render import refusal
from ztsim.web.viewer import Viewer, current

LOGIN_PATH = "/login"


def to(path: str) -> RedirectResponse:
    """See-other: a browser follows it with GET (after a form's POST too)."""
    return RedirectResponse(path, status_code=303)


async def signed_in(request: Request) -> Viewer | Response:
    viewer = await run_in_threadpool(current, request)
    return to(LOGIN_PATH) if viewer is None else viewer


def refused(viewer: Viewer, permission: Permission, message: str) -> Response | None:
    """403 for an employee's own sign-in (admin pages are never theirs, whatever the
    permission's name) and for a role without `permission`; None when allowed."""
    if viewer.is_self or not viewer.may(permission):
        return refusal(viewer, 403, message)
    return None
