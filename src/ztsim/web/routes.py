"""The pages: `/` sends a person where they belong, `/login` and `/logout` open and end
a session, `/overview` for the org's roles (with its charts' figures as JSON,
`/overview/series.json`), `/me` for an employee (with their open eSIM order's QR code,
`/me/onboarding/{order_id}/qr.svg`), `/docs` the API's documentation. None is in the
OpenAPI document: they answer HTML (and the chart's JSON), not the API.

A page reads through the same store functions as the API (`overview`, `record`), in a
worker thread (they are blocking database reads). Unsigned visitors are sent to /login
(303); a signed-in person on a page not for their role gets 403 in the site's layout.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ztsim.errors import InvalidInput, NotFound
from ztsim.identity.roles import Permission
from ztsim.web import overview, own_onboarding, record, series, session
from ztsim.web.access import LOGIN_PATH, refused, signed_in, to
from ztsim.web.forms import read_form
from ztsim.web.render import NO_STORE, page, refusal
from ztsim.web.viewer import Viewer, authenticate, context, current

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_LIFETIME = timedelta(minutes=30)
OPENAPI_URL = "/openapi.json"
SERIES_PATH = "/overview/series.json"
# A bearer secret (the activation code) or its picture: no cache keeps it.
OVERVIEW_REFUSED = "The overview is for the organisation's administrators."
OWN_PAGE_ONLY = "This page is an employee's own record: sign in with theirs."


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
    if no := refused(viewer, Permission.ORG_READ, OVERVIEW_REFUSED):
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
        series_url=SERIES_PATH,
    )


@router.get(SERIES_PATH)
async def overview_series(request: Request) -> Response:
    """The charts' figures for the overview's script: the same checks as the page."""
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if viewer.is_self or not viewer.may(Permission.ORG_READ):
        return JSONResponse({"detail": OVERVIEW_REFUSED}, status_code=403)
    ctx = context(request)

    def read() -> series.Series:
        with ctx.read() as conn:
            return series.read(conn, viewer, ctx.clock)

    found = await run_in_threadpool(read)
    if found.hidden:
        return JSONResponse({"detail": "Your role does not read the event log."}, 403)
    return JSONResponse(found.as_json(), headers={"Cache-Control": "no-cache, private"})


@router.get("/me")
async def me_page(request: Request) -> Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if not viewer.is_self:
        return refusal(viewer, 403, OWN_PAGE_ONLY)
    ctx = context(request)

    def read() -> record.Record:
        with ctx.read() as conn:
            return record.read(conn, viewer.principal, ctx.sealer, ctx.clock())

    found = await run_in_threadpool(read)
    response = page("me.html", viewer, title="What is recorded about me", record=found)
    if found.onboarding is not None:
        response.headers.update(NO_STORE)  # the page shows the activation code
    return response


@router.get("/me/onboarding/{order_id}/qr.svg")
async def my_onboarding_qr(request: Request, order_id: str) -> Response:
    """The QR code of the person's own open eSIM order; any other order is not found."""
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    if not viewer.is_self or not viewer.may(Permission.ESIM_PACK):
        return refusal(viewer, 403, OWN_PAGE_ONLY)
    ctx = context(request)

    def read() -> bytes | None:
        with ctx.read() as conn:
            try:
                return own_onboarding.qr(conn, ctx.sealer, viewer.principal, order_id, ctx.clock())
            except NotFound:
                return None

    svg = await run_in_threadpool(read)
    if svg is None:
        return refusal(viewer, 404, "No open eSIM order of yours has that number.")
    return Response(svg, media_type="image/svg+xml", headers=NO_STORE)


@router.get("/docs")
async def api_docs() -> Response:
    return page("docs.html", None, title="API documentation", openapi_url=OPENAPI_URL)
