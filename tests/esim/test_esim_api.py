"""eSIM orders over the API: the whole onboarding as the IT team, the employee and the
SM-DP+ see it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.clock import utc_now
from ztsim.esim.config import EsimConfig
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.sealing import Sealer

from support.api import ApiHarness, OrgHandle
from support.esim_decode import (
    needs_chromium,
    needs_zbarimg,
    screenshot,
    zbar_decode,
    zbar_decode_bytes,
)
from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

EID = "89049032123451234512345678901235"


def _org(api: ApiHarness, slug: str = "acme", seed: int = 51) -> tuple[OrgHandle, list[str]]:
    org = api.new_org(slug)
    c = api.client
    r = c.post(
        "/api/v1/stock-imports?filename=esim.csv&kind=esim",
        content=stock_csv(make_sims(4, seed=seed)),
        headers={**org.auth(), "content-type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    people = []
    for name in ("Alice", "Bob"):
        r = c.post(
            "/api/v1/identities",
            json={"kind": "user", "name": name, "email": f"{name.lower()}@{slug}.test"},
            headers=org.auth(),
        )
        assert r.status_code == 201, r.text
        people.append(r.json()["id"])
    return org, people


def _self_auth(api: ApiHarness, org: OrgHandle, identity_id: str) -> dict[str, str]:
    with api.engine.begin() as conn:
        _, token = token_store.issue(
            conn,
            org.id,
            name="self",
            role=Role.SELF,
            identity_id=identity_id,
            created_by="test",
            now=utc_now(),
        )
    LEAKS.add_secret(token)
    return {"Authorization": f"Bearer {token}"}


def _create(api: ApiHarness, org: OrgHandle, who: str, **body: object) -> dict[str, object]:
    r = api.client.post(
        "/api/v1/esim/orders",
        json={"identity_id": who, **body},
        headers=org.auth(Role.OPERATOR),
    )
    assert r.status_code == 201, r.text
    created: dict[str, object] = r.json()
    return created


def _progress(
    api: ApiHarness, org: OrgHandle, iccid: object, point: int, status: str = "Executed-Success"
) -> tuple[int, dict[str, object]]:
    r = api.client.post(
        "/api/v1/esim/progress",
        json={"iccid": iccid, "eid": EID, "notification_point_id": point, "status": status},
        headers=org.auth(Role.SMDP),
    )
    return r.status_code, r.json()


@needs_zbarimg
def test_onboarding_from_order_to_enabled(api: ApiHarness) -> None:
    org, (alice, _bob) = _org(api)
    c = api.client
    created = _create(api, org, alice, confirmation_code=True)
    code = str(created["activation_code"])
    assert code == f"LPA:1$smdp.example.test${created['matching_id']}$$1"
    assert created["confirmation_code"]
    assert created["state"] == "issued"
    order_id = created["id"]
    # Reads never show the secrets again.
    got = c.get(f"/api/v1/esim/orders/{order_id}", headers=org.auth(Role.AUDITOR))
    assert got.status_code == 200
    listed = c.get("/api/v1/esim/orders", headers=org.auth()).json()
    for text in (got.text, str(listed)):
        assert str(created["matching_id"]) not in text
        assert str(created["confirmation_code"]) not in text
    assert [o["id"] for o in listed["items"]] == [order_id]
    # Every QR code the API hands out decodes to exactly the code.
    png = c.get(f"/api/v1/esim/orders/{order_id}/pack?format=png", headers=org.auth())
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "no-store, private"
    assert zbar_decode_bytes(png.content) == [code]
    svg = c.get(f"/api/v1/esim/orders/{order_id}/pack?format=svg", headers=org.auth())
    assert svg.headers["content-type"] == "image/svg+xml"
    pdf = c.get(f"/api/v1/esim/orders/{order_id}/pack?format=pdf", headers=org.auth())
    assert pdf.content.startswith(b"%PDF-")
    html = c.get(f"/api/v1/esim/orders/{order_id}/pack", headers=org.auth(Role.OPERATOR))
    assert html.headers["content-type"].startswith("text/html")
    assert code in html.text
    # An admin is not an SM-DP+: only the `smdp` token may report progress.
    r = c.post(
        "/api/v1/esim/progress",
        json={"iccid": created["iccid"], "notification_point_id": 3, "status": "Executed-Success"},
        headers=org.auth(),
    )
    assert r.status_code == 403
    for point, state in ((1, "issued"), (3, "downloaded"), (4, "installed"), (101, "enabled")):
        status, body = _progress(api, org, created["iccid"], point)
        assert status == 200, body
        assert body["state"] == state
        assert body["eid"] == EID
    sim = c.get(f"/api/v1/sims/{created['iccid']}", headers=org.auth()).json()
    assert sim["state"] == "active"
    # A used code has no pack any more.
    assert c.get(f"/api/v1/esim/orders/{order_id}/pack", headers=org.auth()).status_code == 409


def test_a_matching_id_cannot_be_used_twice(api: ApiHarness) -> None:
    org, (alice, _bob) = _org(api)
    created = _create(api, org, alice)
    assert _progress(api, org, created["iccid"], 3)[0] == 200
    status, body = _progress(api, org, created["iccid"], 3)
    assert status == 409
    assert "used already" in str(body["detail"])
    events = api.client.get(
        "/api/v1/events?kind=esim.progress_refused", headers=org.auth(Role.ANALYST)
    ).json()["items"]
    assert len(events) == 1
    assert events[0]["outcome"] == "denied"


def test_expired_and_cancelled_orders_refuse_progress(api: ApiHarness) -> None:
    org, (alice, bob) = _org(api)
    c = api.client
    cancelled = _create(api, org, alice)
    r = c.post(
        f"/api/v1/esim/orders/{cancelled['id']}/cancel",
        json={"reason": "changed plans"},
        headers=org.auth(Role.OPERATOR),
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    status, body = _progress(api, org, cancelled["iccid"], 3)
    assert status == 409
    assert "cancelled" in str(body["detail"])
    expiring = _create(api, org, bob)
    api.clock.offset = timedelta(days=30, seconds=1)
    got = c.get(f"/api/v1/esim/orders/{expiring['id']}", headers=org.auth()).json()
    assert got["state"] == "expired"
    status, body = _progress(api, org, expiring["iccid"], 3)
    assert status == 409
    assert "expired" in str(body["detail"])
    assert (
        c.get(f"/api/v1/esim/orders/{expiring['id']}/pack", headers=org.auth()).status_code == 409
    )


def test_a_self_token_sees_only_its_own_order_and_pack(api: ApiHarness) -> None:
    org, (alice, bob) = _org(api)
    c = api.client
    mine = _create(api, org, alice)
    theirs = _create(api, org, bob)
    as_alice = _self_auth(api, org, alice)
    listed = c.get("/api/v1/esim/orders", headers=as_alice).json()["items"]
    assert [o["id"] for o in listed] == [mine["id"]]
    assert c.get(f"/api/v1/esim/orders?identity_id={bob}", headers=as_alice).json()["items"] == []
    assert c.get(f"/api/v1/esim/orders/{mine['id']}", headers=as_alice).status_code == 200
    assert c.get(f"/api/v1/esim/orders/{mine['id']}/pack", headers=as_alice).status_code == 200
    for path in (f"/api/v1/esim/orders/{theirs['id']}", f"/api/v1/esim/orders/{theirs['id']}/pack"):
        for fmt in ("", "?format=png", "?format=pdf"):
            r = c.get(path + fmt, headers=as_alice)
            assert r.status_code == 404, (path, fmt, r.text)
            assert str(theirs["matching_id"]) not in r.text
    # Neither may an employee order, cancel or re-issue.
    assert (
        c.post(f"/api/v1/esim/orders/{mine['id']}/cancel", json={}, headers=as_alice).status_code
        == 403
    )


def test_reissue_needs_an_admin_and_a_reason(api: ApiHarness) -> None:
    org, (alice, _bob) = _org(api)
    c = api.client
    first = _create(api, org, alice, eid=EID)
    assert _progress(api, org, first["iccid"], 101)[0] == 200
    path = f"/api/v1/esim/orders/{first['id']}/reissue"
    assert c.post(path, json={"reason": "lost"}, headers=org.auth(Role.OPERATOR)).status_code == 403
    assert c.post(path, json={"reason": " "}, headers=org.auth()).status_code == 422
    r = c.post(path, json={"reason": "phone stolen"}, headers=org.auth())
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["replaces_id"] == first["id"]
    assert second["matching_id"] != first["matching_id"]
    assert second["eid"] is None
    old = c.get(f"/api/v1/esim/orders/{first['id']}", headers=org.auth()).json()
    assert old["state"] == "cancelled"
    assert old["replaced_by"] == second["id"]
    assert c.get(f"/api/v1/sims/{first['iccid']}", headers=org.auth()).json()["state"] == "retired"
    swaps = c.get("/api/v1/events?kind=sim.swap", headers=org.auth(Role.ANALYST)).json()["items"]
    assert [(e["subject"], e["payload"]) for e in swaps] == [
        (
            f"sim:{second['iccid']}",
            {"old_iccid": first["iccid"], "new_iccid": second["iccid"], "identity_id": alice},
        )
    ]
    assert c.post(path, json={"reason": "again"}, headers=org.auth()).status_code == 409


def test_bad_requests(api: ApiHarness) -> None:
    org, (alice, _bob) = _org(api)
    c = api.client
    for body in (
        {"identity_id": alice, "eid": "123"},
        {"identity_id": "not-an-id"},
        {"identity_id": alice, "extra": 1},
    ):
        r = c.post("/api/v1/esim/orders", json=body, headers=org.auth())
        assert r.status_code == 422, body
    created = _create(api, org, alice)
    r = c.post(
        "/api/v1/esim/progress",
        json={"iccid": created["iccid"], "notification_point_id": 7, "status": "Executed-Success"},
        headers=org.auth(Role.SMDP),
    )
    assert r.status_code == 422
    assert c.get("/api/v1/esim/orders/" + "0" * 32, headers=org.auth()).status_code == 404


@needs_zbarimg
@needs_chromium
def test_the_pack_page_from_the_api_scans_in_a_browser(api: ApiHarness, tmp_path: Path) -> None:
    org, (alice, _bob) = _org(api)
    created = _create(api, org, alice, confirmation_code=True)
    as_alice = _self_auth(api, org, alice)
    html = api.client.get(f"/api/v1/esim/orders/{created['id']}/pack", headers=as_alice)
    assert html.status_code == 200
    page = tmp_path / "pack.html"
    page.write_bytes(html.content)
    shot = screenshot(page, tmp_path / "shot.png")
    assert zbar_decode(shot) == [created["activation_code"]]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.NETWORK, Role.SMDP, Role.AUDITOR])
def test_roles_without_the_pack_permission(api: ApiHarness, role: Role) -> None:
    org, (alice, _bob) = _org(api)
    created = _create(api, org, alice)
    r = api.client.get(f"/api/v1/esim/orders/{created['id']}/pack", headers=org.auth(role))
    assert r.status_code == 403


PLACEHOLDER_WARNING = (
    "warning: the SM-DP+ address smdp.example.test is a placeholder (a reserved name that "
    "never resolves): phones cannot download eSIM profiles ordered with it. Set "
    "ZTSIM_ESIM_SMDP_ADDRESS (esim_smdp_address in the config file) to your SM-DP+ address."
)


def test_an_order_with_the_placeholder_smdp_address_carries_a_warning(api: ApiHarness) -> None:
    org, (alice, _bob) = _org(api)
    created = _create(api, org, alice)
    assert created["smdp_address"] == "smdp.example.test"
    assert created["warnings"] == [PLACEHOLDER_WARNING]
    r = api.client.post(
        f"/api/v1/esim/orders/{created['id']}/reissue", json={"reason": "lost"}, headers=org.auth()
    )
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == [PLACEHOLDER_WARNING]
    LEAKS.add_secret(r.json()["matching_id"])


def test_an_order_with_a_real_smdp_address_has_no_warning(api: ApiHarness, sealer: Sealer) -> None:
    org, (alice, _bob) = _org(api)
    ctx = ApiContext(api.engine, sealer, api.clock, esim=EsimConfig("smdp.acme.com"))
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        r = client.post("/api/v1/esim/orders", json={"identity_id": alice}, headers=org.auth())
    assert r.status_code == 201, r.text
    LEAKS.add_secret(r.json()["matching_id"])
    assert (r.json()["smdp_address"], r.json()["warnings"]) == ("smdp.acme.com", [])


def test_the_pack_says_what_the_dns_filter_records_in_the_orgs_mode(api: ApiHarness) -> None:
    org, (alice, _bob) = _org(api)
    created = _create(api, org, alice)
    as_alice = _self_auth(api, org, alice)
    path = f"/api/v1/esim/orders/{created['id']}/pack"
    default = api.client.get(path, headers=as_alice).text
    assert "It records only the look-ups it blocks" in default
    assert "These records name you and your phone." in default
    settings = {"privacy": "all", "pseudonymise": True}
    assert (
        api.client.put("/api/v1/dns/settings", json=settings, headers=org.auth()).status_code == 200
    )
    changed = api.client.get(path, headers=as_alice).text
    assert "It records every look-up" in changed
    assert "These records carry a code instead of your name and your phone" in changed
    assert "These records name you" not in changed
    settings = {"privacy": "none"}
    assert (
        api.client.put("/api/v1/dns/settings", json=settings, headers=org.auth()).status_code == 200
    )
    silent = api.client.get(path, headers=as_alice).text
    assert "It keeps no record of these look-ups, not even of the ones it blocks." in silent
    pdf = api.client.get(path + "?format=pdf", headers=as_alice)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
