"""Booleans are JSON booleans: `0`, `"false"`, `"0"` are refused (422) and change nothing,
in every request model (they all build on schemas.Request)."""

from __future__ import annotations

import pytest

from support.api import ApiHarness

NOT_BOOLEANS = [0, 1, "false", "true", "0", "off", "yes", 0.0]


@pytest.mark.parametrize("value", NOT_BOOLEANS)
def test_org_patch_refuses_non_booleans(api: ApiHarness, value: object) -> None:
    org = api.new_org("alpha")
    before = api.client.get("/api/v1/org", headers=org.auth()).json()
    r = api.client.patch("/api/v1/org", json={"tofu_binding": value}, headers=org.auth())
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["msg"].endswith("tofu_binding must be true or false")
    assert api.client.get("/api/v1/org", headers=org.auth()).json() == before


def test_booleans_and_null_still_work(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    for value in (False, True, None):
        r = api.client.patch("/api/v1/org", json={"tofu_binding": value}, headers=org.auth())
        assert r.status_code == 200, r.text


def test_identity_enabled_and_models_of_other_routes(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    ident = api.client.post(
        "/api/v1/identities", json={"kind": "user", "name": "Ada"}, headers=org.auth()
    ).json()
    r = api.client.patch(
        f"/api/v1/identities/{ident['id']}", json={"enabled": 0}, headers=org.auth()
    )
    assert r.status_code == 422, r.text
    after = api.client.get(f"/api/v1/identities/{ident['id']}", headers=org.auth()).json()
    assert after["enabled"] is True
    # A model defined in another route module, on the same base.
    r = api.client.put("/api/v1/dns/settings", json={"pseudonymise": "false"}, headers=org.auth())
    assert r.status_code == 422, r.text
    r = api.client.post(
        "/api/v1/esim/orders",
        json={"identity_id": ident["id"], "confirmation_code": 1},
        headers=org.auth(),
    )
    assert r.status_code == 422, r.text
