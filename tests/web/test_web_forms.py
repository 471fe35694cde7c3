"""Form bodies: small urlencoded forms are read; anything else is refused."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ztsim.errors import InvalidInput
from ztsim.web.forms import MAX_FORM_BYTES, read_form


async def _echo(request: Request) -> JSONResponse:
    try:
        return JSONResponse(await read_form(request))
    except InvalidInput as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)


CLIENT = TestClient(Starlette(routes=[Route("/f", _echo, methods=["POST"])]))
FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_a_form_is_read_first_value_each() -> None:
    r = CLIENT.post("/f", content=b"a=1&b=two+words&a=3&c=", headers=FORM)
    assert r.json() == {"a": "1", "b": "two words", "c": ""}


def test_other_bodies_are_refused() -> None:
    cases = [
        (b'{"a": 1}', {"content-type": "application/json"}),
        (b"a=" + b"x" * MAX_FORM_BYTES, FORM),
        (b"&".join(b"f%d=1" % i for i in range(30)), FORM),
        (b"a=\xff", FORM),
    ]
    for body, headers in cases:
        r = CLIENT.post("/f", content=body, headers=headers)
        assert r.status_code == 400, body[:20]
