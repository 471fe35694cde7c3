"""Sites and networks through the REST API: defaults, updates, deletes (a site with
networks only with `force`), problems for what is invalid, cross-org claims answered
409 "already claimed" with nothing of the other org in the answer, and Geneve sites with
Ethernet inside (the site's MAC given, ztsim's shown and never taken)."""

from __future__ import annotations

from typing import Any

from ztsim.feed.change import Topic
from ztsim.identity.roles import Role
from ztsim.net.sites import gateway_mac_of
from ztsim.net.store.claims import CLAIMED, VNI_CLAIMED

from support.api import ApiHarness, OrgHandle
from support.traces import Mark

V1 = "/api/v1"


def _ok(api: ApiHarness, method: str, path: str, org: OrgHandle, body: object = None) -> Any:
    r = api.client.request(method, V1 + path, json=body, headers=org.auth())
    assert r.status_code in (200, 201, 204), r.text
    return r.json() if r.content else None


def _site(api: ApiHarness, org: OrgHandle, **body: object) -> dict[str, Any]:
    fields: dict[str, object] = {"name": "hq", "endpoint": "192.0.2.10", "vni": 100}
    fields.update(body)
    created: dict[str, Any] = _ok(api, "POST", "/sites", org, fields)
    return created


def test_a_site_and_its_networks_from_creation_to_deletion(api: ApiHarness) -> None:
    org = api.new_org("acme")
    site = _site(api, org)
    assert {k: site[k] for k in ("name", "tunnel", "endpoint", "port", "vni")} == {
        "name": "hq",
        "tunnel": "geneve",
        "endpoint": "192.0.2.10",
        "port": 6081,
        "vni": 100,
    }
    assert site["created_at"] == site["updated_at"]
    vxlan = _site(api, org, name="branch", tunnel="vxlan", endpoint="2001:db8::9", vni=101)
    assert (vxlan["port"], vxlan["endpoint"]) == (4789, "2001:db8::9")
    reader = org.auth(Role.ANALYST)
    listed = api.client.get(f"{V1}/sites", headers=reader).json()
    assert [s["name"] for s in listed] == ["branch", "hq"]
    assert api.client.get(f"{V1}/sites/{site['id']}", headers=reader).json() == site

    lan = _ok(
        api, "POST", f"/sites/{site['id']}/networks", org, {"name": "lan", "cidr": "10.1.0.0/16"}
    )
    assert (lan["site_id"], lan["cidr"]) == (site["id"], "10.1.0.0/16")
    assert api.client.get(f"{V1}/networks/{lan['id']}", headers=reader).json() == lan
    nets = api.client.get(f"{V1}/sites/{site['id']}/networks", headers=reader).json()
    assert nets == [lan]
    assert api.client.get(f"{V1}/sites/{vxlan['id']}/networks", headers=reader).json() == []

    patched = _ok(api, "PATCH", f"/sites/{site['id']}", org, {"tunnel": "vxlan", "vni": 102})
    assert (patched["name"], patched["tunnel"], patched["port"], patched["vni"]) == (
        "hq",
        "vxlan",
        4789,
        102,
    )

    r = api.client.delete(f"{V1}/sites/{site['id']}", headers=org.auth())
    assert r.status_code == 409
    assert "has 1 network(s)" in r.json()["detail"]
    _ok(api, "DELETE", f"/sites/{site['id']}?force=true", org)
    assert api.client.get(f"{V1}/networks/{lan['id']}", headers=reader).status_code == 404
    assert api.client.get(f"{V1}/sites/{site['id']}", headers=reader).status_code == 404
    _ok(api, "DELETE", f"/sites/{vxlan['id']}", org)
    assert api.client.get(f"{V1}/sites", headers=reader).json() == []


def test_each_change_publishes_the_orgs_net_topic(api: ApiHarness) -> None:
    org = api.new_org("acme")
    mark = Mark(api.engine)
    site = _site(api, org)
    lan = _ok(
        api, "POST", f"/sites/{site['id']}/networks", org, {"name": "lan", "cidr": "10.1.0.0/16"}
    )
    _ok(api, "DELETE", f"/networks/{lan['id']}", org)
    left = mark.left()
    assert left.topics == [(Topic.NET, org.id)] * 3
    assert left.kinds == ["net.site_created", "net.network_added", "net.network_deleted"]


