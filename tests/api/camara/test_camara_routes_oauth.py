"""`POST /oauth2/token`: OAuth 2.0 client credentials (RFC 6749 §4.4) for API clients."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from ztsim.api.app import create_app
from ztsim.api.edge import HttpEdge
from ztsim.db import schema
from ztsim.sealing import Sealer

from api.camara.conftest import Camara, build
from support.api import harness
from support.leaks import LEAKS

TOKEN = "/oauth2/token"
GRANT = {"grant_type": "client_credentials"}


def _basic(client_id: str, secret: str) -> dict[str, str]:
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def _ok(r: httpx2.Response) -> dict[str, object]:
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    body: dict[str, object] = r.json()
    assert isinstance(body["access_token"], str)
    LEAKS.add_secret(body["access_token"])
    LEAKS.allow_once(f"api POST {TOKEN}", r.text)
    return body


def _refused(r: httpx2.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert isinstance(r.json()["error_description"], str)
    assert r.headers["cache-control"] == "no-store"
    if error == "invalid_client":
        assert r.headers["www-authenticate"] == 'Basic realm="ztsim"'


def test_basic_authentication_gets_a_bearer_token_with_all_the_clients_scopes(
    camara: Camara,
) -> None:
    client_id, secret = camara.client(["sim-swap:check", "device-swap"])
    body = _ok(camara.h.client.post(TOKEN, data=GRANT, headers=_basic(client_id, secret)))
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "device-swap sim-swap:check"
    assert str(body["access_token"]).startswith("ztsimat_")


def test_credentials_in_the_body_work_too(camara: Camara) -> None:
    client_id, secret = camara.client()
    form = {**GRANT, "client_id": client_id, "client_secret": secret}
    _ok(camara.h.client.post(TOKEN, data=form))


def test_a_requested_scope_narrows_the_token(camara: Camara) -> None:
    client_id, secret = camara.client(["sim-swap:check", "sim-swap:retrieve-date"])
    form = {**GRANT, "scope": "sim-swap:check"}
    body = _ok(camara.h.client.post(TOKEN, data=form, headers=_basic(client_id, secret)))
    assert body["scope"] == "sim-swap:check"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    number = {"phoneNumber": camara.numbers["active"]}
    assert camara.h.client.post("/sim-swap/v2/check", json=number, headers=bearer).is_success
    r = camara.h.client.post("/sim-swap/v2/retrieve-date", json=number, headers=bearer)
    assert r.status_code == 403


@pytest.mark.parametrize("scope", ["device-swap:check", "sim-swap:check bogus", "admin"])
def test_a_scope_beyond_the_clients_is_invalid_scope(camara: Camara, scope: str) -> None:
    client_id, secret = camara.client(["sim-swap:check"])
    r = camara.h.client.post(
        TOKEN, data={**GRANT, "scope": scope}, headers=_basic(client_id, secret)
    )
    _refused(r, 400, "invalid_scope")


def test_wrong_unknown_and_revoked_clients_are_invalid_client(camara: Camara) -> None:
    client_id, secret = camara.client()
    wrong = "ztsimcs_" + "B" * 43
    for headers in (
        _basic(client_id, wrong),
        _basic("f" * 32, secret),
        _basic(client_id, ""),
        _basic("", secret),
    ):
        _refused(camara.h.client.post(TOKEN, data=GRANT, headers=headers), 401, "invalid_client")
    _refused(camara.h.client.post(TOKEN, data=GRANT), 401, "invalid_client")  # none at all
    camara.h.client.delete(f"/api/v1/api-clients/{client_id}", headers=camara.org.auth())
    r = camara.h.client.post(TOKEN, data=GRANT, headers=_basic(client_id, secret))
    _refused(r, 401, "invalid_client")


def test_malformed_requests_are_invalid_request(camara: Camara) -> None:
    client_id, secret = camara.client()
    auth = _basic(client_id, secret)
    post = camara.h.client.post
    _refused(post(TOKEN, data={}, headers=auth), 400, "invalid_request")  # no grant_type
    _refused(post(TOKEN, json=GRANT, headers=auth), 400, "invalid_request")  # not a form
    both = {**GRANT, "client_id": client_id, "client_secret": secret}
    _refused(post(TOKEN, data=both, headers=auth), 400, "invalid_request")  # two methods
    form = {"content-type": "application/x-www-form-urlencoded"}
    repeated = b"grant_type=client_credentials&grant_type=client_credentials"
    _refused(post(TOKEN, content=repeated, headers={**auth, **form}), 400, "invalid_request")
    _refused(
        post(TOKEN, content=b"a=" + b"x" * 5000, headers={**auth, **form}), 400, "invalid_request"
    )
    bad_basic = {"Authorization": "Basic not*base64", **form}
    _refused(
        post(TOKEN, content=b"grant_type=client_credentials", headers=bad_basic),
        400,
        "invalid_request",
    )
    other = {**GRANT, "client_id": "0" * 32}
    _refused(post(TOKEN, data=other, headers=auth), 400, "invalid_request")


def test_other_grant_types_are_unsupported(camara: Camara) -> None:
    client_id, secret = camara.client()
    for grant in ("password", "authorization_code", "CLIENT_CREDENTIALS"):
        r = camara.h.client.post(
            TOKEN, data={"grant_type": grant}, headers=_basic(client_id, secret)
        )
        _refused(r, 400, "unsupported_grant_type")


def test_tokens_are_stored_hashed_and_expired_ones_pruned(camara: Camara) -> None:
    client_id, secret = camara.client()
    first = _ok(camara.h.client.post(TOKEN, data=GRANT, headers=_basic(client_id, secret)))
    with camara.h.engine.connect() as conn:
        stored = conn.execute(select(schema.oauth_tokens)).all()
        client_row = conn.execute(select(schema.api_clients)).one()
    assert len(stored) == 1
    assert str(first["access_token"]).encode() not in repr(stored).encode()
    assert secret.encode() not in repr(client_row).encode()
    camara.h.clock.offset = timedelta(hours=2)
    _ok(camara.h.client.post(TOKEN, data=GRANT, headers=_basic(client_id, secret)))
    with camara.h.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(schema.oauth_tokens)) == 1


def test_issued_and_refused_tokens_are_events_without_secrets(camara: Camara) -> None:
    client_id, secret = camara.client()
    _ok(camara.h.client.post(TOKEN, data=GRANT, headers=_basic(client_id, secret)))
    camara.h.client.post(TOKEN, data=GRANT, headers=_basic(client_id, "ztsimcs_" + "C" * 43))
    e = schema.events
    with camara.h.engine.connect() as conn:
        rows = conn.execute(
            select(e.c.org_id, e.c.kind, e.c.outcome, e.c.reason, e.c.payload)
            .where(e.c.kind.like("camara.token%"))
            .order_by(e.c.id)
        ).all()
    assert [(r.org_id, r.kind, r.outcome, r.reason) for r in rows] == [
        (camara.org.id, "camara.token_issued", "success", ""),
        (camara.org.id, "camara.token_refused", "denied", "invalid_client"),
    ]
    assert rows[0].payload["client_id"] == client_id
    assert rows[0].payload["scopes"] == sorted(rows[0].payload["scopes"])
    assert secret not in repr(rows)


@pytest.fixture
def limited(sqlite_engine: Engine, sealer: Sealer) -> Iterator[tuple[Camara, TestClient]]:
    with harness(sqlite_engine, sealer) as h:
        camara = build(h)
        app = create_app(h.ctx, edge=HttpEdge(auth_failures_per_minute=3))
        with TestClient(app) as client:
            yield camara, client


def test_failed_client_authentications_are_rate_limited(
    limited: tuple[Camara, TestClient],
) -> None:
    camara, client = limited
    client_id, secret = camara.client()
    wrong = _basic(client_id, "ztsimcs_" + "D" * 43)
    for _ in range(3):
        assert client.post(TOKEN, data=GRANT, headers=wrong).status_code == 401
    r = client.post(TOKEN, data=GRANT, headers=_basic(client_id, secret))
    assert r.status_code == 429  # even the right secret waits: it is not even checked
    assert int(r.headers["retry-after"]) >= 1
    # Failed bearer tokens on the CAMARA APIs share the budget, and answer as CAMARA does.
    r = client.post("/sim-swap/v2/check", json={}, headers={"Authorization": "Bearer x"})
    assert (r.status_code, r.json()["code"]) == (429, "TOO_MANY_REQUESTS")


def test_successful_authentications_are_not_counted(limited: tuple[Camara, TestClient]) -> None:
    camara, client = limited
    client_id, secret = camara.client()
    for _ in range(5):
        r = client.post(TOKEN, data=GRANT, headers=_basic(client_id, secret))
        assert r.status_code == 200
        LEAKS.add_secret(r.json()["access_token"])
