"""The policy itself, and the middleware setting it on every response but keeping a
route's own."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ztsim.web.csp import POLICY, CspMiddleware


def _app() -> Starlette:
    def plain(_: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    def own(_: Request) -> PlainTextResponse:
        return PlainTextResponse("x", headers={"Content-Security-Policy": "sandbox"})

    app = Starlette(routes=[Route("/plain", plain), Route("/own", own)])
    app.add_middleware(CspMiddleware)
    return app


def test_the_policy_allows_only_this_origin_and_no_inline_code() -> None:
    directives = dict(d.split(" ", 1) for d in POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in POLICY
    assert "http" not in POLICY


def test_every_response_carries_it_unless_it_sets_its_own() -> None:
    with TestClient(_app()) as client:
        for path in ("/plain", "/missing"):
            r = client.get(path)
            assert r.headers["content-security-policy"] == POLICY
            assert r.headers["referrer-policy"] == "no-referrer"
        assert client.get("/own").headers["content-security-policy"] == "sandbox"
