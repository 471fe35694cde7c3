"""CAMARA SIM Swap Subscriptions 0.3.0 over HTTP: every rule and error code of the spec
(answers checked against the package's copy of it), and end to end: an eSIM re-issue
makes the subscriber's HTTPS sink receive the CloudEvent."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.risk import specs
from ztsim.risk.serve.notify import Notifier
from ztsim.sealing import Sealer

from support.api import ApiHarness, harness
from support.camara_schemas import errors, response_errors
from support.camara_sink import (
    Line,
    client_token,
    https_sink,
    org_with_line,
    sink_token,
)
from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

BASE = "/sim-swap-subscriptions/v0.3/subscriptions"
SWAPPED = "org.camaraproject.sim-swap-subscriptions.v0.swapped"
ALL = (
    "sim-swap-subscriptions:org.camaraproject.sim-swap-subscriptions.v0.swapped:create",
    "sim-swap-subscriptions:read",
    "sim-swap-subscriptions:delete",
)


@dataclass
class World:
    h: ApiHarness
    line: Line
    other: Line  # another org's number
    token: str  # 2-legged, every scope
    peer: str  # another 2-legged client of the same org
    three: str  # 3-legged, bound to line's number
    reader: str  # read only

    def post(self, body: object, token: str | None = None, **headers: str) -> httpx2.Response:
        auth = {"Authorization": f"Bearer {token or self.token}"}
        return self.h.client.post(BASE, json=body, headers={**auth, **headers})

    def get(self, path: str = "", token: str | None = None) -> httpx2.Response:
        auth = {"Authorization": f"Bearer {token or self.token}"}
        return self.h.client.get(BASE + path, headers=auth)

    def delete(self, path: str, token: str | None = None) -> httpx2.Response:
        auth = {"Authorization": f"Bearer {token or self.token}"}
        return self.h.client.delete(BASE + path, headers=auth)


@pytest.fixture
def world(sqlite_engine: Engine, sealer: Sealer) -> Iterator[World]:
    now = datetime.now(UTC)
    with harness(sqlite_engine, sealer) as h:
        line = org_with_line(sqlite_engine, sealer, "alpha", 1, now)
        other = org_with_line(sqlite_engine, sealer, "bravo", 2, now)
        _, token = client_token(sqlite_engine, line.org_id, ALL)
        _, peer = client_token(sqlite_engine, line.org_id, ALL)
        _, three = client_token(sqlite_engine, line.org_id, ALL, phone_number=line.phone_number)
        _, reader = client_token(sqlite_engine, line.org_id, ("sim-swap-subscriptions:read",))
        yield World(h, line, other, token, peer, three, reader)


def request(phone: str | None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocol": "HTTP",
        "sink": "https://endpoint.example.com/sink",
        "types": [SWAPPED],
        "config": {"subscriptionDetail": {} if phone is None else {"phoneNumber": phone}},
    }
    body.update(changes)
    return body


def refused(r: httpx2.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["status"] == status
    assert r.json()["code"] == code
    assert r.json()["message"]
    assert r.headers["content-type"].startswith("application/json")


def test_create_read_list_delete(world: World) -> None:
    token = sink_token()
    expire = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    body = request(
        world.line.phone_number,
        sinkCredential={
            "credentialType": "ACCESSTOKEN",
            "accessToken": token,
            "accessTokenExpiresUtc": "2099-01-01T00:00:00Z",
            "accessTokenType": "bearer",
        },
    )
    body["config"].update(subscriptionMaxEvents=5, subscriptionExpireTime=expire)
    r = world.post(body, **{"x-correlator": "b4333c46-49c0-4f62-80d7-f0ef930f1c46"})
    assert r.status_code == 201, r.text
    assert r.headers["x-correlator"] == "b4333c46-49c0-4f62-80d7-f0ef930f1c46"
    created = r.json()
    assert errors("Subscription", created) == []
    assert token not in r.text
    assert "sinkCredential" not in created
    assert created["status"] == "ACTIVE"
    assert created["config"] == {
        "subscriptionDetail": {"phoneNumber": world.line.phone_number},
        "subscriptionMaxEvents": 5,
        "subscriptionExpireTime": expire,
    }
    assert created["expiresAt"] == expire
    sub_id = created["id"]

    got = world.get(f"/{sub_id}")
    assert got.status_code == 200
    assert got.json() == created
    listed = world.get()
    assert listed.status_code == 200
    assert listed.json() == [created]

    gone = world.delete(f"/{sub_id}")
    assert gone.status_code == 204
    assert gone.content == b""
    refused(world.get(f"/{sub_id}"), 404, "NOT_FOUND")
    refused(world.delete(f"/{sub_id}"), 404, "NOT_FOUND")
    assert world.get().json() == []


@pytest.mark.parametrize(
    ("example", "legs"), [("SUBSCRIPTION_REQUEST", 2), ("SUBSCRIPTION_REQUEST_3LEGS", 3)]
)
def test_the_specs_own_examples_with_dates_still_ahead(
    world: World, example: str, legs: int
) -> None:
    document = specs.spec_document(specs.SIM_SWAP_SUBSCRIPTIONS)
    body = copy.deepcopy(document["components"]["examples"][example]["value"])
    body["config"]["subscriptionExpireTime"] = "2099-01-17T13:18:23.682Z"
    body["sinkCredential"]["accessTokenExpiresUtc"] = "4102444800"  # 2100, as Unix seconds
    if legs == 2:
        body["config"]["subscriptionDetail"]["phoneNumber"] = world.line.phone_number
    r = world.post(body, token=world.token if legs == 2 else world.three)
    assert r.status_code == 201, r.text
    assert errors("Subscription", r.json()) == []
    assert r.json()["config"]["subscriptionExpireTime"] == "2099-01-17T13:18:23.682Z"
    assert "accessToken" not in r.text


def test_three_legged_tokens_never_see_the_number(world: World) -> None:
    r = world.post(request(None), token=world.three)
    assert r.status_code == 201, r.text
    assert r.json()["config"]["subscriptionDetail"] == {}
    assert world.line.phone_number not in r.text
    # Another client's subscription on the same number is not in its list.
    assert world.post(request(world.line.phone_number)).status_code == 201
    listed = world.get(token=world.three).json()
    assert [s["id"] for s in listed] == [r.json()["id"]]
    refused(
        world.post(request(world.line.phone_number), token=world.three),
        422,
        "UNNECESSARY_IDENTIFIER",
    )


def test_a_subscription_is_its_clients_alone(world: World) -> None:
    sub_id = world.post(request(world.line.phone_number)).json()["id"]
    for token in (world.peer, world.three):
        refused(world.get(f"/{sub_id}", token=token), 404, "NOT_FOUND")
        refused(world.delete(f"/{sub_id}", token=token), 404, "NOT_FOUND")
        assert sub_id not in world.get(token=token).text
    _, stranger = client_token(world.h.engine, world.other.org_id, ALL)
    refused(world.get(f"/{sub_id}", token=stranger), 404, "NOT_FOUND")
    assert world.get(f"/{sub_id}").status_code == 200
    refused(world.get("/not-an-id"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"protocol": "MQTT5"}, "INVALID_PROTOCOL"),
        ({"sink": "http://endpoint.example.com/sink"}, "INVALID_SINK"),
        (
            {"sinkCredential": {"credentialType": "PLAIN", "identifier": "a", "secret": "b"}},
            "INVALID_CREDENTIAL",
        ),
        (
            {
                "sinkCredential": {
                    "credentialType": "ACCESSTOKEN",
                    "accessToken": "a",
                    "accessTokenExpiresUtc": "2099-01-01T00:00:00Z",
                    "accessTokenType": "mac",
                }
            },
            "INVALID_TOKEN",
        ),
        (
            {
                "config": {
                    "subscriptionDetail": {"phoneNumber": "+123456789"},
                    "subscriptionExpireTime": "2025-01-17T13:18:23.682Z",
                }
            },
            "OUT_OF_RANGE",
        ),
        ({"types": ["something"]}, "INVALID_ARGUMENT"),
    ],
)
def test_each_400_of_the_spec(world: World, changes: dict[str, Any], code: str) -> None:
    r = world.post(request("+123456789", **changes))
    refused(r, 400, code)
    assert response_errors("CreateSubscriptionBadRequest400", r.json()) == []


def test_a_body_that_is_not_a_json_object_is_an_invalid_argument(world: World) -> None:
    auth = {"Authorization": f"Bearer {world.token}"}
    for content in (b"[]", b"{", b"null"):
        r = world.h.client.post(
            BASE, content=content, headers={**auth, "content-type": "application/json"}
        )
        refused(r, 400, "INVALID_ARGUMENT")


def test_identifiers_per_the_spec(world: World) -> None:
    refused(world.post(request(None)), 422, "MISSING_IDENTIFIER")
    # Not a number this org serves (unknown, or another org's): the same answer.
    for number in ("+4912345678901", world.other.phone_number):
        r = world.post(request(number))
        refused(r, 422, "SERVICE_NOT_APPLICABLE")
        assert response_errors("CreateSubscriptionUnprocessableEntity422", r.json()) == []
        assert r.json() == world.post(request("+4912345678901")).json()


def test_authentication_and_scopes(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer ztsimat_nope"}, {"Authorization": "Basic x"}):
        r = world.h.client.get(BASE, headers=headers)
        refused(r, 401, "UNAUTHENTICATED")
        assert response_errors("Generic401", r.json()) == []
    r = world.post(request(world.line.phone_number), token=world.reader)
    refused(r, 403, "PERMISSION_DENIED")
    assert response_errors("SubscriptionPermissionDenied403", r.json()) == []
    refused(world.delete("/" + "0" * 32, token=world.reader), 403, "PERMISSION_DENIED")
    assert world.get(token=world.reader).status_code == 200


def test_x_correlator_is_checked_and_echoed_on_errors_too(world: World) -> None:
    auth = {"Authorization": f"Bearer {world.token}"}
    bad = world.h.client.get(BASE, headers={**auth, "x-correlator": "no spaces allowed"})
    refused(bad, 400, "INVALID_ARGUMENT")
    assert "x-correlator" not in bad.headers
    missing = world.h.client.get(BASE + "/" + "0" * 32, headers={**auth, "x-correlator": "c-1"})
    refused(missing, 404, "NOT_FOUND")
    assert missing.headers["x-correlator"] == "c-1"


def test_end_to_end_an_esim_reissue_reaches_the_subscribers_https_sink(
    world: World, sealer: Sealer, tmp_path: Path
) -> None:
    h = world.h
    org = h.new_org("carrier")
    c, auth = h.client, org.auth()
    spec, spare = make_sims(2, seed=7, start=200)
    imported = c.post(
        "/api/v1/stock-imports?filename=esim.csv&kind=esim",
        content=stock_csv([spec, spare]),
        headers={**auth, "content-type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text
    person = c.post("/api/v1/identities", json={"kind": "user", "name": "Ann"}, headers=auth)
    order = c.post("/api/v1/esim/orders", json={"identity_id": person.json()["id"]}, headers=auth)
    assert order.status_code == 201, order.text
    LEAKS.add_secret(order.json()["matching_id"])
    with h.engine.begin() as conn:
        msisdn = conn.execute(
            select(schema.sims.c.msisdn).where(schema.sims.c.iccid == order.json()["iccid"])
        ).scalar_one()
    number = f"+{msisdn}"
    _, token = client_token(h.engine, org.id, ALL)
    sink_credential = sink_token()
    with https_sink(tmp_path) as sink:
        created = world.post(
            request(
                number,
                sink=sink.url,
                sinkCredential={
                    "credentialType": "ACCESSTOKEN",
                    "accessToken": sink_credential,
                    "accessTokenExpiresUtc": "2099-01-01T00:00:00Z",
                    "accessTokenType": "bearer",
                },
            ),
            token=token,
        )
        assert created.status_code == 201, created.text
        reissued = c.post(
            f"/api/v1/esim/orders/{order.json()['id']}/reissue",
            json={"reason": "phone lost"},
            headers=auth,
        )
        assert reissued.status_code == 201, reissued.text
        LEAKS.add_secret(reissued.json()["matching_id"])
        notifier = Notifier(h.engine, sealer, sink.client(), clock=h.clock)
        done = notifier.run_once(h.clock())
        assert (done.queued, done.attempts) == (1, 1)
        (got,) = sink.received
    assert got.headers["authorization"] == f"Bearer {sink_credential}"
    assert errors("EventSimSwap", got.body) == []
    assert got.body["type"] == SWAPPED
    assert got.body["data"] == {"subscriptionId": created.json()["id"], "phoneNumber": number}
    events = c.get("/api/v1/events?kind=camara.delivery", headers=auth)
    assert events.status_code == 200, events.text
    assert [e["payload"]["result"] for e in events.json()["items"]] == ["delivered"]
    assert sink_credential not in events.text
