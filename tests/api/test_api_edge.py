"""The edge around the app: 405 names every allowed method, and a database that cannot
be reached inside a route is a 503 with Retry-After, not a 500."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from ztsim.api import problems
from ztsim.api.app import create_app
from ztsim.api.edge import HttpEdge, wrap
from ztsim.db.engine import make_engine

from support.api import ApiHarness


def test_405_carries_allow_with_every_method_of_the_path(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    r = api.client.delete("/api/v1/identities", headers=org.auth())
    assert r.status_code == 405, r.text
    assert r.headers["content-type"] == "application/problem+json"
    # GET and POST are two routes: both are named, not just the first that matched.
    assert r.headers["allow"] == "GET, POST"
    r = api.client.put("/dns-query")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"


def test_503_from_inside_a_route_while_the_database_is_away() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")
    app = FastAPI()
    problems.install(app)

    @app.get("/probe")
    def probe() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/probe")
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    assert r.json()["detail"] == "the database is unreachable; try again later"
    assert "127.0.0.1:9" not in r.text
    engine.dispose()


def test_the_edge_wraps_starlettes_own_errors(api: ApiHarness) -> None:
    app = create_app(api.ctx, edge=HttpEdge())
    assert callable(wrap(app, HttpEdge(), None))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.headers["x-content-type-options"] == "nosniff"
