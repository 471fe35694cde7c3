"""The API as an admin and an employee use it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ztsim.identity.roles import Role

from api.conftest import World
from support.api import ApiHarness
from support.factories import make_sims, stock_csv


def test_errors_are_problem_details(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    c, auth = api.client, alpha.org.auth()
    r = c.post(f"/api/v1/sims/{alpha.ids['spare_iccid']}/activate", json={}, headers=auth)
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 409
    assert body["title"] == "Conflict"
    assert "cannot activate a SIM that is stock" in body["detail"]
    r = c.post(f"/api/v1/sims/{alpha.ids['iccid']}/suspend", json={"reason": ""}, headers=auth)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "reason"]
    r = c.get("/api/v1/sims?cursor=not-a-cursor", headers=auth)
    assert (r.status_code, r.json()["detail"]) == (422, "cursor is not one this API issued")


def test_validation_errors_do_not_echo_values(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    secret = "465b5ce8b199b49faa5f0a2ee238a6bc"
    r = api.client.post(
        "/api/v1/identities", json={"kind": secret, "name": "x"}, headers=alpha.org.auth()
    )
    assert r.status_code == 422
    assert secret not in r.text


def test_suspend_and_resume_with_audit(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    c, auth = api.client, alpha.org.auth(Role.OPERATOR)
    iccid = alpha.ids["iccid"]
    r = c.post(f"/api/v1/sims/{iccid}/suspend", json={"reason": "phone stolen"}, headers=auth)
    assert r.json()["state"] == "suspended"
    assert c.post(f"/api/v1/sims/{iccid}/resume", json={}, headers=auth).json()["state"] == "active"
    events = c.get(
        f"/api/v1/events?subject=sim:{iccid}", headers=alpha.org.auth(Role.ANALYST)
    ).json()["items"]
    assert [e["kind"] for e in events][:2] == ["sim.resume", "sim.suspend"]
    me = c.get("/api/v1/me", headers=auth).json()
    assert events[1]["actor"] == f"token:{me['token_id']}"
    assert events[1]["reason"] == "phone stolen"


def test_import_via_api_reports_every_bad_row(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    specs = make_sims(4, seed=7)
    lines = stock_csv(specs).splitlines()
    lines[2] = lines[2].replace(specs[1].k.hex(), "x" * 32)
    lines[4] = lines[4].replace(specs[3].iccid, specs[3].iccid[:-1])
    r = api.client.post(
        "/api/v1/stock-imports?filename=bad.csv",
        content="\n".join(lines),
        headers={**alpha.org.auth(Role.OPERATOR), "content-type": "text/csv"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(3, "k"), (5, "iccid")]
    listed = api.client.get("/api/v1/sims?limit=1000", headers=alpha.org.auth()).json()["items"]
    assert not {s.iccid for s in specs} & {s["iccid"] for s in listed}
    imports = api.client.get("/api/v1/stock-imports", headers=alpha.org.auth()).json()["items"]
    assert imports[0]["status"] == "rejected"


def test_self_token_sees_only_its_own(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    c, mine = api.client, alpha.org.auth(Role.SELF)
    sims = c.get("/api/v1/sims", headers=mine).json()["items"]
    assert [s["iccid"] for s in sims] == [alpha.ids["iccid"]]
    other_identity = alpha.ids["service_id"]
    assert c.get(f"/api/v1/sims?identity_id={other_identity}", headers=mine).json()["items"] == []
    assert c.get(f"/api/v1/sims/{alpha.ids['spare_iccid']}", headers=mine).status_code == 404
    devices = c.get("/api/v1/devices", headers=mine).json()["items"]
    assert [d["id"] for d in devices] == [alpha.ids["device_id"]]
    events = c.get("/api/v1/events?limit=1000", headers=mine).json()["items"]
    assert events
    own = {
        f"sim:{alpha.ids['iccid']}",
        f"device:{alpha.ids['device_id']}",
        f"identity:{alpha.ids['identity_id']}",
    }
    assert {e["subject"] for e in events} <= own
    all_events = c.get("/api/v1/events?limit=1000", headers=alpha.org.auth()).json()["items"]
    assert len(all_events) > len(events)


def test_token_lifecycle(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    c, auth = api.client, alpha.org.auth()
    r = c.post("/api/v1/tokens", json={"name": "ci", "role": "auditor"}, headers=auth)
    assert r.status_code == 201
    token = r.json()["token"]
    listed = c.get("/api/v1/tokens", headers=auth).json()
    assert token not in str(listed)
    assert {t["prefix"] for t in listed} >= {token[:12]}
    new_auth = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/v1/me", headers=new_auth).json()["role"] == "auditor"
    assert c.delete(f"/api/v1/tokens/{r.json()['id']}", headers=auth).json()["revoked_at"]
    assert c.get("/api/v1/me", headers=new_auth).status_code == 401


def test_expired_token_and_disabled_identity_lose_access(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    c, auth = api.client, alpha.org.auth()
    soon = (datetime.now(UTC) + timedelta(seconds=60)).isoformat()
    r = c.post(
        "/api/v1/tokens",
        json={"name": "short", "role": "analyst", "expires_at": soon},
        headers=auth,
    )
    token = r.json()["token"]
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    api.clock.offset = timedelta(seconds=120)
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    api.clock.offset = timedelta(0)
    # A self token dies with its identity.
    r = c.patch(
        f"/api/v1/identities/{alpha.ids['identity_id']}", json={"enabled": False}, headers=auth
    )
    assert r.json()["enabled"] is False
    assert c.get("/api/v1/me", headers=alpha.org.auth(Role.SELF)).status_code == 401
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    r = c.post(
        "/api/v1/tokens", json={"name": "x", "role": "analyst", "expires_at": past}, headers=auth
    )
    assert r.status_code == 422
    r = c.post(
        "/api/v1/tokens",
        json={"name": "x", "role": "analyst", "expires_at": "2030-01-01T00:00:00"},
        headers=auth,
    )
    assert r.status_code == 422  # naive time: which zone was meant is unknown


def test_binding_is_admin_only_and_audited(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    c = api.client
    iccid, device = alpha.ids["iccid"], alpha.ids["device_id"]
    body = {"device_id": device, "reason": "issued phone"}
    assert (
        c.put(
            f"/api/v1/sims/{iccid}/binding", json=body, headers=alpha.org.auth(Role.OPERATOR)
        ).status_code
        == 403
    )
    r = c.put(f"/api/v1/sims/{iccid}/binding", json=body, headers=alpha.org.auth())
    assert r.json()["device_id"] == device
    r = c.put(
        f"/api/v1/sims/{iccid}/binding",
        json={"device_id": None, "reason": "lost"},
        headers=alpha.org.auth(),
    )
    assert r.json()["device_id"] is None
    kinds = [
        e["kind"]
        for e in c.get("/api/v1/events?kind=sim.binding_changed", headers=alpha.org.auth()).json()[
            "items"
        ]
    ]
    assert kinds == ["sim.binding_changed", "sim.binding_changed"]


def test_list_pagination_over_the_api(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    seen, cursor = [], None
    while True:
        url = "/api/v1/sims?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = api.client.get(url, headers=alpha.org.auth()).json()
        seen += [s["iccid"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5  # 3 physical SIMs and 2 eSIMs (support/world.py)
    assert seen == sorted(seen)
