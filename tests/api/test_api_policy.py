"""The policy API: checks and rules (the dns plane's rules listed, written as DNS rules),
the whole policy as a document (export, dry run, apply), and explain for a subject of the
caller's org only, a `self` token about itself only."""

from __future__ import annotations

from typing import Any

import pytest

from ztsim.api import routes_policy
from ztsim.feed.change import Topic
from ztsim.identity.roles import Role

from support.api import ApiHarness
from support.traces import Mark
from support.world import World, populate

V1 = "/api/v1/policy"
NETWORK_RULE = {"plane": "network", "name": "fin", "action": "allow", "cidrs": ["10.1.0.0/16"]}


@pytest.fixture
def policy_api(api: ApiHarness) -> ApiHarness:
    # Until app.py registers the router, the test's app includes it.
    if not any(getattr(r, "path", "") == f"{V1}/checks" for r in api.app.routes):
        api.app.include_router(routes_policy.router, prefix="/api/v1")
    return api


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def _bare(api: ApiHarness, world: World) -> None:
    """The world's policy without its network rule and check: its DNS rule alone."""
    auth, ids = world.org.auth(), world.ids
    assert api.client.delete(f"{V1}/rules/{ids['policy_rule_id']}", headers=auth).status_code == 204
    assert api.client.delete(f"{V1}/checks/{ids['check_id']}", headers=auth).status_code == 204


def test_checks_and_rules_by_role(policy_api: ApiHarness) -> None:
    c = policy_api.client
    alpha, bravo = populate(policy_api, "alpha", 1), populate(policy_api, "bravo", 2)
    _bare(policy_api, alpha)
    auth = alpha.org.auth()
    mark = Mark(policy_api.engine)
    check = _ok(
        c.post(
            f"{V1}/checks", json={"name": "managed", "expression": "device.managed"}, headers=auth
        ),
        201,
    )
    assert (check["name"], check["max_age"]) == ("managed", "1d")
    assert set(mark.left().topics) == {(Topic.POLICY, alpha.org.id), (Topic.DNS, alpha.org.id)}
    for role in (Role.OPERATOR, Role.ANALYST, Role.AUDITOR):
        assert _ok(c.get(f"{V1}/checks", headers=alpha.org.auth(role))) == [check]
        assert c.post(f"{V1}/checks", json={}, headers=alpha.org.auth(role)).status_code == 403
    assert c.get(f"{V1}/checks", headers=alpha.org.auth(Role.SELF)).status_code == 403
    assert c.get(f"{V1}/checks/{check['id']}", headers=bravo.org.auth()).status_code == 404
    bad = {"name": "x", "expression": 'sim.kind == "esim"'}
    assert c.post(f"{V1}/checks", json=bad, headers=auth).status_code == 422

    rule = _ok(
        c.post(f"{V1}/rules", json={**NETWORK_RULE, "posture": ["managed"]}, headers=auth), 201
    )
    assert rule["spec"] == {"cidrs": ["10.1.0.0/16"], "posture": ["managed"]}
    listed = _ok(c.get(f"{V1}/rules", headers=auth))
    assert [(r["plane"], r["name"]) for r in listed] == [("dns", "no-social"), ("network", "fin")]
    assert [r["name"] for r in _ok(c.get(f"{V1}/rules?plane=dns", headers=auth))] == ["no-social"]
    assert _ok(c.get(f"{V1}/rules", headers=bravo.org.auth()))[0]["name"] == "no-social"
    dns_rule = {"plane": "dns", "name": "x", "action": "block", "domains": ["x.test"]}
    refused = c.post(f"{V1}/rules", json=dns_rule, headers=auth)
    assert refused.status_code == 409
    assert "/api/v1/dns/rules" in refused.json()["detail"]
    wrong_plane = {**NETWORK_RULE, "name": "y", "apns": ["corp"]}
    assert c.post(f"{V1}/rules", json=wrong_plane, headers=auth).status_code == 422
    gone = {**NETWORK_RULE, "name": "z", "posture": ["nothing"]}
    assert c.post(f"{V1}/rules", json=gone, headers=auth).status_code == 404

    in_use = c.delete(f"{V1}/checks/{check['id']}", headers=auth)
    assert in_use.status_code == 409
    assert "network/fin" in in_use.json()["detail"]
    replaced = _ok(c.put(f"{V1}/rules/{rule['id']}", json=NETWORK_RULE, headers=auth))
    assert replaced["spec"] == {"cidrs": ["10.1.0.0/16"]}
    assert c.delete(f"{V1}/rules/{rule['id']}", headers=bravo.org.auth()).status_code == 404
    assert c.delete(f"{V1}/rules/{rule['id']}", headers=auth).status_code == 204
    assert c.delete(f"{V1}/checks/{check['id']}", headers=auth).status_code == 204


