"""The caller of a CAMARA API: `requires` (the grant and its scope) and `subject_number`
(2-legged tokens name the number in the request, 3-legged ones carry it)."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from ztsim.api.camara.auth import Grant, bearer, requires, subject_number
from ztsim.api.camara.errors import CamaraError, CamaraRoute

from api.camara.conftest import Camara

TWO = Grant("org", "client", frozenset({"sim-swap"}), None)
THREE = Grant("org", "client", frozenset({"sim-swap"}), "+4917012345678")


def test_a_two_legged_grant_takes_the_number_of_the_request() -> None:
    assert subject_number(TWO, "+4915112345678") == "+4915112345678"
    with pytest.raises(CamaraError) as missing:
        subject_number(TWO, None)
    assert (missing.value.status, missing.value.code) == (422, "MISSING_IDENTIFIER")


def test_a_three_legged_grant_takes_its_own_number_and_refuses_another() -> None:
    assert subject_number(THREE, None) == "+4917012345678"
    for named in ("+4917012345678", "+4915112345678"):
        with pytest.raises(CamaraError) as extra:
            subject_number(THREE, named)
        assert (extra.value.status, extra.value.code) == (422, "UNNECESSARY_IDENTIFIER")


def test_bearer_reads_only_the_bearer_scheme() -> None:
    def scope(value: bytes) -> dict[str, object]:
        return {"headers": [(b"authorization", value)]}

    assert bearer(scope(b"Bearer abc")) == "abc"
    assert bearer(scope(b"bearer  abc ")) == "abc"
    assert bearer(scope(b"Basic abc")) is None
    assert bearer(scope(b"Bearer ")) is None
    assert bearer({"headers": []}) is None


def _bare_app(camara: Camara) -> TestClient:
    """`requires` in an app without the edge's gate: it checks the token itself."""
    router = APIRouter(route_class=CamaraRoute)

    @router.post("/probe")
    def probe(grant: Annotated[Grant, Depends(requires("sim-swap:check"))]) -> dict[str, str]:
        return {"org": grant.org_id, "client": grant.client_id}

    app = FastAPI()
    app.state.ctx = camara.h.ctx
    app.include_router(router)
    return TestClient(app)


def test_requires_checks_the_token_and_its_scope_without_the_gate(camara: Camara) -> None:
    client = _bare_app(camara)
    ok = client.post("/probe", headers={"Authorization": f"Bearer {camara.token()}"})
    assert ok.status_code == 200
    assert ok.json()["org"] == camara.org.id
    umbrella = camara.token(["sim-swap"])  # an API's whole scope covers its operations
    assert client.post("/probe", headers={"Authorization": f"Bearer {umbrella}"}).is_success
    other = camara.token(["device-swap", "sim-swap:retrieve-date"])
    denied = client.post("/probe", headers={"Authorization": f"Bearer {other}"})
    assert (denied.status_code, denied.json()["code"]) == (403, "PERMISSION_DENIED")
    for headers in ({}, {"Authorization": "Bearer ztsimat_" + "Z" * 43}):
        r = client.post("/probe", headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "UNAUTHENTICATED")
        assert r.headers["www-authenticate"] == "Bearer"
