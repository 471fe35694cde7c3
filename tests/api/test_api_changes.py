"""Every mutating route of the API, called once on a fresh world: a change of plane state
leaves an outbox row of the topic and key written here by hand (independently of the
code, as routes_table is), in the caller's org; any other change leaves none. A route
this table does not know fails the walk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ztsim.feed.change import Topic
from ztsim.identity.roles import Role

from api.conftest import populate
from api.routes_table import ROUTES, fill
from support.api import ApiHarness
from support.traces import Mark

Ids = dict[str, str]
Key = Callable[[Ids, Any], str]  # (the world's ids, the response's JSON) -> the change's key


def _org(ids: Ids, _out: Any) -> str:
    return ids["org_id"]


def _id(name: str) -> Key:
    return lambda ids, _out: ids[name]


def _out(name: str) -> Key:
    return lambda _ids, out: str(out[name])


@dataclass(frozen=True)
class Expect:
    topic: Topic | None  # None: the route changes no plane state and publishes nothing
    key: Key | None = None
    # Path and body parameters that take another of the world's objects ({"iccid": "spare_iccid"}).
    use: dict[str, str] = field(default_factory=dict)
    body: object = None  # instead of routes_table's body
    before: tuple[tuple[str, str, object], ...] = ()  # requests that set the stage


SIM, IDENTITY, NETWORK, DNS = Topic.SIM, Topic.IDENTITY, Topic.NETWORK, Topic.DNS
POLICY = Topic.POLICY
V1 = "/api/v1"
MEMBER = "/members/{identity_id}"

EXPECTED: dict[tuple[str, str], Expect] = {
    ("PATCH", f"{V1}/org"): Expect(NETWORK, _org),
    ("POST", f"{V1}/identities"): Expect(None),
    ("PATCH", f"{V1}/identities/{{identity_id}}"): Expect(
        IDENTITY, _id("identity_id"), body={"enabled": False}
    ),
    ("POST", f"{V1}/groups"): Expect(None),
    ("PUT", f"{V1}/groups/{{group_id}}{MEMBER}"): Expect(IDENTITY, _id("identity_id")),
    ("DELETE", f"{V1}/groups/{{group_id}}{MEMBER}"): Expect(IDENTITY, _id("identity_id")),
    ("POST", f"{V1}/fleets"): Expect(None),
    ("PUT", f"{V1}/fleets/{{fleet_id}}{MEMBER}"): Expect(
        IDENTITY, _id("service_id"), use={"identity_id": "service_id"}
    ),
    ("DELETE", f"{V1}/fleets/{{fleet_id}}{MEMBER}"): Expect(
        IDENTITY, _id("service_id"), use={"identity_id": "service_id"}
    ),
    ("POST", f"{V1}/tokens"): Expect(None),
    ("DELETE", f"{V1}/tokens/{{token_id}}"): Expect(None),
    ("POST", f"{V1}/sims/{{iccid}}/assign"): Expect(
        SIM, _id("spare_iccid"), use={"iccid": "spare_iccid"}
    ),
    ("POST", f"{V1}/sims/{{iccid}}/activate"): Expect(
        SIM, _id("esim_iccid"), use={"iccid": "esim_iccid"}
    ),
    ("POST", f"{V1}/sims/{{iccid}}/suspend"): Expect(SIM, _id("iccid")),
    ("POST", f"{V1}/sims/{{iccid}}/resume"): Expect(
        SIM,
        _id("iccid"),
        before=(("POST", f"{V1}/sims/{{iccid}}/suspend", {"reason": "stage"}),),
    ),
    ("POST", f"{V1}/sims/{{iccid}}/retire"): Expect(SIM, _id("iccid")),
    ("PUT", f"{V1}/sims/{{iccid}}/binding"): Expect(SIM, _id("iccid")),
    ("POST", f"{V1}/devices"): Expect(None),
    ("PATCH", f"{V1}/devices/{{device_id}}"): Expect(None),  # its name and serial number
    ("POST", f"{V1}/posture"): Expect(Topic.POSTURE, _id("device_id")),
    ("DELETE", f"{V1}/devices/{{device_id}}/posture"): Expect(
        Topic.POSTURE,
        _id("device_id"),
        before=(("POST", f"{V1}/posture", {"device": {"imei": "490154203237518"}}),),
    ),
    ("POST", f"{V1}/stock-imports"): Expect(None),
    ("POST", f"{V1}/esim/orders"): Expect(SIM, _out("iccid")),
    ("POST", f"{V1}/esim/orders/{{order_id}}/cancel"): Expect(SIM, _id("esim_iccid")),
    ("POST", f"{V1}/esim/orders/{{order_id}}/reissue"): Expect(SIM, _id("esim_iccid")),
    ("POST", f"{V1}/esim/progress"): Expect(
        SIM,
        _id("esim_iccid"),
        body={"iccid": "{esim_iccid}", "notification_point_id": 101, "status": "Executed-Success"},
    ),
    ("POST", f"{V1}/gateways"): Expect(NETWORK, _org),
    ("DELETE", f"{V1}/gateways/{{gateway_id}}"): Expect(NETWORK, _org),
    ("POST", f"{V1}/ip-pools"): Expect(NETWORK, _org),
    ("PUT", f"{V1}/dns/settings"): Expect(DNS, _org),
    ("POST", f"{V1}/dns/rules"): Expect(DNS, _org),
    ("PUT", f"{V1}/dns/rules/{{rule_id}}"): Expect(DNS, _org),
    ("DELETE", f"{V1}/dns/rules/{{rule_id}}"): Expect(DNS, _org),
    ("POST", f"{V1}/dns/lists"): Expect(DNS, _org),
    ("PUT", f"{V1}/dns/lists/{{list_id}}"): Expect(DNS, _org),
    ("DELETE", f"{V1}/dns/lists/{{list_id}}"): Expect(DNS, _org),
    ("POST", f"{V1}/dns/device-tokens"): Expect(Topic.DEVICE_TOKEN, _out("id")),
    ("DELETE", f"{V1}/dns/device-tokens/{{dns_token_id}}"): Expect(
        Topic.DEVICE_TOKEN, _id("dns_token_id")
    ),
    # Checks and policy files change what DNS decides too: they publish DNS as well.
    ("POST", f"{V1}/policy/checks"): Expect(POLICY, _org),
    ("PUT", f"{V1}/policy/checks/{{check_id}}"): Expect(POLICY, _org),
    ("DELETE", f"{V1}/policy/checks/{{check_id}}"): Expect(POLICY, _org),
    ("POST", f"{V1}/policy/rules"): Expect(POLICY, _org),
    ("PUT", f"{V1}/policy/rules/{{policy_rule_id}}"): Expect(POLICY, _org),
    ("DELETE", f"{V1}/policy/rules/{{policy_rule_id}}"): Expect(POLICY, _org),
    ("POST", f"{V1}/policy/document"): Expect(POLICY, _org),
    # The world's swap request replaces SIM `iccid`: approving it retires that SIM.
    ("PUT", f"{V1}/risk/settings"): Expect(None),
    ("DELETE", f"{V1}/sims/{{iccid}}/clone-suspicion"): Expect(None),
    ("POST", f"{V1}/swap-requests/{{request_id}}/approve"): Expect(SIM, _id("iccid")),
    ("POST", f"{V1}/swap-requests/{{request_id}}/reject"): Expect(None),
    ("POST", f"{V1}/sims/{{iccid}}/replace"): Expect(SIM, _id("iccid")),
    # API clients are CAMARA consumers' credentials: no plane holds them.
    ("POST", f"{V1}/api-clients"): Expect(None),
    ("DELETE", f"{V1}/api-clients/{{api_client_id}}"): Expect(None),
    # Sites and networks: the net role re-reads the org's tunnels and routes.
    ("POST", f"{V1}/sites"): Expect(Topic.NET, _org),
    ("PATCH", f"{V1}/sites/{{site_id}}"): Expect(Topic.NET, _org),
    ("DELETE", f"{V1}/sites/{{site_id}}"): Expect(
        Topic.NET, _org, before=(("DELETE", f"{V1}/networks/{{network_id}}", None),)
    ),
    ("POST", f"{V1}/sites/{{site_id}}/networks"): Expect(Topic.NET, _org),
    ("DELETE", f"{V1}/networks/{{network_id}}"): Expect(Topic.NET, _org),
    ("POST", "/nudm-ueau/v1/{supiOrSuci}/security-information/generate-auth-data"): Expect(None),
}


def test_the_table_knows_every_mutating_route() -> None:
    assert set(EXPECTED) == {route for route in ROUTES if route[0] != "GET"}


def _body(template: object, ids: Ids) -> object:
    if isinstance(template, dict):
        return {k: fill(v, ids) if isinstance(v, str) else v for k, v in template.items()}
    return template


@pytest.mark.parametrize(("method", "template"), sorted(EXPECTED))
def test_a_mutation_publishes_what_it_changed(api: ApiHarness, method: str, template: str) -> None:
    world = populate(api, "alpha", 1)
    expect, spec = EXPECTED[(method, template)], ROUTES[(method, template)]
    ids = {**world.ids, "org_id": world.org.id}
    ids |= {name: ids[other] for name, other in expect.use.items()}
    role = Role.ADMIN if Role.ADMIN in spec.roles else min(spec.roles)
    for stage_method, stage_path, stage_body in expect.before:
        staged = api.client.request(
            stage_method, fill(stage_path, ids), json=stage_body, headers=world.org.auth()
        )
        assert staged.status_code < 300, staged.text
    headers = world.org.auth(role)
    content: str | None = None
    json: object = None
    if spec.csv:
        assert spec.body is not None
        content = str(spec.body(ids))
        headers = {**headers, "content-type": "text/csv"}
    elif expect.body is not None:
        json = _body(expect.body, ids)
    elif spec.body is not None:
        json = spec.body(ids)
    mark = Mark(api.engine)
    r = api.client.request(method, fill(template, ids), headers=headers, content=content, json=json)
    assert r.status_code in (200, 201, 204), r.text
    changes = mark.left().changes
    if expect.topic is None:
        assert changes == []
        return
    assert expect.key is not None
    out = r.json() if r.content else None
    assert (expect.topic, expect.key(ids, out)) in {(c.topic, c.key) for c in changes}
    assert {c.org_id for c in changes} == {world.org.id}
