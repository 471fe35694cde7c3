"""3GPP TS 29.503 Nudm_UEAuthentication, generate-auth-data: so that a 5G core's AUSF
can use ztsim as its UDM/ARPF. Field names and error shapes follow the spec
(ProblemDetails of TS 29.571 with `cause`); callers hold a `network` token.

Vectors come from the app's `VectorIssuer` (SQN blocks and group commit: many AUSFs'
requests share a transaction); the handler awaits it on the event loop rather than
holding a worker thread, and deconceals SUCIs in a worker thread (a database read).

This route is the reference and documents the operation; `ueau_fast_path` answers the
common request (an `imsi-` SUPI, no resynchronisation) before FastAPI's stack, with
the same answers, and hands every other request on to here."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from ztsim.aka.errors import SuciError
from ztsim.aka.suci import deconceal
from ztsim.api.context import ApiContext
from ztsim.api.deps import AkaVectors, Ctx
from ztsim.api.problems import PROBLEM_MEDIA_TYPE
from ztsim.db.engine import psycopg_conninfo
from ztsim.errors import NotFound
from ztsim.udm import hn_keys, service
from ztsim.udm.issuer import VectorIssuer, VectorRequest
from ztsim.udm.pg_batches import PgBatches

router = APIRouter(prefix="/nudm-ueau/v1", tags=["nudm-ueau"])
_issuer_lock = threading.Lock()
# How the issuer's connection shows in PostgreSQL's pg_stat_activity.
ISSUER_APPLICATION_NAME = "ztsim-udm-issuer"

# TS 29.503 / TS 29.571 data types, as their OpenAPI patterns give them.
_HEX128 = r"^[A-Fa-f0-9]{32}$"
_SNN = r"^(5G:mnc[0-9]{3}[.]mcc[0-9]{3}[.]3gppnetwork[.]org(:[A-F0-9]{11})?)|5G:NSWO$"
SUPI_OR_SUCI = r"^(imsi-[0-9]{5,15}|nai-.+|suci-(0-[0-9]{3}-[0-9]{2,3}|[1-7]-.+)-[0-9]{1,4}-(0-0-.+|[a-fA-F1-9]-([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])-[a-fA-F0-9]+)|.+)$"


class ResynchronizationInfo(BaseModel):
    rand: str = Field(pattern=_HEX128)
    auts: str = Field(pattern=r"^[A-Fa-f0-9]{28}$")


class AuthenticationInfoRequest(BaseModel):
    # Other optional IEs of the spec (supportedFeatures, cellCagInfo, ...) are accepted and ignored.
    model_config = ConfigDict(extra="ignore")

    servingNetworkName: str = Field(pattern=_SNN, max_length=64)
    ausfInstanceId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    resynchronizationInfo: ResynchronizationInfo | None = None


class Av5GHeAka(BaseModel):
    avType: Literal["5G_HE_AKA"] = "5G_HE_AKA"
    rand: str
    xresStar: str
    autn: str
    kausf: str


class AuthenticationInfoResult(BaseModel):
    authType: Literal["5G_AKA"] = "5G_AKA"
    authenticationVector: Av5GHeAka
    supi: str


class ProblemDetails(BaseModel):
    title: str
    status: int
    detail: str | None = None
    cause: str | None = None
    invalidParams: list[dict[str, str]] | None = None


def sbi_problem(
    status: int, cause: str, detail: str, invalid: list[dict[str, str]] | None = None
) -> JSONResponse:
    titles = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 501: "Not Implemented"}
    body = ProblemDetails(
        title=titles.get(status, "Error"),
        status=status,
        detail=detail,
        cause=cause,
        invalidParams=invalid,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_MEDIA_TYPE
    )


def _doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    schema = ProblemDetails.model_json_schema()
    return {
        s: {
            "description": "ProblemDetails (TS 29.571)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for s in statuses
    }


def _deconceal(ctx: ApiContext, suci: str) -> str | JSONResponse:
    """The SUPI inside a SUCI, or the problem to answer (TS 29.503 causes)."""
    with ctx.read() as conn:
        private_keys = hn_keys.active_private_keys(conn, ctx.sealer)
    try:
        return deconceal(suci, private_keys)
    except SuciError as exc:
        if "not supported" in str(exc):
            return sbi_problem(501, "UNSUPPORTED_PROTECTION_SCHEME", str(exc))
        return sbi_problem(403, "AUTHENTICATION_REJECTED", "the SUCI does not deconceal")


@asynccontextmanager
async def issuer_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The app's issuer while a server runs it: on PostgreSQL its batches are awaited on
    the serving loop (no flusher thread contending for the GIL with the loop), and it is
    closed on that loop when the server stops."""
    ctx = app.state.ctx
    # Without a context yet (tests set it later), or run twice at once (two test
    # clients): `issuer_of` makes one when it is needed.
    if not isinstance(ctx, ApiContext) or getattr(app.state, "udm_issuer", None) is not None:
        yield
        return
    conninfo = psycopg_conninfo(ctx.engine, ISSUER_APPLICATION_NAME)
    issuer = VectorIssuer(
        ctx.engine,
        ctx.sealer,
        rand=ctx.random,
        pg=None if conninfo is None else PgBatches(conninfo),
    )
    app.state.udm_issuer = issuer
    try:
        yield
    finally:
        if getattr(app.state, "udm_issuer", None) is issuer:
            del app.state.udm_issuer
        await issuer.aclose()


