"""The pages: `/` sends a person where they belong, `/login` and `/logout` open and end
a session, `/overview` for the org's roles, `/me` for an employee, `/docs` the API's
documentation. None is in the OpenAPI document: they answer HTML, not the API.

A page reads through the same store functions as the API (`overview`, `record`), in a
worker thread (they are blocking database reads). Unsigned visitors are sent to /login
(303); a signed-in person on a page not for their role gets 403 in the site's layout.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.errors import InvalidInput
from ztsim.identity.roles import Permission
from ztsim.web import overview, record, session
from ztsim.web.access import LOGIN_PATH, refused, signed_in, to
from ztsim.web.forms import read_form
from ztsim.web.render import page, refusal
from ztsim.web.viewer import Viewer, authenticate, context, current

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_LIFETIME = timedelta(minutes=30)
OPENAPI_URL = "/openapi.json"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _home(viewer: Viewer) -> str:
    return "/me" if viewer.is_self else "/overview"


@router.get("/")
async def start(request: Request) -> Response:
    viewer = await run_in_threadpool(current, request)
    return to(LOGIN_PATH if viewer is None else _home(viewer))


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    csrf = session.new_secret()
    response = page("login.html", None, status, title="Sign in", csrf=csrf, error=error)
    session.set_cookie(
        response,
        session.LOGIN_CSRF_COOKIE,
        csrf,
        secure=_secure(request),
        max_age=LOGIN_CSRF_LIFETIME,
    )
    return response


@router.get(LOGIN_PATH)
async def login_form(request: Request) -> Response:
    viewer = await run_in_threadpool(current, request)
    return _login_page(request) if viewer is None else to(_home(viewer))


@router.post(LOGIN_PATH)
async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
    except InvalidInput as exc:
        return refusal(None, 400, str(exc))
    if not session.csrf_matches(request.cookies.get(session.LOGIN_CSRF_COOKIE), form.get("csrf")):
        return refusal(None, 403, "The sign-in form has expired. Open the sign-in page again.")
    ctx = context(request)
    token = form.get("token", "").strip()
    principal = await run_in_threadpool(authenticate, ctx, token) if token else None
    if principal is None:
        # The same words whatever was wrong: an unknown token and a machine's token alike.
        return _login_page(
            request, "That token is unknown, expired, revoked or not a person's.", 401
        )
    sealed = session.seal(ctx.sealer, session.Session(token, session.new_secret(), ctx.clock()))
    response = to("/")
    session.set_cookie(
        response, session.COOKIE, sealed, secure=_secure(request), max_age=session.LIFETIME
    )
    response.delete_cookie(session.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer = await run_in_threadpool(current, request)
    if viewer is None:
        return to(LOGIN_PATH)
    try:
        form = await read_form(request)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    if not session.csrf_matches(viewer.csrf, form.get("csrf")):
        return refusal(viewer, 403, "The sign-out form has expired. Reload the page and try again.")
    response = to(LOGIN_PATH)
    response.delete_cookie(session.COOKIE, path="/", secure=_secure(request), httponly=True)
    return response


@router.get("/overview")
async def overview_page(request: Request) -> Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if no := refused(
        viewer, Permission.ORG_READ, "The overview is for the organisation's administrators."
    ):
        return no
    ctx = context(request)

    def read() -> overview.Overview:
        with ctx.read() as conn:
            return overview.read(conn, viewer, ctx.clock)

    return page(
        "overview.html",
        viewer,
        nav="/overview",
        title="Overview",
        overview=await run_in_threadpool(read),
    )


@router.get("/me")
async def me_page(request: Request) -> Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if not viewer.is_self:
        return refusal(viewer, 403, "This page is an employee's own record: sign in with theirs.")
    ctx = context(request)

    def read() -> record.Record:
        with ctx.read() as conn:
            return record.read(conn, viewer.principal)

    found = await run_in_threadpool(read)
    return page("me.html", viewer, title="What is recorded about me", record=found)


@router.get("/docs")
async def api_docs() -> Response:
    return page("docs.html", None, title="API documentation", openapi_url=OPENAPI_URL)
