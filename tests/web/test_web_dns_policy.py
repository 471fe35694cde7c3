"""The DNS policy page's content: the org's rules in order with names for ids, its lists,
its settings in words, and the test of a name giving explain's very answer."""

from __future__ import annotations

import pytest

from ztsim.errors import InvalidInput
from ztsim.identity.roles import Role
from ztsim.web import dns_policy

from support.api import ApiHarness
from support.world import World


def _post(api: ApiHarness, world: World, path: str, body: dict[str, object]) -> None:
    r = api.client.post(path, json=body, headers=world.org.auth())
    assert r.status_code == 201, r.text


def _explain(api: ApiHarness, world: World, name: str) -> list[dict[str, object]]:
    r = api.client.get(
        "/api/v1/policy/explain",
        params={"plane": "dns", "target": name, "subject": world.ids["identity_id"]},
        headers=world.org.auth(Role.ANALYST),
    )
    assert r.status_code == 200, r.text
    found: list[dict[str, object]] = r.json()["explanations"]
    return found


def test_rules_lists_and_settings_of_the_org_in_order(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    _post(
        api,
        alpha,
        "/api/v1/dns/rules",
        {
            "name": "staff-ads",
            "action": "block",
            "lists": ["ads"],
            "groups": [alpha.ids["group_id"]],
            "identities": [alpha.ids["identity_id"]],
            "posture": ["managed"],
        },
    )
    _post(api, bravo, "/api/v1/dns/rules", {"name": "bravo-only", "action": "block"})
    with api.engine.connect() as conn:
        policy = dns_policy.read(conn, alpha.org.id)
    assert [r.name for r in policy.rules] == ["no-social", "staff-ads"]  # appended last
    assert [r.position for r in policy.rules] == [0, 1]
    first = policy.rules[1]
    assert first.action == "block"
    assert first.matches == ["list ads"]
    assert first.applies_to == ["person User alpha", "group staff"]
    assert first.requires == ["posture managed"]
    assert policy.rules[0].matches == [".social.test"]
    assert policy.rules[0].applies_to == []
    assert [(x.name, x.source, x.good_lines) for x in policy.lists] == [("ads", "uploaded", 1)]
    settings = dict(policy.settings)
    assert settings["Query log"] == "only blocked queries are logged"
    assert settings["A blocked name is answered with"].startswith("the null address")


@pytest.mark.parametrize(("name", "action"), [("x.social.test", "block"), ("example.com", "allow")])
def test_a_name_tested_for_a_person_is_explains_answer(
    api: ApiHarness, two_orgs: tuple[World, World], name: str, action: str
) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        tested = dns_policy.try_name(conn, alpha.org.id, name, "u@alpha.test", api.clock())
    from_api = _explain(api, alpha, name)
    assert tested.person_name == "User alpha"
    # Compared whole: the decision, its reasons, the deciding rule and every rule's trace.
    assert tested.explanations == from_api
    assert [x["action"] for x in tested.explanations] == [action]


def test_a_bad_name_or_a_person_not_of_the_org_is_invalid_input(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    with api.engine.connect() as conn:
        with pytest.raises(InvalidInput, match="not a domain name"):
            dns_policy.try_name(conn, alpha.org.id, "bad name!", "u@alpha.test", api.clock())
        for someone in ("u@bravo.test", bravo.ids["identity_id"], "nobody@alpha.test"):
            with pytest.raises(InvalidInput, match="no person"):
                dns_policy.try_name(conn, alpha.org.id, "example.com", someone, api.clock())