def issuer_of(state: State, ctx: ApiContext) -> VectorIssuer:
    """The app's one issuer (its SQN blocks and group commit): the lifespan's, or (an app
    run without its lifespan, as tests do) one made at first use with a flusher thread."""
    issuer = getattr(state, "udm_issuer", None)
    if issuer is None:
        with _issuer_lock:
            issuer = getattr(state, "udm_issuer", None)
            if issuer is None:
                issuer = VectorIssuer(ctx.engine, ctx.sealer, rand=ctx.random)
                state.udm_issuer = issuer
    assert isinstance(issuer, VectorIssuer)
    return issuer


@router.post(
    "/{supiOrSuci}/security-information/generate-auth-data",
    response_model=AuthenticationInfoResult,
    responses=_doc(400, 403, 404, 501),
)
async def generate_auth_data(
    request: Request,
    ctx: Ctx,
    p: AkaVectors,
    supi_or_suci: Annotated[str, Path(alias="supiOrSuci", pattern=SUPI_OR_SUCI, max_length=1024)],
    body: AuthenticationInfoRequest,
) -> JSONResponse:
    """3GPP TS 29.503 Nudm_UEAuthentication: a 5G-AKA authentication vector for a SIM of the
    caller's org, named by SUPI (`imsi-...`) or by SUCI (deconcealed with the home-network
    keys); `resynchronizationInfo` first resynchronises the SIM's SQN from the USIM's AUTS.
    Only `network` tokens, held by the org's AUSFs, may call it (`aka:vectors`). Errors are
    TS 29.571 ProblemDetails with a `cause`: 404 USER_NOT_FOUND for an unknown subscriber,
    403 AUTHENTICATION_REJECTED for a SIM that is not active or a SUCI or AUTS that does not
    verify, 501 for a SUCI protection scheme not supported."""
    if supi_or_suci.startswith("suci-"):
        supi_or_problem = await run_in_threadpool(_deconceal, ctx, supi_or_suci)
        if isinstance(supi_or_problem, JSONResponse):
            return supi_or_problem
        supi = supi_or_problem
    elif supi_or_suci.startswith("imsi-"):
        supi = supi_or_suci
    else:
        return sbi_problem(404, "USER_NOT_FOUND", "only IMSI-based SUPIs are served")
    resync = None
    if body.resynchronizationInfo is not None:
        resync = service.Resynchronization(
            bytes.fromhex(body.resynchronizationInfo.rand),
            bytes.fromhex(body.resynchronizationInfo.auts),
        )
    try:
        result = await issuer_of(request.app.state, ctx).issue_async(
            VectorRequest(
                p.org_id,
                supi.removeprefix("imsi-"),
                body.servingNetworkName,
                body.ausfInstanceId,
                ctx.clock(),
                resync,
            )
        )
    except NotFound:
        return sbi_problem(404, "USER_NOT_FOUND", "no subscriber with that SUPI")
    if isinstance(result, service.Refusal):
        return sbi_problem(403, "AUTHENTICATION_REJECTED", result.reason)
    av = result.vector
    out = AuthenticationInfoResult(
        authenticationVector=Av5GHeAka(
            rand=av.rand.hex(),
            xresStar=av.xres_star.hex(),
            autn=av.autn.hex(),
            kausf=av.kausf.hex(),
        ),
        supi=result.supi,
    )
    return JSONResponse(out.model_dump())
