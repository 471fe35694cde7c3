"""Two orgs with one object of each kind, for API tests in every folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from ztsim.identity.roles import Role
from ztsim.sealing import Sealer

from support.api import ApiHarness, OrgHandle, harness
from support.factories import make_sims, stock_csv
from support.leaks import LEAKS


@dataclass
class World:
    """Org-scoped objects, one of each kind, addressable by the API's path parameter names."""

    org: OrgHandle
    ids: dict[str, str]


def populate(h: ApiHarness, slug: str, seed: int) -> World:
    org = h.new_org(slug)
    c, auth = h.client, org.auth()

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        r = c.post(path, json=body, headers=auth)
        assert r.status_code == 201, r.text
        data: dict[str, object] = r.json()
        return data

    user = post(
        "/api/v1/identities", {"kind": "user", "name": f"User {slug}", "email": f"u@{slug}.test"}
    )
    service = post("/api/v1/identities", {"kind": "service", "name": f"Meter {slug}"})
    group = post("/api/v1/groups", {"name": "staff"})
    fleet = post("/api/v1/fleets", {"name": "meters"})
    c.put(f"/api/v1/groups/{group['id']}/members/{user['id']}", headers=auth)
    c.put(f"/api/v1/fleets/{fleet['id']}/members/{service['id']}", headers=auth)
    victim = post("/api/v1/tokens", {"name": "victim", "role": "analyst"})
    api_client = post("/api/v1/api-clients", {"name": "idp", "scopes": ["sim-swap:check"]})
    specs = make_sims(3, seed=seed)
    r = c.post(
        "/api/v1/stock-imports?filename=batch.csv",
        content=stock_csv(specs),
        headers={**auth, "content-type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    iccid = specs[0].iccid
    assert (
        c.post(
            f"/api/v1/sims/{iccid}/assign", json={"identity_id": user["id"]}, headers=auth
        ).status_code
        == 200
    )
    assert c.post(f"/api/v1/sims/{iccid}/activate", json={}, headers=auth).status_code == 200
    imei = {1: "490154203237518", 2: "352099001761481"}[seed]
    device = post("/api/v1/devices", {"imei": imei, "owner_id": user["id"], "name": "phone"})
    esim_stock = c.post(
        "/api/v1/stock-imports?filename=esim.csv&kind=esim",
        content=stock_csv(make_sims(2, seed=seed, start=100)),
        headers={**auth, "content-type": "text/csv"},
    )
    assert esim_stock.status_code == 201, esim_stock.text
    # A second employee holds the eSIM order, so `user`'s own view stays one SIM.
    employee = post("/api/v1/identities", {"kind": "user", "name": f"Employee {slug}"})
    order = post("/api/v1/esim/orders", {"identity_id": employee["id"]})
    gateway_secret = f"gateway-secret-{slug}-0123456789"
    LEAKS.add_secret(gateway_secret)
    gateway = post(
        "/api/v1/gateways",
        {"name": "pgw", "address": f"192.0.2.{seed}", "secret": gateway_secret, "apns": ["corp"]},
    )
    dns_list = post("/api/v1/dns/lists", {"name": "ads", "content": "ads.test\n"})
    dns_rule = post(
        "/api/v1/dns/rules", {"name": "no-social", "action": "block", "domains": [".social.test"]}
    )
    dns_token = post("/api/v1/dns/device-tokens", {"device_id": device["id"]})
    check = post("/api/v1/policy/checks", {"name": "managed", "expression": "device.managed"})
    network_rule = post(
        "/api/v1/policy/rules",
        {"plane": "network", "name": "fin", "action": "allow", "cidrs": ["10.1.0.0/16"]},
    )
    # A site with one network behind it (issue 20); VNIs and prefixes differ per org.
    site = post(
        "/api/v1/sites", {"name": "hq", "endpoint": f"203.0.113.{seed}", "vni": 5000 + seed}
    )
    net = post(
        f"/api/v1/sites/{site['id']}/networks", {"name": "lan", "cidr": f"10.{100 + seed}.0.0/16"}
    )
    # A SIM replacement waiting for a second admin (issue 19): asked by the operator, so an
    # admin may decide it; the org's approval setting is off again once it is made.
    risk = "/api/v1/risk/settings"
    assert c.put(risk, json={"approval_required": True}, headers=auth).status_code == 200
    swap = c.post(
        f"/api/v1/sims/{iccid}/replace",
        json={"new_iccid": specs[2].iccid, "reason": "broken card"},
        headers=org.auth(Role.OPERATOR),
    )
    assert swap.status_code == 202, swap.text
    assert c.put(risk, json={"approval_required": False}, headers=auth).status_code == 200
    h.add_self_token(org, str(user["id"]))
    return World(
        org,
        {
            "identity_id": str(user["id"]),
            "service_id": str(service["id"]),
            "group_id": str(group["id"]),
            "fleet_id": str(fleet["id"]),
            "token_id": str(victim["id"]),
            "iccid": iccid,
            "supiOrSuci": f"imsi-{specs[0].imsi}",
            "spare_iccid": specs[1].iccid,
            "device_id": str(device["id"]),
            "import_id": str(r.json()["id"]),
            "order_id": str(order["id"]),
            "esim_iccid": str(order["iccid"]),
            "gateway_id": str(gateway["id"]),
            "rule_id": str(dns_rule["id"]),
            "list_id": str(dns_list["id"]),
            "dns_token_id": str(dns_token["id"]),
            "check_id": str(check["id"]),
            "policy_rule_id": str(network_rule["id"]),
            "request_id": str(swap.json()["id"]),
            "msisdn": "+" + str(specs[0].msisdn),
            "api_client_id": str(api_client["id"]),
            "site_id": str(site["id"]),
            "network_id": str(net["id"]),
        },
    )


@pytest.fixture
def api(sqlite_engine: Engine, sealer: Sealer) -> Iterator[ApiHarness]:
    with harness(sqlite_engine, sealer) as h:
        yield h


@pytest.fixture
def two_orgs(api: ApiHarness) -> tuple[World, World]:
    return populate(api, "alpha", 1), populate(api, "bravo", 2)


ALL_ROLES = tuple(Role)
