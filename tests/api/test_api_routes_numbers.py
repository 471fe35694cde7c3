"""A number's history over the API: its first SIM, a replacement, its devices; newest
first, paged; another org's number reads as one with no history."""

from __future__ import annotations

from typing import Any

from ztsim.identity.roles import Role

from support.api import ApiHarness, OrgHandle
from support.factories import make_sims, stock_csv


def _post(api: ApiHarness, path: str, body: object, auth: dict[str, str]) -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=auth)
    assert r.status_code in (200, 201), r.text
    data: dict[str, Any] = r.json()
    return data


def _org_with_a_replaced_sim(
    api: ApiHarness, slug: str, seed: int
) -> tuple[OrgHandle, list[str], str]:
    org = api.new_org(slug)
    auth = org.auth()
    sims = make_sims(2, seed=seed)
    r = api.client.post(
        "/api/v1/stock-imports?filename=s.csv&kind=physical",
        content=stock_csv(sims),
        headers={**auth, "content-type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    person = _post(api, "/api/v1/identities", {"kind": "user", "name": "Ann"}, auth)
    _post(api, f"/api/v1/sims/{sims[0].iccid}/assign", {"identity_id": person["id"]}, auth)
    _post(api, f"/api/v1/sims/{sims[0].iccid}/activate", {}, auth)
    body = {"new_iccid": sims[1].iccid, "reason": "card broken"}
    _post(api, f"/api/v1/sims/{sims[0].iccid}/replace", body, auth)
    assert sims[0].msisdn is not None
    return org, [s.iccid for s in sims], "+" + sims[0].msisdn


def test_the_history_of_a_replaced_sims_number_newest_first(api: ApiHarness) -> None:
    org, (first, second), number = _org_with_a_replaced_sim(api, "acme", 71)
    r = api.client.get(f"/api/v1/numbers/{number}/changes", headers=org.auth(Role.AUDITOR))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["kind"], i["previous"], i["current"]) for i in items] == [
        ("sim", first, second),
        ("sim", None, first),
    ]
    assert all(i["msisdn"] == number for i in items)
    # The same number without '+' is the same number.
    plain = api.client.get(f"/api/v1/numbers/{number[1:]}/changes", headers=org.auth())
    assert plain.json()["items"] == items
    only_devices = api.client.get(
        f"/api/v1/numbers/{number}/changes", params={"kind": "device"}, headers=org.auth()
    )
    assert only_devices.json()["items"] == []


def test_pages_follow_the_cursor(api: ApiHarness) -> None:
    org, _, number = _org_with_a_replaced_sim(api, "acme", 72)
    path = f"/api/v1/numbers/{number}/changes"
    first = api.client.get(path, params={"limit": 1}, headers=org.auth()).json()
    assert len(first["items"]) == 1
    assert first["next_cursor"]
    second = api.client.get(
        path, params={"limit": 1, "cursor": first["next_cursor"]}, headers=org.auth()
    ).json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    assert second["items"][0]["id"] < first["items"][0]["id"]


def test_another_orgs_number_is_not_found_as_an_unknown_one_is(api: ApiHarness) -> None:
    _, _, number = _org_with_a_replaced_sim(api, "acme", 73)
    other = api.new_org("globex")
    theirs = api.client.get(f"/api/v1/numbers/{number}/changes", headers=other.auth())
    unknown = api.client.get("/api/v1/numbers/+491709999999/changes", headers=other.auth())
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["detail"] == unknown.json()["detail"]


def test_a_malformed_number_or_kind_is_refused(api: ApiHarness) -> None:
    org = api.new_org("acme")
    for path in ("/api/v1/numbers/0049123/changes", "/api/v1/numbers/+12ab/changes"):
        assert api.client.get(path, headers=org.auth()).status_code == 422
    r = api.client.get(
        "/api/v1/numbers/+491701234567/changes", params={"kind": "ip"}, headers=org.auth()
    )
    assert r.status_code == 422
