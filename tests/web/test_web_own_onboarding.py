"""An employee's open eSIM order on their page: its activation code and QR code while
it can be used, never another person's order, nothing once expired or cancelled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ztsim.errors import NotFound
from ztsim.identity import token_store
from ztsim.identity.roles import Principal, Role
from ztsim.web import own_onboarding, record

from support.api import ApiHarness
from support.world import World


def _principal(api: ApiHarness, token: str) -> Principal:
    with api.engine.connect() as conn:
        found = token_store.authenticate(conn, token, api.clock())
    assert found is not None
    return found


def _order_for_me(api: ApiHarness, world: World) -> dict[str, str]:
    created = api.client.post(
        "/api/v1/esim/orders",
        json={"identity_id": world.ids["identity_id"]},
        headers=world.org.auth(),
    )
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


def test_the_open_order_s_code_while_it_can_be_used(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    mine = _order_for_me(api, alpha)
    principal = _principal(api, alpha.org.tokens[Role.SELF])
    sealer, now = api.ctx.sealer, api.clock()
    with api.engine.connect() as conn:
        r = record.read(conn, principal, sealer, now)
        svg = own_onboarding.qr(conn, sealer, principal, mine["id"], now)
        with pytest.raises(NotFound):  # another employee's order does not exist for them
            own_onboarding.qr(conn, sealer, principal, alpha.ids["order_id"], now)
        with pytest.raises(NotFound):
            own_onboarding.qr(conn, sealer, principal, "nope", now)
        # Past its expiry the order is not open any more: no code, no picture.
        later = now + timedelta(days=400)
        assert own_onboarding.open_order(conn, sealer, principal, later) is None
        with pytest.raises(NotFound):
            own_onboarding.qr(conn, sealer, principal, mine["id"], later)
    assert r.onboarding is not None
    assert r.onboarding.order_id == mine["id"]
    assert r.onboarding.activation_code == mine["activation_code"]
    assert svg.startswith(b"<?xml")
    assert b"<svg" in svg
    assert mine["matching_id"].encode() not in svg  # a picture of it, not its text


def test_a_cancelled_order_is_not_shown(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    mine = _order_for_me(api, alpha)
    cancel = api.client.post(
        f"/api/v1/esim/orders/{mine['id']}/cancel", json={}, headers=alpha.org.auth()
    )
    assert cancel.status_code == 200, cancel.text
    principal = _principal(api, alpha.org.tokens[Role.SELF])
    with api.engine.connect() as conn:
        assert own_onboarding.open_order(conn, api.ctx.sealer, principal, api.clock()) is None
