"""Routes for SIMs, devices, bindings and stock imports. A `self` token sees only
its own identity's SIMs and devices; for it, everything else does not exist (404).
Each change is one use case of `ztsim.inventory.service` (audit event and plane change
included)."""

from __future__ import annotations

import codecs
import tempfile
from collections.abc import Callable, Iterator
from typing import Annotated, BinaryIO, cast

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from ztsim.api.context import ApiContext
from ztsim.api.deps import (
    BindingsWrite,
    Ctx,
    DevicesRead,
    DevicesWrite,
    ImportsRead,
    ImportsWrite,
    SimsRead,
    SimsWrite,
)
from ztsim.api.problems import problem_response
from ztsim.api.schemas import (
    AssignIn,
    BindingIn,
    DeviceIn,
    DeviceOut,
    DeviceUpdate,
    Page,
    ReasonIn,
    RequiredReasonIn,
    SimOut,
    StockImportOut,
)
from ztsim.background import BackgroundThread
from ztsim.errors import NotFound
from ztsim.identity.roles import Principal
from ztsim.inventory import repository as repo
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.inventory.models import Device, Sim, SimKind

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=1000)]
# The largest stock file accepted (a million rows of a typical vendor file fit).
MAX_IMPORT_BYTES = 64 * 1024 * 1024
_SPOOL_IN_MEMORY = 1024 * 1024


def _sim_out(sim: Sim) -> SimOut:
    return SimOut.model_validate(sim, from_attributes=True)


def _visible_sim(conn: Connection, p: Principal, iccid: str) -> Sim:
    sim = repo.get_sim(conn, p.org_id, iccid)
    if p.own_identity is not None and sim.identity_id != p.own_identity:
        raise NotFound("SIM not found")
    return sim


