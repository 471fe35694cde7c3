"""`CamaraRoute` and the ErrorInfo bodies, on a small app of its own: validation errors,
`CamaraError`s from handlers and dependencies, and the x-correlator rules."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from starlette.types import Scope

from ztsim.api.camara.errors import (
    CamaraError,
    CamaraRoute,
    correlator_in,
    error_response,
    valid_correlator,
    validation_message,
)
from ztsim.api.problems import install


class Body(BaseModel):
    n: int


def _refuse() -> None:
    raise CamaraError(403, "PERMISSION_DENIED", "no")


def _app() -> FastAPI:
    router = APIRouter(route_class=CamaraRoute)

    @router.post("/echo")
    def echo(body: Body) -> dict[str, int]:
        if body.n == 404:
            raise CamaraError(404, "IDENTIFIER_NOT_FOUND", "Device identifier not found.")
        return {"n": body.n}

    @router.post("/guarded", dependencies=[Depends(_refuse)])
    def guarded(body: Body) -> dict[str, int]:
        return {"n": body.n}

    app = FastAPI()
    install(app)  # the app's problem-details handlers must not see CAMARA errors
    app.include_router(router)
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app())


def test_an_answer_echoes_a_valid_correlator(client: TestClient) -> None:
    r = client.post("/echo", json={"n": 1}, headers={"x-correlator": "abc-123"})
    assert (r.status_code, r.json(), r.headers["x-correlator"]) == (200, {"n": 1}, "abc-123")
    assert "x-correlator" not in client.post("/echo", json={"n": 1}).headers


def test_a_camara_error_from_a_handler_is_its_body(client: TestClient) -> None:
    r = client.post("/echo", json={"n": 404}, headers={"x-correlator": "c"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "status": 404,
        "code": "IDENTIFIER_NOT_FOUND",
        "message": "Device identifier not found.",
    }
    assert r.headers["x-correlator"] == "c"


def test_a_camara_error_from_a_dependency_is_its_body(client: TestClient) -> None:
    r = client.post("/guarded", json={"n": 1}, headers={"x-correlator": "d"})
    assert (r.status_code, r.json()["code"], r.headers["x-correlator"]) == (
        403,
        "PERMISSION_DENIED",
        "d",
    )


@pytest.mark.parametrize("body", [b"", b"{", b'{"n": "x"}', b"[]", b"\xff"])
def test_invalid_requests_are_400_invalid_argument(client: TestClient, body: bytes) -> None:
    headers = {"content-type": "application/json", "x-correlator": "e"}
    r = client.post("/echo", content=body, headers=headers)
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_ARGUMENT"
    assert r.json()["status"] == 400
    assert r.headers["x-correlator"] == "e"


def test_an_invalid_correlator_is_refused_and_not_echoed(client: TestClient) -> None:
    r = client.post("/echo", json={"n": 1}, headers={"x-correlator": "no spaces"})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ARGUMENT")
    assert "x-correlator" in r.json()["message"]
    assert "x-correlator" not in r.headers


def test_401_answers_name_the_bearer_scheme() -> None:
    r = error_response(CamaraError(401, "UNAUTHENTICATED", "m"), "x")
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.headers["x-correlator"] == "x"


def test_validation_messages_name_the_field_and_rule_not_the_value() -> None:
    errors = [{"loc": ("body", "phoneNumber"), "msg": "String should match pattern", "input": "+1"}]
    assert validation_message(errors) == "phoneNumber: String should match pattern"
    assert validation_message([]).startswith("Client specified an invalid argument")


_ALLOWED = "abcXYZ019-_:;./<>{}"


@given(st.text(alphabet=_ALLOWED, max_size=256))
def test_the_correlator_pattern_takes_its_alphabet(text: str) -> None:
    assert valid_correlator(text)


def _foreign(c: str) -> bool:
    return not (c.isascii() and (c.isalnum() or c in _ALLOWED))


@given(st.text(min_size=1).filter(lambda t: any(map(_foreign, t))))
def test_the_correlator_pattern_refuses_other_characters(text: str) -> None:
    assert not valid_correlator(text)


def test_a_correlator_longer_than_256_is_invalid() -> None:
    assert valid_correlator("a" * 256)
    assert not valid_correlator("a" * 257)
    assert not valid_correlator("abc\n")


def test_correlator_in_a_scope_is_given_only_when_valid() -> None:
    def scope(value: bytes) -> Scope:
        return {"headers": [(b"x-correlator", value)]}

    assert correlator_in(scope(b"ok-1")) == "ok-1"
    assert correlator_in(scope(b"not ok")) is None
    assert correlator_in({"headers": []}) is None
