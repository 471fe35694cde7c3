"""Authentication at the edge: 401 before the body, failed attempts rate-limited per
client (429 with Retry-After, the token never logged), and 503 with Retry-After while
the database cannot be reached."""

from __future__ import annotations

import http.client
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.api.edge import HttpEdge
from ztsim.api.principals import PrincipalCache
from ztsim.db.engine import make_engine
from ztsim.sealing import Sealer

from api.edge_server import serving
from support.api import ApiHarness, harness

BAD = "ztsim_" + "B" * 43


def _client(app: object, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000), raise_server_exceptions=False)  # type: ignore[arg-type]


def test_failed_authentications_are_rate_limited_per_client(
    api: ApiHarness, caplog: pytest.LogCaptureFixture
) -> None:
    org = api.new_org("alpha")
    app = create_app(api.ctx, edge=HttpEdge(auth_failures_per_minute=3))
    good = org.auth()
    with _client(app, "192.0.2.7") as guesser, _client(app, "192.0.2.8") as other:
        caplog.set_level(logging.DEBUG)
        for _ in range(3):
            assert (
                guesser.get("/api/v1/me", headers={"Authorization": f"Bearer {BAD}"}).status_code
                == 401
            )
        r = guesser.get("/api/v1/me", headers={"Authorization": f"Bearer {BAD}"})
        assert r.status_code == 429, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # Not even a good token is checked from there: no oracle for guesses.
        assert guesser.get("/api/v1/me", headers=good).status_code == 429
        # Another client is not affected; a request without a token is no attempt.
        assert other.get("/api/v1/me", headers=good).status_code == 200
        assert other.get("/api/v1/me").status_code == 401
    assert BAD not in caplog.text
    assert "192.0.2.7" in caplog.text


def test_without_a_limit_every_failure_is_a_401(api: ApiHarness) -> None:
    for _ in range(20):
        r = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {BAD}"})
        assert r.status_code == 401


def test_503_while_the_sqlite_database_is_unreachable(
    sqlite_engine: Engine, sealer: Sealer, tmp_path: Path
) -> None:
    path = Path(str(sqlite_engine.url.database))
    with harness(sqlite_engine, sealer) as h:
        org = h.new_org("alpha")
        assert h.client.get("/api/v1/me", headers=org.auth()).status_code == 200
        sqlite_engine.dispose()
        aside = tmp_path / "aside.db"
        shutil.move(path, aside)
        path.mkdir()  # where the file was, SQLite can open nothing
        try:
            # /me would answer from the gate's principal cache; the org is read from disk.
            r = h.client.get("/api/v1/org", headers=org.auth())
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5"
            assert r.headers["content-type"] == "application/problem+json"
            assert org.tokens[next(iter(org.tokens))] not in r.text
        finally:
            path.rmdir()
            shutil.move(aside, path)
        assert h.client.get("/api/v1/me", headers=org.auth()).status_code == 200


def test_503_at_the_gate_when_postgresql_does_not_answer(sealer: Sealer) -> None:
    # Nothing listens on that loopback port: every connection attempt is refused.
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")
    app = create_app(ApiContext(engine, sealer))
    with _client(app, "192.0.2.9") as client:
        r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {BAD}"})
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    engine.dispose()


def test_concurrent_requests_with_one_token_share_one_lookup(api: ApiHarness) -> None:
    """A client's many connections presenting a token not remembered (a lapsed entry, a
    new process): one database lookup, whose answer they all get, not one each."""
    org = api.new_org("alpha")
    ctx = ApiContext(api.engine, api.ctx.sealer, principals=PrincipalCache(ttl=60))
    lookups = 0

    def slow_lookup(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal lookups
        if "FROM api_tokens" in statement:
            lookups += 1
            time.sleep(0.3)  # the lookup takes a while: the other requests arrive meanwhile

    event.listen(api.engine, "before_cursor_execute", slow_lookup)
    try:
        with serving(create_app(ctx)) as options, ThreadPoolExecutor(20) as pool:

            def me(_: int) -> int:
                conn = http.client.HTTPConnection("127.0.0.1", options.port, timeout=10)
                conn.request("GET", "/api/v1/me", headers=org.auth())
                status = conn.getresponse().status
                conn.close()
                return status

            assert list(pool.map(me, range(20))) == [200] * 20
    finally:
        event.remove(api.engine, "before_cursor_execute", slow_lookup)
    assert lookups == 1