def test_the_document_round_trips_and_a_dry_run_changes_nothing(policy_api: ApiHarness) -> None:
    c = policy_api.client
    alpha = populate(policy_api, "alpha", 1)
    _bare(policy_api, alpha)
    auth = alpha.org.auth()
    current = _ok(c.get(f"{V1}/document", headers=auth))
    assert current["rules"]["dns"] == [
        {"name": "no-social", "action": "block", "domains": [".social.test"]}
    ]
    mark = Mark(policy_api.engine)
    same = _ok(c.post(f"{V1}/document", json=current, headers=auth))
    assert not same["applied"]
    assert same["diff"]["changes"] == []
    assert mark.left().empty

    wanted = {
        **current,
        "rules": {
            "dns": [{"name": "ads", "action": "block", "lists": ["ads"]}],
            "attach": [{"name": "corp-only", "action": "deny", "apns": ["guest"]}],
        },
    }
    dry = _ok(c.post(f"{V1}/document?dry_run=true", json=wanted, headers=auth))
    assert not dry["applied"]
    assert {(x["change"], x["name"]) for x in dry["diff"]["changes"]} == {
        ("removed", "no-social"),
        ("added", "ads"),
        ("added", "corp-only"),
    }
    # Every subject of the org loses no-social and gains the two new rules.
    assert alpha.ids["identity_id"] in dry["diff"]["identities"]
    assert mark.left().empty
    done = _ok(c.post(f"{V1}/document", json=wanted, headers=auth))
    assert done["applied"]
    assert done["counts"] == {"checks": 0, "dns": 1, "network": 0, "attach": 1}
    assert set(mark.left().topics) == {(Topic.DNS, alpha.org.id), (Topic.POLICY, alpha.org.id)}
    assert mark.left().kinds == ["policy.applied"]
    assert _ok(c.get("/api/v1/dns/rules", headers=auth))[0]["name"] == "ads"

    missing_list = {
        **wanted,
        "rules": {"dns": [{"name": "x", "action": "block", "lists": ["nope"]}]},
    }
    r = c.post(f"{V1}/document", json=missing_list, headers=auth)
    assert r.status_code == 422  # a bad document, wherever it is wrong
    assert "nope" in r.json()["detail"]
    bad = {**wanted, "rules": {"network": [{"name": "x", "action": "allow", "ports": ["22"]}]}}
    assert c.post(f"{V1}/document", json=bad, headers=auth).status_code == 422
    assert (
        c.post(f"{V1}/document", json=wanted, headers=alpha.org.auth(Role.AUDITOR)).status_code
        == 403
    )


def _explain(api: ApiHarness, world: World, role: Role = Role.ADMIN, /, **query: str) -> Any:
    return api.client.get(f"{V1}/explain", params=query, headers=world.org.auth(role))


def test_explain_says_why_for_the_callers_org_only(policy_api: ApiHarness) -> None:
    alpha, bravo = populate(policy_api, "alpha", 1), populate(policy_api, "bravo", 2)
    me = alpha.ids["identity_id"]
    query = {"plane": "dns", "target": "www.social.test/AAAA"}
    out = _ok(_explain(policy_api, alpha, subject=me, **query))
    assert out["subject"] == me
    [one] = out["explanations"]
    assert (one["identity_id"], one["iccid"]) == (me, alpha.ids["iccid"])
    assert (one["action"], one["rule"], one["reasons"]) == (
        "block",
        "no-social",
        ["rule:no-social"],
    )
    assert one["rules"][0]["decided"]
    assert one["not_evaluated"] == []
    by_iccid = _ok(_explain(policy_api, alpha, subject=alpha.ids["iccid"], **query))
    assert by_iccid["explanations"] == out["explanations"]
    # A name in the org's list `ads` matches a rule naming that list.
    _ok(
        policy_api.client.post(
            "/api/v1/dns/rules",
            json={"name": "ads", "action": "block", "lists": ["ads"], "position": 0},
            headers=alpha.org.auth(),
        ),
        201,
    )
    listed = _ok(_explain(policy_api, alpha, subject=me, plane="dns", target="ads.test"))
    assert listed["explanations"][0]["rule"] == "ads"
    network = _ok(
        _explain(
            policy_api, alpha, Role.ANALYST, subject=me, plane="network", target="10.0.0.1:22/tcp"
        )
    )
    assert network["explanations"][0]["reasons"] == ["default:deny"]

    for subject in (bravo.ids["identity_id"], bravo.ids["iccid"], "nobody"):
        assert _explain(policy_api, alpha, subject=subject, **query).status_code == 404
    assert _explain(policy_api, alpha, **query).status_code == 422
    assert (
        _explain(policy_api, alpha, subject=me, plane="dns", target="not a name").status_code == 422
    )
    assert _explain(policy_api, alpha, subject=me, plane="nowhere", target="x").status_code == 422


def test_a_self_token_explains_itself_only(policy_api: ApiHarness) -> None:
    alpha = populate(policy_api, "alpha", 1)
    query = {"plane": "attach", "target": "corp"}
    own = _ok(_explain(policy_api, alpha, Role.SELF, **query))
    assert own["subject"] == alpha.ids["identity_id"]
    assert own["explanations"][0]["action"] == "allow"
    named = _ok(_explain(policy_api, alpha, Role.SELF, subject=alpha.ids["identity_id"], **query))
    assert named == own
    for other in (alpha.ids["service_id"], alpha.ids["iccid"]):
        assert _explain(policy_api, alpha, Role.SELF, subject=other, **query).status_code == 404
