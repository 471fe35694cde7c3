"""nosniff on every response; no-store on every response that does not set its own
freshness, the ones carrying a secret above all."""

from __future__ import annotations

import httpx2

from support.api import ApiHarness


def _assert_private(r: httpx2.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff", (r.request.url, r.status_code)
    assert "no-store" in r.headers["cache-control"], (r.request.url, r.status_code)


def test_every_kind_of_response_carries_nosniff_and_no_store(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    c = api.client
    responses = [
        c.get("/api/v1/me", headers=org.auth()),  # 200
        c.get("/api/v1/me"),  # 401 from the edge
        c.get("/api/v1/identities/nope", headers=org.auth()),  # 404
        c.delete("/api/v1/identities", headers=org.auth()),  # 405
        c.post("/api/v1/identities", json={"kind": "x"}, headers=org.auth()),  # 422
        c.post("/dns-query", content=b"x" * 70000),  # 413 from the edge
        c.get("/dns-query?dns=AAAA"),  # the DoH route, no gateway here: 503
        c.get("/openapi.json"),
    ]
    assert [r.status_code for r in responses] == [200, 401, 404, 405, 422, 413, 503, 200]
    for r in responses:
        _assert_private(r)


def test_responses_that_show_a_secret_once_are_not_stored(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    c = api.client
    token = c.post("/api/v1/tokens", json={"name": "ci", "role": "analyst"}, headers=org.auth())
    assert token.status_code == 201
    _assert_private(token)
    device = c.post("/api/v1/devices", json={"imei": "490154203237518"}, headers=org.auth())
    assert device.status_code == 201, device.text
    doh = c.post(
        "/api/v1/dns/device-tokens", json={"device_id": device.json()["id"]}, headers=org.auth()
    )
    assert doh.status_code == 201, doh.text
    _assert_private(doh)
