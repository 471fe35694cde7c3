"""Risk settings and the two-person rule over the API: a re-issue or SIM replacement waits
(202) while the org requires approval, holds nothing meanwhile, and happens only when an
admin who is another person approves it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from ztsim.db import schema
from ztsim.identity.roles import Role

from support.api import ApiHarness, OrgHandle
from support.factories import make_sims, stock_csv

SETTINGS = "/api/v1/risk/settings"


def _post(api: ApiHarness, path: str, body: object, auth: dict[str, str]) -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=auth)
    assert r.status_code in (200, 201), r.text
    data: dict[str, Any] = r.json()
    return data


def _admin(api: ApiHarness, org: OrgHandle, identity_id: str | None) -> dict[str, str]:
    """A new admin token, naming `identity_id` (its person) or no one."""
    body = {"name": "admin", "role": "admin", "identity_id": identity_id}
    token = _post(api, "/api/v1/tokens", body, org.auth())["token"]
    return {"Authorization": f"Bearer {token}"}


def _world(api: ApiHarness) -> tuple[OrgHandle, dict[str, str]]:
    org = api.new_org("acme")
    c, auth = api.client, org.auth()
    for kind, seed in (("physical", 61), ("esim", 62)):
        r = c.post(
            f"/api/v1/stock-imports?filename={kind}.csv&kind={kind}",
            content=stock_csv(make_sims(3, seed=seed)),
            headers={**auth, "content-type": "text/csv"},
        )
        assert r.status_code == 201, r.text
    ids: dict[str, str] = {}
    for name in ("Ann", "Bob", "Dee"):
        ids[name] = _post(api, "/api/v1/identities", {"kind": "user", "name": name}, auth)["id"]
    physical = make_sims(3, seed=61)
    ids["iccid"], ids["spare"] = physical[0].iccid, physical[1].iccid
    _post(api, f"/api/v1/sims/{ids['iccid']}/assign", {"identity_id": ids["Dee"]}, auth)
    _post(api, f"/api/v1/sims/{ids['iccid']}/activate", {}, auth)
    order = _post(api, "/api/v1/esim/orders", {"identity_id": ids["Dee"]}, auth)
    ids["order"], ids["order_iccid"] = order["id"], order["iccid"]
    return org, ids


def test_settings_read_and_partial_update(api: ApiHarness) -> None:
    org = api.new_org("acme")
    c = api.client
    first = c.get(SETTINGS, headers=org.auth(Role.OPERATOR))
    assert first.status_code == 200, first.text
    assert first.json()["approval_required"] is False
    assert first.json()["cooling_off"] == "1d"
    body = {"cooling_off": "12h", "detectors": {"twin_session": {"response": "suspend"}}}
    r = c.put(SETTINGS, json=body, headers=org.auth())
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["approval_required"], got["cooling_off"]) == (False, "12h")
    assert got["detectors"]["twin_session"] == {"response": "suspend", "devices": 3, "window": "1h"}
    assert got["detectors"]["sqn_anomaly"]["response"] == "alert"
    assert c.get(SETTINGS, headers=org.auth(Role.AUDITOR)).json() == got
    bad_bodies: list[dict[str, object]] = [
        {"cooling_off": "soon"},
        {"detectors": {"ghost": {}}},
        {"monitored_days": 0},
        {"approval_required": "yes"},
        {"colour": "red"},
    ]
    for bad in bad_bodies:
        r = c.put(SETTINGS, json=bad, headers=org.auth())
        assert r.status_code in (400, 422), (bad, r.text)
    assert c.put(SETTINGS, json={}, headers=org.auth(Role.OPERATOR)).status_code == 403
    assert c.get(SETTINGS, headers=org.auth()).json() == got


def test_a_reissue_waits_for_another_admin_then_happens(api: ApiHarness) -> None:
    org, ids = _world(api)
    c = api.client
    ann, ann_again = _admin(api, org, ids["Ann"]), _admin(api, org, ids["Ann"])
    bob = _admin(api, org, ids["Bob"])
    assert c.put(SETTINGS, json={"approval_required": True}, headers=ann).status_code == 200
    r = c.post(
        f"/api/v1/esim/orders/{ids['order']}/reissue", json={"reason": "lost phone"}, headers=ann
    )
    assert r.status_code == 202, r.text
    pending = r.json()
    assert "matching_id" not in pending
    assert (pending["kind"], pending["state"], pending["target"]) == (
        "esim_reissue",
        "pending",
        ids["order"],
    )
    assert pending["requester"] == f"identity:{ids['Ann']}"
    path = f"/api/v1/swap-requests/{pending['id']}"
    # Nothing happened yet: the order and its SIM are as they were.
    order = c.get(f"/api/v1/esim/orders/{ids['order']}", headers=ann).json()
    assert (order["state"], order["replaced_by"]) == ("issued", None)
    sim = c.get(f"/api/v1/sims/{ids['order_iccid']}", headers=ann).json()
    assert sim["state"] == "assigned"
    listed = c.get("/api/v1/swap-requests?state=pending", headers=org.auth(Role.OPERATOR))
    assert [item["id"] for item in listed.json()["items"]] == [pending["id"]]
    # Ann's other token is Ann: refused. Bob approves.
    refused = c.post(f"{path}/approve", headers=ann_again)
    assert refused.status_code == 403, refused.text
    assert "second admin" in refused.json()["detail"]
    r = c.post(f"{path}/approve", headers=bob)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "approved"
    assert done["decided_by"].startswith("token:")
    assert done["result"]["old_iccid"] == ids["order_iccid"]
    assert "matching_id" not in done["result"]
    order = c.get(f"/api/v1/esim/orders/{ids['order']}", headers=ann).json()
    assert order["replaced_by"] == done["result"]["new_order_id"]
    assert c.get(f"/api/v1/sims/{ids['order_iccid']}", headers=ann).json()["state"] == "retired"
    with api.engine.connect() as conn:
        until = conn.execute(
            select(schema.sims.c.swap_recent_until).where(
                schema.sims.c.iccid == done["result"]["new_iccid"]
            )
        ).scalar_one()
    assert until is not None  # the cooling-off started at approval
    kinds = [
        e["kind"]
        for e in c.get(
            f"/api/v1/events?subject=sim:{ids['order_iccid']}", headers=org.auth(Role.AUDITOR)
        ).json()["items"]
    ]
    assert {"risk.swap_requested", "risk.swap_approved"} <= set(kinds)
    assert c.post(f"{path}/approve", headers=org.auth()).status_code == 409
    assert c.post(f"{path}/reject", json={}, headers=bob).status_code == 409


def test_an_admin_token_naming_no_one_is_its_own_person(api: ApiHarness) -> None:
    org, ids = _world(api)
    c = api.client
    requester = _admin(api, org, None)
    assert c.put(SETTINGS, json={"approval_required": True}, headers=requester).status_code == 200
    body = {"new_iccid": ids["spare"], "reason": "broken card"}
    r = c.post(f"/api/v1/sims/{ids['iccid']}/replace", json=body, headers=requester)
    assert r.status_code == 202, r.text
    path = f"/api/v1/swap-requests/{r.json()['id']}"
    assert c.post(f"{path}/approve", headers=requester).status_code == 403
    # A token the requester made, even one naming another person, is the requester's hand.
    made = {"name": "helper", "role": "admin", "identity_id": ids["Bob"]}
    minted = c.post("/api/v1/tokens", json=made, headers=requester).json()["token"]
    refused = c.post(f"{path}/approve", headers={"Authorization": f"Bearer {minted}"})
    assert refused.status_code == 403, refused.text
    assert "requester created" in refused.json()["detail"]
    assert c.get(f"/api/v1/sims/{ids['spare']}", headers=org.auth()).json()["state"] == "stock"
    r = c.post(f"{path}/approve", headers=org.auth())
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"old_iccid": ids["iccid"], "new_iccid": ids["spare"]}
    new = c.get(f"/api/v1/sims/{ids['spare']}", headers=org.auth()).json()
    assert (new["state"], new["identity_id"]) == ("active", ids["Dee"])


def test_without_approval_swaps_answer_as_before(api: ApiHarness) -> None:
    org, ids = _world(api)
    c = api.client
    body = {"new_iccid": ids["spare"], "reason": "broken card"}
    r = c.post(f"/api/v1/sims/{ids['iccid']}/replace", json=body, headers=org.auth(Role.OPERATOR))
    assert r.status_code == 200, r.text
    assert (r.json()["iccid"], r.json()["state"]) == (ids["spare"], "active")
    r = c.post(
        f"/api/v1/esim/orders/{ids['order']}/reissue", json={"reason": "lost"}, headers=org.auth()
    )
    assert r.status_code == 201, r.text
    assert r.json()["replaces_id"] == ids["order"]
    assert c.get("/api/v1/swap-requests", headers=org.auth()).json()["items"] == []


def test_failed_rejected_and_expired_requests(api: ApiHarness) -> None:
    org, ids = _world(api)
    c, admin = api.client, org.auth()
    bob = _admin(api, org, ids["Bob"])
    # Bob's token was made by the org's first admin token: Ann asks, so Bob may decide.
    ann = _admin(api, org, ids["Ann"])
    assert c.put(SETTINGS, json={"approval_required": True}, headers=admin).status_code == 200
    reissue = f"/api/v1/esim/orders/{ids['order']}/reissue"
    first = c.post(reissue, json={"reason": "lost"}, headers=ann).json()
    # The order is cancelled meanwhile: the approval fails, and says why.
    assert c.post(f"/api/v1/esim/orders/{ids['order']}/cancel", json={}, headers=admin).is_success
    r = c.post(f"/api/v1/swap-requests/{first['id']}/approve", headers=bob)
    assert r.status_code == 409, r.text
    assert "cancelled" in r.json()["detail"]
    failed = c.get(f"/api/v1/swap-requests/{first['id']}", headers=admin).json()
    assert failed["state"] == "failed"
    assert "cancelled" in failed["result"]["error"]
    # A replacement rejected by its own requester (withdrawn); another left to expire.
    body = {"new_iccid": ids["spare"], "reason": "broken card"}
    replace = f"/api/v1/sims/{ids['iccid']}/replace"
    second = c.post(replace, json=body, headers=ann).json()
    r = c.post(f"/api/v1/swap-requests/{second['id']}/reject", json={"reason": "oops"}, headers=ann)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["result"]) == ("rejected", {"reason": "oops"})
    third = c.post(replace, json=body, headers=ann)
    assert third.status_code == 202, third.text
    assert c.post(replace, json=body, headers=ann).status_code == 409  # one pending at a time
    api.clock.offset = timedelta(hours=73)
    path = f"/api/v1/swap-requests/{third.json()['id']}"
    assert c.get(path, headers=admin).json()["state"] == "expired"
    assert c.post(f"{path}/approve", headers=bob).status_code == 409
    states = [i["state"] for i in c.get("/api/v1/swap-requests", headers=admin).json()["items"]]
    assert states == ["expired", "rejected", "failed"]
    expired = c.get("/api/v1/swap-requests?state=expired", headers=admin).json()["items"]
    assert [i["id"] for i in expired] == [third.json()["id"]]
    assert c.get(f"/api/v1/sims/{ids['spare']}", headers=admin).json()["state"] == "stock"