def test_invalid_requests_are_problems_that_say_why(api: ApiHarness) -> None:
    org = api.new_org("acme")
    site = _site(api, org)
    cases: list[tuple[str, str, dict[str, object], int, str]] = [
        ("POST", "/sites", {"name": "x", "endpoint": "192.0.2.1", "vni": 0}, 422, "vni"),
        ("POST", "/sites", {"name": "x", "endpoint": "192.0.2.1", "vni": 2**24}, 422, "vni"),
        ("POST", "/sites", {"name": "x", "endpoint": "224.0.0.1", "vni": 5}, 422, "multicast"),
        (
            "POST",
            "/sites",
            {"name": "x", "endpoint": "192.0.2.1", "vni": 5, "tunnel": "gre"},
            422,
            "tunnel",
        ),
        (
            "POST",
            "/sites",
            {"name": "x", "endpoint": "192.0.2.1", "vni": 5, "mtu": 1400},
            422,
            "mtu",
        ),
        ("POST", "/sites", {"name": "hq", "endpoint": "192.0.2.1", "vni": 5}, 409, "named 'hq'"),
        ("PATCH", f"/sites/{site['id']}", {"endpoint": "0.0.0.0"}, 422, "unspecified"),  # noqa: S104
        (
            "POST",
            f"/sites/{site['id']}/networks",
            {"name": "n", "cidr": "10.1.2.3/16"},
            422,
            "did you mean 10.1.0.0/16",
        ),
        (
            "POST",
            f"/sites/{site['id']}/networks",
            {"name": "n", "cidr": "127.0.0.0/8"},
            422,
            "loopback",
        ),
    ]
    for method, path, body, status, why in cases:
        r = api.client.request(method, V1 + path, json=body, headers=org.auth())
        assert r.status_code == status, (path, body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert why in r.text, (path, body, r.text)
    assert len(api.client.get(f"{V1}/sites", headers=org.auth()).json()) == 1


def test_readers_read_and_only_admins_write(api: ApiHarness) -> None:
    org = api.new_org("acme")
    site = _site(api, org)
    for role in (Role.OPERATOR, Role.ANALYST, Role.AUDITOR):
        assert api.client.get(f"{V1}/sites", headers=org.auth(role)).status_code == 200
        r = api.client.patch(f"{V1}/sites/{site['id']}", json={"name": "x"}, headers=org.auth(role))
        assert r.status_code == 403
    for role in (Role.NETWORK, Role.SMDP, Role.POSTURE):
        assert api.client.get(f"{V1}/sites", headers=org.auth(role)).status_code == 403


def test_another_orgs_claims_are_refused_without_a_word_about_it(api: ApiHarness) -> None:
    mine, theirs = api.new_org("mine"), api.new_org("theirs")
    their_site = _site(api, theirs, name="secret-dc", vni=4242)
    their_lan = _ok(
        api,
        "POST",
        f"/sites/{their_site['id']}/networks",
        theirs,
        {"name": "payroll", "cidr": "10.20.0.0/16"},
    )
    hq = _site(api, mine, vni=1)
    answers = [
        (
            api.client.post(
                f"{V1}/sites",
                json={"name": "x", "endpoint": "192.0.2.1", "vni": 4242},
                headers=mine.auth(),
            ),
            VNI_CLAIMED,
        ),
        (
            api.client.patch(f"{V1}/sites/{hq['id']}", json={"vni": 4242}, headers=mine.auth()),
            VNI_CLAIMED,
        ),
        (
            api.client.post(
                f"{V1}/sites/{hq['id']}/networks",
                json={"name": "lan", "cidr": "10.20.4.0/22"},
                headers=mine.auth(),
            ),
            CLAIMED,
        ),
    ]
    for r, detail in answers:
        assert r.status_code == 409, r.text
        assert r.json()["detail"] == detail
        for secret in (
            theirs.id,
            "theirs",
            "secret-dc",
            "payroll",
            their_site["id"],
            their_lan["id"],
            "10.20.0.0",
        ):
            assert secret not in r.text
    # Their objects through my token: not found, whatever the route.
    for path in (
        f"/sites/{their_site['id']}",
        f"/sites/{their_site['id']}/networks",
        f"/networks/{their_lan['id']}",
    ):
        assert api.client.get(V1 + path, headers=mine.auth()).status_code == 404
    r = api.client.post(
        f"{V1}/sites/{their_site['id']}/networks",
        json={"name": "x", "cidr": "10.30.0.0/16"},
        headers=mine.auth(),
    )
    assert r.status_code == 404
    assert api.client.get(
        f"{V1}/sites/{their_site['id']}/networks", headers=theirs.auth()
    ).json() == [their_lan]


def test_a_geneve_site_with_ethernet_inside_shows_ztsims_mac(api: ApiHarness) -> None:
    org = api.new_org("acme")
    plain = _site(api, org)
    assert (plain["inner"], plain["site_mac"], plain["gateway_mac"]) == ("ip", None, None)
    ovs = _site(api, org, name="ovs", vni=101, inner="ethernet", site_mac="AA:BB:CC:00:00:01")
    assert (ovs["inner"], ovs["site_mac"]) == ("ethernet", "aa:bb:cc:00:00:01")
    assert ovs["gateway_mac"] == gateway_mac_of(ovs["id"])
    reader = org.auth(Role.ANALYST)
    assert api.client.get(f"{V1}/sites/{ovs['id']}", headers=reader).json() == ovs
    # Renamed and moved, the site keeps ztsim's MAC: the site's neighbour entry stays right.
    moved = _ok(api, "PATCH", f"/sites/{ovs['id']}", org, {"vni": 102, "endpoint": "192.0.2.99"})
    assert moved["gateway_mac"] == ovs["gateway_mac"]
    changed = _ok(api, "PATCH", f"/sites/{ovs['id']}", org, {"site_mac": "aa:bb:cc:00:00:02"})
    assert changed["site_mac"] == "aa:bb:cc:00:00:02"
    bare = _ok(api, "PATCH", f"/sites/{ovs['id']}", org, {"inner": "ip"})
    assert (bare["inner"], bare["site_mac"], bare["gateway_mac"]) == ("ip", None, None)


def test_ethernet_inside_that_cannot_be_is_a_problem_that_says_why(api: ApiHarness) -> None:
    org = api.new_org("acme")
    site = _site(api, org)
    base = {"name": "x", "endpoint": "192.0.2.1", "vni": 5}
    mac = "aa:bb:cc:00:00:01"
    cases: list[tuple[str, str, dict[str, object], str]] = [
        ("POST", "/sites", {**base, "inner": "ethernet"}, "site_mac is required"),
        ("POST", "/sites", {**base, "site_mac": mac}, "site_mac is only for inner ethernet"),
        (
            "POST",
            "/sites",
            {**base, "tunnel": "vxlan", "inner": "ethernet", "site_mac": mac},
            "inner ethernet is for geneve sites",
        ),
        ("POST", "/sites", {**base, "inner": "ethernet", "site_mac": "aa:bb"}, "a MAC address"),
        (
            "POST",
            "/sites",
            {**base, "inner": "ethernet", "site_mac": "ff:ff:ff:ff:ff:ff"},
            "unicast",
        ),
        ("POST", "/sites", {**base, "inner": "mpls"}, "inner"),
        ("POST", "/sites", {**base, "inner": "ethernet", "site_mac": "x" * 33}, "site_mac"),
        # ztsim's MAC is derived, not given.
        ("POST", "/sites", {**base, "gateway_mac": "02:00:00:00:00:01"}, "gateway_mac"),
        ("PATCH", f"/sites/{site['id']}", {"inner": "ethernet"}, "site_mac is required"),
        ("PATCH", f"/sites/{site['id']}", {"site_mac": mac}, "only for inner ethernet"),
        ("PATCH", f"/sites/{site['id']}", {"gateway_mac": mac}, "gateway_mac"),
    ]
    for method, path, body, why in cases:
        r = api.client.request(method, V1 + path, json=body, headers=org.auth())
        assert r.status_code == 422, (path, body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert why in r.text, (path, body, r.text)
    assert api.client.get(f"{V1}/sites", headers=org.auth()).json() == [site]
