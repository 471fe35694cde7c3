"""CAMARA SIM Swap 2.1.0 and Device Swap 1.0.0: `retrieve-date` and `check`, and the
spec documents served as they were published.

These routes stay out of ztsim's own /openapi.json: their documentation is the CAMARA
document, served verbatim next to them (`GET /sim-swap/v2/openapi.yaml`, ...). Each
query that names a number is an event of the client's org (`camara.query`): who asked
about which number and what they were told, errors included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from ztsim.api.camara.auth import requires, subject_number
from ztsim.api.camara.errors import (
    OUT_OF_RANGE,
    CamaraError,
    CamaraRoute,
    identifier_not_found,
    not_applicable,
)
from ztsim.api.deps import Ctx
from ztsim.risk import clients, specs
from ztsim.risk.clients import Grant
from ztsim.risk.store import lines
from ztsim.risk.store.settings import get_settings
from ztsim.risk.swap_answers import (
    MAX_AGE_DEFAULT,
    Kind,
    Line,
    NotApplicable,
    OutOfRange,
    check,
    checked_max_age,
    retrieve_date,
)

router = APIRouter(route_class=CamaraRoute, include_in_schema=False)

PhoneNumber = Annotated[str, StringConstraints(pattern=clients.PHONE_NUMBER.pattern)]
# RFC 9512: the media type of YAML documents.
YAML_MEDIA_TYPE = "application/yaml"


class DateIn(BaseModel):
    """CreateSimSwapDate / CreateDeviceSwapDate. Strict (no "240" for 240); properties the
    spec does not name are ignored, since its schemas allow them."""

    model_config = ConfigDict(strict=True, extra="ignore")

    phoneNumber: PhoneNumber | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # The specs' properties are not nullable: an explicit null is invalid, not absent.
        if value is None:
            raise ValueError("must not be null")
        return value


class CheckIn(DateIn):
    """CreateCheckSimSwap / CreateCheckDeviceSwap; maxAge's range is checked by the
    handler, so that it answers OUT_OF_RANGE."""

    maxAge: int = MAX_AGE_DEFAULT


Decide = Callable[[Line, int, datetime], dict[str, Any]]


def _answer(
    ctx: Ctx,
    grant: Grant,
    operation: str,
    kind: Kind,
    phone_number: str | None,
    decide: Decide,
    max_age: int | None = None,
) -> JSONResponse:
    msisdn = subject_number(grant, phone_number)[1:]
    now = ctx.clock()
    error: CamaraError | None = None
    body: dict[str, Any] = {}
    with ctx.tx() as conn:
        monitored_days = get_settings(conn, grant.org_id).monitored_days
        try:
            if max_age is not None:
                checked_max_age(max_age, monitored_days)
            line = lines.line(conn, grant.org_id, msisdn, kind)
            if line is None:
                raise identifier_not_found()
            body = decide(line, monitored_days, now)
        except OutOfRange as exc:
            error = CamaraError(400, OUT_OF_RANGE, str(exc))
        except NotApplicable as exc:
            error = not_applicable(str(exc))
        except CamaraError as exc:
            error = exc
        answer = body if error is None else {"status": error.status, "code": error.code}
        lines.record_query(
            conn,
            grant,
            operation=operation,
            msisdn=msisdn,
            answer=answer,
            now=now,
            refused=error is not None,
        )
    if error is not None:
        raise error
    return JSONResponse(body)


SimDate = Annotated[Grant, Depends(requires(clients.SIM_SWAP_RETRIEVE_DATE))]
SimCheck = Annotated[Grant, Depends(requires(clients.SIM_SWAP_CHECK))]
DeviceDate = Annotated[Grant, Depends(requires(clients.DEVICE_SWAP_RETRIEVE_DATE))]
DeviceCheck = Annotated[Grant, Depends(requires(clients.DEVICE_SWAP_CHECK))]


@router.post("/sim-swap/v2/retrieve-date")
def sim_swap_retrieve_date(ctx: Ctx, grant: SimDate, body: DateIn) -> JSONResponse:
    """CAMARA SIM Swap `retrieve-date`: when the number last moved to another SIM."""

    def decide(line: Line, days: int, now: datetime) -> dict[str, Any]:
        return retrieve_date(line, Kind.SIM, days, now).body("latestSimChange")

    return _answer(ctx, grant, "sim-swap.retrieve-date", Kind.SIM, body.phoneNumber, decide)


@router.post("/sim-swap/v2/check")
def sim_swap_check(ctx: Ctx, grant: SimCheck, body: CheckIn) -> JSONResponse:
    """CAMARA SIM Swap `check`: whether the number moved to another SIM within `maxAge`
    hours."""

    def decide(line: Line, days: int, now: datetime) -> dict[str, Any]:
        return {"swapped": check(line, Kind.SIM, body.maxAge, days, now)}

    return _answer(
        ctx, grant, "sim-swap.check", Kind.SIM, body.phoneNumber, decide, max_age=body.maxAge
    )


@router.post("/device-swap/v1/retrieve-date")
def device_swap_retrieve_date(ctx: Ctx, grant: DeviceDate, body: DateIn) -> JSONResponse:
    """CAMARA Device Swap `retrieve-date`: when the number's SIM was last seen in another
    device."""

    def decide(line: Line, days: int, now: datetime) -> dict[str, Any]:
        return retrieve_date(line, Kind.DEVICE, days, now).body("latestDeviceChange")

    operation = "device-swap.retrieve-date"
    return _answer(ctx, grant, operation, Kind.DEVICE, body.phoneNumber, decide)


@router.post("/device-swap/v1/check")
def device_swap_check(ctx: Ctx, grant: DeviceCheck, body: CheckIn) -> JSONResponse:
    """CAMARA Device Swap `check`: whether the number's SIM changed device within `maxAge`
    hours."""

    def decide(line: Line, days: int, now: datetime) -> dict[str, Any]:
        return {"swapped": check(line, Kind.DEVICE, body.maxAge, days, now)}

    operation = "device-swap.check"
    return _answer(
        ctx, grant, operation, Kind.DEVICE, body.phoneNumber, decide, max_age=body.maxAge
    )


def _serve(name: str) -> Callable[[], Response]:
    def serve() -> Response:
        return Response(specs.spec_text(name), media_type=YAML_MEDIA_TYPE)

    serve.__name__ = "spec_" + name.removesuffix(".yaml").replace("-", "_").replace(".", "_")
    return serve


# The documents are public, like any API's documentation (the gate lets them through).
for _path, _name in specs.SERVED_AT.items():
    router.add_api_route(_path, _serve(_name), methods=["GET"], name=f"spec {_name}")
