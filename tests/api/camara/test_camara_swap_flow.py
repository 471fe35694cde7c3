"""Issue 19's whole flow over real HTTP handlers: a re-issue waits for a second admin;
while it waits, CAMARA says the number's SIM has not changed; once another person
approves it, `check` with `maxAge: 1` says `swapped: true` and the subscriber's sink (an
HTTPS server on loopback) receives the CloudEvent with its bearer credential."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from ztsim.risk.serve.notify import Notifier

from support.api import ApiHarness, OrgHandle
from support.camara_sink import https_sink, sink_token
from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

SWAPPED = "org.camaraproject.sim-swap-subscriptions.v0.swapped"
SCOPES = [
    "sim-swap:check",
    "sim-swap-subscriptions:org.camaraproject.sim-swap-subscriptions.v0.swapped:create",
]


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def _admin_of(api: ApiHarness, org: OrgHandle, name: str) -> dict[str, str]:
    """An admin token that names its person, as the two-person rule asks."""
    c = api.client
    person = _ok(
        c.post("/api/v1/identities", json={"kind": "user", "name": name}, headers=org.auth()), 201
    )
    body = {"name": name, "role": "admin", "identity_id": person["id"]}
    token = _ok(c.post("/api/v1/tokens", json=body, headers=org.auth()), 201)["token"]
    return {"Authorization": f"Bearer {token}"}


def _camara_token(api: ApiHarness, org: OrgHandle) -> dict[str, str]:
    c = api.client
    client = _ok(
        c.post("/api/v1/api-clients", json={"name": "idp", "scopes": SCOPES}, headers=org.auth()),
        201,
    )
    token = _ok(
        c.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client["id"], client["client_secret"]),
        )
    )["access_token"]
    LEAKS.add_secret(token)
    return {"Authorization": f"Bearer {token}"}


def test_a_held_reissue_changes_nothing_until_approved_then_camara_and_the_sink_say_so(
    api: ApiHarness, tmp_path: Path
) -> None:
    c, org = api.client, api.new_org("acme")
    spec = make_sims(2, seed=88)
    _ok(
        c.post(
            "/api/v1/stock-imports?filename=e.csv&kind=esim",
            content=stock_csv(spec),
            headers={**org.auth(), "content-type": "text/csv"},
        ),
        201,
    )
    ann = _admin_of(api, org, "Ann")
    bob = _admin_of(api, org, "Bob")
    employee = _ok(
        c.post("/api/v1/identities", json={"kind": "user", "name": "Dee"}, headers=org.auth()), 201
    )
    order = _ok(
        c.post("/api/v1/esim/orders", json={"identity_id": employee["id"]}, headers=org.auth()), 201
    )
    _ok(c.post(f"/api/v1/sims/{order['iccid']}/activate", json={}, headers=org.auth()))
    number = "+" + str(next(s.msisdn for s in spec if s.iccid == order["iccid"]))
    _ok(c.put("/api/v1/risk/settings", json={"approval_required": True}, headers=org.auth()))
    # Two days on: the line's new subscription is older than any maxAge asked below.
    api.clock.offset += timedelta(days=2)
    camara = _camara_token(api, org)

    with https_sink(tmp_path) as sink:
        credential = sink_token()
        subscription = {
            "protocol": "HTTP",
            "sink": sink.url,
            "types": [SWAPPED],
            "config": {"subscriptionDetail": {"phoneNumber": number}},
            "sinkCredential": {
                "credentialType": "ACCESSTOKEN",
                "accessToken": credential,
                "accessTokenExpiresUtc": "2099-01-01T00:00:00Z",
                "accessTokenType": "bearer",
            },
        }
        path = "/sim-swap-subscriptions/v0.3/subscriptions"
        _ok(c.post(path, json=subscription, headers=camara), 201)
        notifier = Notifier(api.engine, api.ctx.sealer, sink.client())

        def swapped() -> bool:
            body = {"phoneNumber": number, "maxAge": 1}
            answer: bool = _ok(c.post("/sim-swap/v2/check", json=body, headers=camara))["swapped"]
            return answer

        reason = {"reason": "caller says the phone was lost"}
        held = c.post(f"/api/v1/esim/orders/{order['id']}/reissue", json=reason, headers=ann)
        request = _ok(held, 202)
        assert request["state"] == "pending"
        # Held: the number has not moved, nothing is told.
        assert swapped() is False
        notifier.run_once(api.clock())
        assert sink.received == []
        # The requester cannot approve their own request.
        approve = f"/api/v1/swap-requests/{request['id']}/approve"
        assert c.post(approve, headers=ann).status_code == 403
        assert swapped() is False

        assert _ok(c.post(approve, headers=bob))["state"] == "approved"
        assert swapped() is True
        notifier.run_once(api.clock())
        [event] = sink.received
        assert event.body["type"] == SWAPPED
        assert event.body["data"]["phoneNumber"] == number
        assert event.headers["authorization"] == f"Bearer {credential}"
