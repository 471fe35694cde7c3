"""`/api/v1/api-clients`: an admin registers CAMARA API clients; the secret is shown once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.identity.roles import Role
from ztsim.sealing import Sealer

from api.camara.conftest import Camara, build
from support.api import harness
from support.leaks import LEAKS

BASE = "/api/v1/api-clients"


@pytest.fixture
def camara(sqlite_engine: Engine, sealer: Sealer) -> Iterator[Camara]:
    with harness(sqlite_engine, sealer) as h:
        yield build(h)


def test_create_shows_the_secret_once_and_never_again(camara: Camara) -> None:
    c, auth = camara.h.client, camara.org.auth()
    body = {"name": "Bank IdP", "scopes": ["sim-swap:check", "device-swap:check"]}
    r = c.post(BASE, json=body, headers=auth)
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created.pop("client_secret")
    LEAKS.add_secret(secret)
    LEAKS.allow_once(f"api POST {BASE}", r.text)
    assert created["name"] == "Bank IdP"
    assert created["scopes"] == ["device-swap:check", "sim-swap:check"]
    assert created["phone_number"] is None
    assert created["revoked_at"] is None
    assert created["created_by"].startswith("token:")
    listed = c.get(BASE, headers=auth)
    one = c.get(f"{BASE}/{created['id']}", headers=auth)
    assert listed.json() == [created]
    assert one.json() == created
    assert secret not in listed.text
    assert secret not in one.text


def test_a_three_legged_client_names_a_number_of_the_org(camara: Camara) -> None:
    c, auth = camara.h.client, camara.org.auth()
    body = {"name": "app", "scopes": ["sim-swap"], "phone_number": camara.numbers["active"]}
    r = c.post(BASE, json=body, headers=auth)
    assert r.status_code == 201
    LEAKS.add_secret(r.json()["client_secret"])
    LEAKS.allow_once(f"api POST {BASE}", r.text)
    assert r.json()["phone_number"] == camara.numbers["active"]
    other = {**body, "phone_number": camara.numbers["bravo"]}  # bravo's number
    refused = c.post(BASE, json=other, headers=auth)
    assert refused.status_code == 422
    assert camara.numbers["bravo"] not in refused.text


def test_invalid_clients_are_refused(camara: Camara) -> None:
    c, auth = camara.h.client, camara.org.auth()
    for body in (
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x"},
        {"name": "", "scopes": ["sim-swap"]},
        {"name": "x", "scopes": ["sim-swap"], "phone_number": "4917000000001"},
        {"name": "x", "scopes": ["sim-swap"], "secret": "mine"},
    ):
        r = c.post(BASE, json=body, headers=auth)
        assert r.status_code == 422, body
        assert r.headers["content-type"] == "application/problem+json"


def test_revoke_ends_the_clients_tokens(camara: Camara) -> None:
    token = camara.token()
    c, auth = camara.h.client, camara.org.auth()
    (client,) = c.get(BASE, headers=auth).json()
    bearer = {"Authorization": f"Bearer {token}"}
    number = {"phoneNumber": camara.numbers["active"]}
    assert c.post("/sim-swap/v2/check", json=number, headers=bearer).status_code == 200
    r = c.delete(f"{BASE}/{client['id']}", headers=auth)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    assert c.post("/sim-swap/v2/check", json=number, headers=bearer).status_code == 401
    with camara.h.engine.connect() as conn:
        kinds = conn.scalars(select(schema.events.c.kind)).all()
    assert "api_client.revoked" in kinds


def test_clients_stay_in_their_org_and_roles_are_checked(camara: Camara) -> None:
    c = camara.h.client
    client_id, _ = camara.client()
    other = camara.other.auth()
    assert c.get(BASE, headers=other).json() == []
    assert c.get(f"{BASE}/{client_id}", headers=other).status_code == 404
    assert c.delete(f"{BASE}/{client_id}", headers=other).status_code == 404
    assert c.get(f"{BASE}/{client_id}", headers=camara.org.auth(Role.AUDITOR)).status_code == 200
    for role in (Role.OPERATOR, Role.ANALYST, Role.AUDITOR):
        body = {"name": "x", "scopes": ["sim-swap"]}
        assert c.post(BASE, json=body, headers=camara.org.auth(role)).status_code == 403
    assert c.get(BASE, headers=camara.org.auth(Role.OPERATOR)).status_code == 403
    assert c.get(f"{BASE}/not-an-id", headers=camara.org.auth()).status_code == 422
