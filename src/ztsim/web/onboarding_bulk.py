"""Bulk onboarding: order eSIMs for a group or a list of people at once, then watch their
packs being made and download the zip.

The same steps as the CLI's `ztsim esim order` and `ztsim esim pack` (the API has no bulk
route): `service.create_orders` in one transaction (people who already have an open order
are skipped, any other refusal refuses them all), then `service.pack_pages` for everyone
named (their newest usable order, new or not), rendered by `onboarding_jobs` in the
background. The progress fragment is fetched by htmx every second until it says done.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.dns.store import repository as dns_store
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.esim import service
from ztsim.esim.privacy import DnsLogging, DnsLogMode
from ztsim.identity import repository as identities
from ztsim.identity.models import Collection
from ztsim.identity.roles import Permission
from ztsim.web import onboarding
from ztsim.web.access import to
from ztsim.web.onboarding_forms import NAV, admitted, posted, writing_context
from ztsim.web.onboarding_jobs import PackJob, PackJobs
from ztsim.web.render import NO_STORE, page, refusal
from ztsim.web.viewer import Viewer

router = APIRouter(include_in_schema=False)
BULK = NAV + "/bulk"
_NEEDS = (Permission.ESIM_WRITE, Permission.ESIM_PACK)


def jobs(app: Starlette) -> PackJobs:
    """The app's jobs, made on first use (the app is built elsewhere)."""
    state = app.state
    found: PackJobs | None = getattr(state, "onboarding_jobs", None)
    if found is None:
        found = state.onboarding_jobs = PackJobs()
    return found


async def _form(
    request: Request,
    viewer: Viewer,
    *,
    group_id: str = "",
    emails: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    ctx = writing_context(request)

    def read() -> list[Collection]:
        with ctx.read() as conn:
            return onboarding.groups(conn, viewer.principal.org_id)

    return page(
        "onboarding_bulk.html",
        viewer,
        status,
        nav=NAV,
        title="Order eSIMs for several people",
        groups=await run_in_threadpool(read),
        group_id=group_id,
        emails=emails,
        error=error,
        max_people=onboarding.MAX_PEOPLE,
    )


@router.get(BULK)
async def bulk_form(request: Request) -> Response:
    viewer = await admitted(request, *_NEEDS)
    if isinstance(viewer, Response):
        return viewer
    return await _form(request, viewer)


@router.post(BULK)
async def bulk_order(request: Request) -> Response:
    viewer = await admitted(request, *_NEEDS)
    if isinstance(viewer, Response):
        return viewer
    form = await posted(request, viewer)
    if isinstance(form, Response):
        return form
    group_id, emails = form.get("group", ""), form.get("emails", "")
    ctx = writing_context(request)
    p = viewer.principal
    registry = jobs(request.app)

    def order() -> PackJob:
        registry.check_room()
        with ctx.read() as conn:
            people = onboarding.bulk_people(conn, p.org_id, group_id, emails)
        now = ctx.clock()
        with ctx.tx() as conn:
            bulk = service.create_orders(
                conn,
                ctx.sealer,
                p.org_id,
                people,
                config=ctx.esim,
                actor=p.actor,
                now=now,
                rand=ctx.random,
            )
        with ctx.read() as conn:
            settings, _ = dns_store.get_settings(conn, p.org_id)
            logging = DnsLogging(DnsLogMode(settings.privacy.value), settings.pseudonymise)
            packs = service.pack_pages(conn, ctx.sealer, p.org_id, people, now, dns=logging)
            names = [identities.get_identity(conn, p.org_id, i).name for i in packs.skipped]
        return registry.start(
            p.org_id, p.token_id, packs.pages, ordered=len(bulk.issued), skipped=names
        )

    try:
        job = await run_in_threadpool(order)
    except (InvalidInput, NotFound, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 400
        return await _form(
            request, viewer, group_id=group_id, emails=emails, error=str(exc), status=status
        )
    return to(f"{BULK}/{job.id}")


async def _job(request: Request, job_id: str) -> tuple[Viewer, PackJob] | Response:
    viewer = await admitted(request, *_NEEDS)
    if isinstance(viewer, Response):
        return viewer
    try:
        return viewer, jobs(request.app).get(
            viewer.principal.org_id, viewer.principal.token_id, job_id
        )
    except NotFound as exc:
        return refusal(viewer, 404, str(exc))


@router.get(BULK + "/{job_id}")
async def bulk_page(request: Request, job_id: str) -> Response:
    found = await _job(request, job_id)
    if isinstance(found, Response):
        return found
    viewer, job = found
    return page(
        "onboarding_progress.html",
        viewer,
        nav=NAV,
        title="Onboarding packs",
        job=job,
        progress=job.progress(),
        base=BULK,
    )


@router.get(BULK + "/{job_id}/progress")
async def bulk_progress(request: Request, job_id: str) -> Response:
    """The fragment htmx swaps in; it stops asking once it says done."""
    found = await _job(request, job_id)
    if isinstance(found, Response):
        return found
    _, job = found
    return page(
        "onboarding_progress_fragment.html", None, job=job, progress=job.progress(), base=BULK
    )


@router.get(BULK + "/{job_id}/packs.zip")
async def bulk_zip(request: Request, job_id: str) -> Response:
    found = await _job(request, job_id)
    if isinstance(found, Response):
        return found
    viewer, job = found
    body = job.zip()
    if body is None:
        return refusal(viewer, 409, "The packs are not ready yet.")
    headers = {**NO_STORE, "Content-Disposition": 'attachment; filename="onboarding-packs.zip"'}
    return Response(body, media_type="application/zip", headers=headers)
