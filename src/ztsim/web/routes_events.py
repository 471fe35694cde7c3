"""`/events`: the events explorer, and its filtered events as `/events.csv` and
`/events.json` downloads.

For the roles that may read the event log (events:read), never a `self` sign-in (the
employee's own page shows theirs). A malformed filter is a 400 with the form and the
message; every read is the viewer's org, as GET /api/v1/events reads it.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ztsim.errors import InvalidInput
from ztsim.events import store
from ztsim.events.schema import Event
from ztsim.identity.roles import Permission
from ztsim.web import events_explorer as explorer
from ztsim.web import events_export as export
from ztsim.web.access import refused, signed_in
from ztsim.web.render import page, refusal
from ztsim.web.viewer import Viewer, context

router = APIRouter(include_in_schema=False)
_REFUSED = "The event log is for the org's administrators, analysts and auditors."


async def _viewer(request: Request) -> Viewer | Response:
    viewer = await signed_in(request)
    if isinstance(viewer, Response):
        return viewer
    return refused(viewer, Permission.EVENTS_READ, _REFUSED) or viewer


@router.get("/events")
async def events_page(request: Request) -> Response:
    viewer = await _viewer(request)
    if isinstance(viewer, Response):
        return viewer
    ctx = context(request)
    org = viewer.principal.org_id
    typed = explorer.typed(request.query_params)
    older = request.query_params.get("older", "")
    newer = request.query_params.get("newer", "")

    def read() -> tuple[list[str], explorer.Explored | None, str]:
        with ctx.read() as conn:
            kinds = store.kinds(conn, org)
            try:
                filters = explorer.parse(typed)
                found = explorer.explore(conn, org, filters, older=older, newer=newer)
            except InvalidInput as exc:
                return kinds, None, str(exc)
        return kinds, found, ""

    kinds, found, error = await run_in_threadpool(read)
    exports = explorer.Filters(typed).query_string()
    return page(
        "events.html",
        viewer,
        400 if error else 200,
        nav="/events",
        title="Events",
        typed=typed,
        kinds=kinds,
        outcomes=explorer.OUTCOMES,
        found=found,
        paged=bool(older or newer),
        error=error,
        exports=exports,
        max_rows=export.MAX_ROWS,
        time_input=explorer.time_input,
    )


async def _export(
    request: Request, extension: str, media_type: str, encode: Callable[[list[Event]], str | bytes]
) -> Response:
    viewer = await _viewer(request)
    if isinstance(viewer, Response):
        return viewer
    ctx = context(request)
    org = viewer.principal.org_id
    typed = explorer.typed(request.query_params)

    def read() -> tuple[list[Event], bool]:
        filters = explorer.parse(typed)
        with ctx.read() as conn:
            return export.collect(conn, org, filters)

    try:
        events, truncated = await run_in_threadpool(read)
    except InvalidInput as exc:
        return refusal(viewer, 400, str(exc))
    name = export.filename(ctx.clock(), extension)
    return Response(
        encode(events),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            # Whether the bound left older matching events out of the file.
            "X-Export-Truncated": "true" if truncated else "false",
        },
    )


@router.get("/events.csv")
async def events_csv(request: Request) -> Response:
    return await _export(request, "csv", "text/csv; charset=utf-8", export.to_csv)


@router.get("/events.json")
async def events_json(request: Request) -> Response:
    return await _export(request, "json", "application/json", export.to_json)
