"""The gateways page through the app: the viewer's org only, never a shared secret, 403
for a `self` sign-in and for roles without `gateways:read`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from web.signin import sign_in
from ztsim.identity.roles import Role

from support.api import ApiHarness
from support.world import World


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.AUDITOR])
def test_gateways_of_the_viewer_s_org_without_secrets(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World], role: Role
) -> None:
    alpha, _ = two_orgs
    r = api.client.post("/api/v1/ip-pools", json={"cidr": "10.20.0.0/24"}, headers=alpha.org.auth())
    assert r.status_code == 201, r.text
    assert sign_in(client, alpha.org.tokens[role]) == 303
    page = client.get("/gateways")
    assert page.status_code == 200
    assert "pgw" in page.text
    assert "192.0.2.1/32" in page.text
    assert "192.0.2.2" not in page.text  # the other org's gateway
    assert "10.20.0.0/24" in page.text
    assert "not in the last 24 hours" in page.text
    assert "gateway-secret" not in page.text
    assert 'aria-current="page"' in page.text


@pytest.mark.parametrize("role", [Role.SELF, Role.ANALYST])
def test_roles_without_gateways_read_are_refused(
    client: TestClient, two_orgs: tuple[World, World], role: Role
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[role]) == 303
    page = client.get("/gateways")
    assert page.status_code == 403
    assert "pgw" not in page.text


def test_a_stranger_is_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/gateways", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
