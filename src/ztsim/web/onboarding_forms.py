"""What every onboarding route does first: find the viewer and check their role, read a
posted form and check its CSRF field, and reach the parts of the app's context that
writing needs (a transaction, the eSIM settings, randomness for the codes).

The API's `ApiContext` satisfies `OnboardingContext` as it satisfies `WebContext`:
this package still imports nothing of `ztsim.api`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from ztsim.errors import InvalidInput
from ztsim.esim.config import EsimConfig
from ztsim.identity.roles import Permission
from ztsim.web.access import refused, signed_in
from ztsim.web.forms import read_form
from ztsim.web.render import refusal
from ztsim.web.session import csrf_matches
from ztsim.web.viewer import Viewer, WebContext

NAV = "/onboarding"
_WHY = {
    Permission.ESIM_READ: "Onboarding is for the organisation's administrators and operators.",
    Permission.ESIM_WRITE: "Ordering and cancelling eSIMs is for administrators and operators.",
    Permission.ESIM_PACK: "Activation codes and packs are for those who may print them.",
}


class OnboardingContext(WebContext, Protocol):
    @property
    def esim(self) -> EsimConfig: ...

    @property
    def random(self) -> Callable[[int], bytes]: ...


def writing_context(request: Request) -> OnboardingContext:
    ctx: OnboardingContext = request.app.state.ctx
    return ctx


async def admitted(request: Request, *needs: Permission) -> Viewer | Response:
    """The viewer when signed in with every permission in `needs` (ESIM_READ always);
    otherwise the answer to send: to the sign-in page, or 403."""
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    for permission in (Permission.ESIM_READ, *needs):
        if no := refused(viewer, permission, _WHY.get(permission, _WHY[Permission.ESIM_READ])):
            return no
    return viewer


async def posted(request: Request, viewer: Viewer) -> dict[str, str] | Response:
    """The form's fields when its CSRF field is the session's; otherwise 400 or 403."""
    try:
        form = await read_form(request)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    if not csrf_matches(viewer.csrf, form.get("csrf")):
        return refusal(viewer, 403, "The form has expired. Reload the page and try again.")
    return form


def not_found(viewer: Viewer) -> Response:
    return refusal(viewer, 404, "There is no such eSIM order in your organisation.")