@router.get("/sims", tags=["sims"])
def list_sims(
    ctx: Ctx,
    p: SimsRead,
    state: SimState | None = None,
    kind: SimKind | None = None,
    identity_id: str | None = None,
    imsi: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[SimOut]:
    """The org's SIMs by ICCID, a page at a time, filtered by `state`, `kind` (physical or
    eSIM), `identity_id` or `imsi`. Admins, operators, auditors and self (`sims:read`); a
    self token sees only its own SIMs. Keys (K, OPc), PIN and PUK are never shown."""
    if p.own_identity is not None:
        identity_id = p.own_identity if identity_id in (None, p.own_identity) else "-"
    with ctx.read() as conn:
        items, next_cursor = repo.list_sims(
            conn,
            p.org_id,
            repo.SimFilter(state=state, kind=kind, identity_id=identity_id, imsi=imsi),
            limit=limit,
            cursor=cursor,
        )
    return Page[SimOut](items=[_sim_out(s) for s in items], next_cursor=next_cursor)


@router.get("/sims/{iccid}", tags=["sims"])
def get_sim(ctx: Ctx, p: SimsRead, iccid: str) -> SimOut:
    """One SIM by its ICCID: its state, identity, bound device, IMSI and number. Admins,
    operators, auditors and self (`sims:read`); 404 for another org's SIM or, for a self
    token, any SIM not its own."""
    with ctx.read() as conn:
        return _sim_out(_visible_sim(conn, p, iccid))


def _transition(
    ctx: ApiContext,
    p: Principal,
    iccid: str,
    action: SimAction,
    reason: str,
    identity_id: str | None = None,
) -> SimOut:
    with ctx.tx() as conn:
        sim = service.change_state(
            conn,
            p.org_id,
            iccid,
            action,
            actor=p.actor,
            reason=reason,
            now=ctx.clock(),
            identity_id=identity_id,
        )
    return _sim_out(sim)


@router.post("/sims/{iccid}/assign", tags=["sims"])
def assign_sim(ctx: Ctx, p: SimsWrite, iccid: str, body: AssignIn) -> SimOut:
    """Give a SIM in stock to an identity (`stock` to `assigned`); it cannot attach until it
    is activated. Admins and operators (`sims:write`); 409 when the SIM is not in stock or
    the identity is disabled, 404 for a SIM or identity not in the org."""
    return _transition(ctx, p, iccid, SimAction.ASSIGN, body.reason, body.identity_id)


@router.post("/sims/{iccid}/activate", tags=["sims"])
def activate_sim(ctx: Ctx, p: SimsWrite, iccid: str, body: ReasonIn) -> SimOut:
    """Let an assigned SIM attach (`assigned` to `active`): from then on the RADIUS server
    may accept it, subject to its identity, its device binding and the org's rules. Admins
    and operators (`sims:write`); 409 for a SIM that is not `assigned`, 404 for a SIM not in
    the org."""
    return _transition(ctx, p, iccid, SimAction.ACTIVATE, body.reason)


@router.post("/sims/{iccid}/suspend", tags=["sims"])
def suspend_sim(ctx: Ctx, p: SimsWrite, iccid: str, body: RequiredReasonIn) -> SimOut:
    """Cut an active SIM off until it is resumed (`active` to `suspended`; a reason is
    required): at once the RADIUS server refuses it and sends a Disconnect-Request for each
    of its live sessions, and the DNS gateway answers its addresses REFUSED. Admins and
    operators (`sims:write`); 409 for a SIM that is not `active`, 422 without a reason, 404
    for a SIM not in the org."""
    return _transition(ctx, p, iccid, SimAction.SUSPEND, body.reason)


@router.post("/sims/{iccid}/resume", tags=["sims"])
def resume_sim(ctx: Ctx, p: SimsWrite, iccid: str, body: ReasonIn) -> SimOut:
    """Let a suspended SIM attach again (`suspended` to `active`). Admins and operators
    (`sims:write`); 409 for a SIM that is not `suspended`, 404 for a SIM not in the org."""
    return _transition(ctx, p, iccid, SimAction.RESUME, body.reason)


@router.post("/sims/{iccid}/retire", tags=["sims"])
def retire_sim(ctx: Ctx, p: SimsWrite, iccid: str, body: RequiredReasonIn) -> SimOut:
    """Take a SIM out of service for good, from any state but `retired` (a reason is
    required): as with a suspension its live sessions are disconnected and the DNS gateway
    refuses it, and it never attaches again. Admins and operators (`sims:write`); 409 for a
    SIM already retired, 422 without a reason, 404 for a SIM not in the org."""
    return _transition(ctx, p, iccid, SimAction.RETIRE, body.reason)


@router.put("/sims/{iccid}/binding", tags=["sims"])
def set_binding(ctx: Ctx, p: BindingsWrite, iccid: str, body: BindingIn) -> SimOut:
    """Bind the SIM to a device of the org (`device_id`), or unbind it (`null`); a reason is
    required. The RADIUS server then accepts the SIM only from that device's IMEI and
    disconnects its sessions from any other; an unbound SIM is refused unless the org has
    trust on first attach on. Admins only (`bindings:write`); 409 for a retired SIM or a
    device owned by another identity than the SIM's, 404 for a SIM or device not in the org."""
    with ctx.tx() as conn:
        sim = service.set_binding(
            conn,
            p.org_id,
            iccid,
            body.device_id,
            actor=p.actor,
            reason=body.reason,
            now=ctx.clock(),
        )
    return _sim_out(sim)


# -- devices ------------------------------------------------------------------------------


def _device_out(d: Device) -> DeviceOut:
    return DeviceOut.model_validate(d, from_attributes=True)


@router.post("/devices", status_code=201, tags=["devices"])
def create_device(ctx: Ctx, p: DevicesWrite, body: DeviceIn) -> DeviceOut:
    """Register a device by its IMEI (a 16-digit IMEISV is stored as its IMEI), with an
    optional EID, owner identity, name and serial number (what MDMs name it by in posture
    reports). It is bound to no SIM yet. Admins and operators (`devices:write`); 409 when
    the IMEI or serial number is already registered, 404 for an owner not in the org, 422
    for an invalid IMEI or EID."""
    with ctx.tx() as conn:
        device = service.register_device(
            conn,
            p.org_id,
            imei=body.imei,
            eid=body.eid,
            owner_id=body.owner_id,
            name=body.name,
            actor=p.actor,
            now=ctx.clock(),
            serial_number=body.serial_number,
        )
        return _device_out(device)


@router.get("/devices", tags=["devices"])
def list_devices(
    ctx: Ctx,
    p: DevicesRead,
    owner_id: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[DeviceOut]:
    """The org's devices, a page at a time, optionally those of one owner (`owner_id`).
    Admins, operators, auditors and self (`devices:read`); a self token sees only the
    devices it owns."""
    if p.own_identity is not None:
        owner_id = p.own_identity if owner_id in (None, p.own_identity) else "-"
    with ctx.read() as conn:
        items, next_cursor = repo.list_devices(
            conn, p.org_id, owner_id=owner_id, limit=limit, cursor=cursor
        )
    return Page[DeviceOut](items=[_device_out(d) for d in items], next_cursor=next_cursor)


@router.get("/devices/{device_id}", tags=["devices"])
def get_device(ctx: Ctx, p: DevicesRead, device_id: str) -> DeviceOut:
    """One device: IMEI, EID, owner, name and serial number. Admins, operators, auditors and
    self (`devices:read`); 404 for another org's device or, for a self token, a device it
    does not own."""
    with ctx.read() as conn:
        device = repo.get_device(conn, p.org_id, device_id)
    if p.own_identity is not None and device.owner_id != p.own_identity:
        raise NotFound("device not found")
    return _device_out(device)


@router.patch("/devices/{device_id}", tags=["devices"])
def update_device(ctx: Ctx, p: DevicesWrite, device_id: str, body: DeviceUpdate) -> DeviceOut:
    """Rename a device or set its serial number (`null` removes it); nothing else about a
    device changes. Neither affects attach or DNS: the serial number only says which device
    an MDM's posture report is about. Admins and operators (`devices:write`); 409 when
    another device has that serial number, 404 for a device not in the org."""
    values = {k: getattr(body, k) for k in body.model_fields_set}
    with ctx.tx() as conn:
        device = service.update_device(
            conn, p.org_id, device_id, values, actor=p.actor, now=ctx.clock()
        )
        return _device_out(device)


# -- stock imports ------------------------------------------------------------------------

_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


async def _spool(request: Request) -> BinaryIO:
    """The body, read chunk by chunk into a spooled file (memory up to 1 MiB, then a
    temporary file); 413 once it passes MAX_IMPORT_BYTES, before anything is parsed."""
    too_large = HTTPException(
        413, f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MiB; nothing was imported"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise too_large
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 - returned
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_IMPORT_BYTES:
                raise too_large
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return cast(BinaryIO, spool)


def _lines(spool: BinaryIO) -> Callable[[], Iterator[str]]:
    """Each call reads the spooled body again from the start, decoding as it goes."""

    def lines() -> Iterator[str]:
        spool.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()  # strict: UnicodeDecodeError
        for raw in spool:  # split at b"\n", which no multi-octet UTF-8 sequence contains
            yield decoder.decode(raw)
        if tail := decoder.decode(b"", final=True):
            yield tail

    return lines


@router.post(
    "/stock-imports",
    status_code=201,
    tags=["sims"],
    openapi_extra=_CSV_BODY,
    responses={201: {"model": StockImportOut}},
)
async def import_stock(
    request: Request,
    ctx: Ctx,
    p: ImportsWrite,
    filename: Annotated[
        str, Query(min_length=1, max_length=255, pattern=r"^[^\x00]+$")
    ] = "upload.csv",
    kind: SimKind = SimKind.PHYSICAL,
) -> JSONResponse:
    """Import a vendor batch file (CSV). All or nothing: a file with any bad row imports
    nothing and answers 422 with the first 100 errors and their count; the attempt is
    recorded either way. The work runs on a thread of its own at a lower priority: the event
    loop and the data plane keep answering meanwhile. Admins and operators
    (`imports:write`); 413 for a file over 64 MiB, also with nothing imported."""
    spool = await _spool(request)

    def run() -> StockImportOut:
        record = service.import_stock_file(
            ctx.engine,
            ctx.sealer,
            p.org_id,
            _lines(spool),
            filename=filename,
            kind=kind,
            actor=p.actor,
            now=ctx.clock(),
        )
        return StockImportOut.model_validate(record, from_attributes=True)

    worker = BackgroundThread("stock-import")
    try:
        out = await worker.run(run)
    finally:
        worker.close(timeout=0)  # its only job is done (or abandoned): it ends by itself
        spool.close()
    if out.status != "imported":
        shown = len(out.errors)
        detail = (
            f"the file has {out.error_count} error(s)"
            + (f", the first {shown} listed" if shown < out.error_count else "")
            + "; nothing was imported"
        )
        return problem_response(422, detail, out.errors)
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.get("/stock-imports", tags=["sims"])
def list_imports(
    ctx: Ctx, p: ImportsRead, limit: Limit = 100, cursor: str | None = None
) -> Page[StockImportOut]:
    """The org's stock imports, newest first, a page at a time: file name, status, row
    counts and, for a refused file, its first errors. Admins, operators and auditors
    (`imports:read`)."""
    with ctx.read() as conn:
        items, next_cursor = repo.list_imports(conn, p.org_id, limit=limit, cursor=cursor)
    return Page[StockImportOut](
        items=[StockImportOut.model_validate(r, from_attributes=True) for r in items],
        next_cursor=next_cursor,
    )


@router.get("/stock-imports/{import_id}", tags=["sims"])
def get_import(ctx: Ctx, p: ImportsRead, import_id: str) -> StockImportOut:
    """One stock import: its status, row counts and, for a refused file, the first 100
    errors and their count. Admins, operators and auditors (`imports:read`); 404 for an
    import that is unknown or another org's."""
    with ctx.read() as conn:
        return StockImportOut.model_validate(
            repo.get_import(conn, p.org_id, import_id), from_attributes=True
        )
