"""`/dns` through the app: who may open it, only the org's own policy in it, and the
"test a name" box answering as the API's explain does, or 400 with a message."""

from __future__ import annotations

from html import unescape

import pytest
from fastapi.testclient import TestClient

from web.events_world import console_app, signed_in_client
from ztsim.identity.roles import Role

from support.api import ApiHarness
from support.world import World


def _explained(api: ApiHarness, world: World, name: str) -> dict[str, object]:
    r = api.client.get(
        "/api/v1/policy/explain",
        params={"plane": "dns", "target": name, "subject": world.ids["identity_id"]},
        headers=world.org.auth(Role.OPERATOR),
    )
    assert r.status_code == 200, r.text
    [one] = r.json()["explanations"]
    found: dict[str, object] = one
    return found


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.AUDITOR])
def test_the_policy_readers_see_their_orgs_policy(
    api: ApiHarness, two_orgs: tuple[World, World], role: Role
) -> None:
    alpha, bravo = two_orgs
    theirs = api.client.post(
        "/api/v1/dns/rules",
        json={"name": "bravo-secret-rule", "action": "block", "domains": ["b.test"]},
        headers=bravo.org.auth(),
    )
    assert theirs.status_code == 201
    r = signed_in_client(api, alpha, role).get("/dns")
    assert r.status_code == 200, r.text
    assert "no-social" in r.text
    assert ".social.test" in r.text
    assert "ads" in r.text
    assert "bravo-secret-rule" not in r.text
    assert 'id="name"' in r.text  # the test box
    assert 'aria-current="page"' in r.text


def test_a_self_sign_in_gets_403(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    client = signed_in_client(api, alpha, Role.SELF)
    for query in ("", "?name=example.com&person=u@alpha.test"):
        r = client.get("/dns" + query)
        assert r.status_code == 403
        assert "no-social" not in r.text


def test_a_stranger_is_sent_to_sign_in(api: ApiHarness) -> None:
    r = TestClient(console_app(api)).get("/dns", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


@pytest.mark.parametrize("name", ["x.social.test", "example.com"])
def test_the_box_gives_explains_decision(
    api: ApiHarness, two_orgs: tuple[World, World], name: str
) -> None:
    alpha, _ = two_orgs
    client = signed_in_client(api, alpha, Role.OPERATOR)
    r = client.get("/dns", params={"name": name, "person": "u@alpha.test"})
    assert r.status_code == 200, r.text
    want = _explained(api, alpha, name)
    verdict = f"{want['action']}, by rule {want['rule']}" if want["rule"] else want["action"]
    html = unescape(r.text)
    assert f'id="verdict-1">{verdict}' in html
    assert str(want["summary"]) in html
    reasons = want["reasons"]
    assert isinstance(reasons, list)
    assert f"Reason codes: {', '.join(reasons) if reasons else 'none'}." in html
    assert {"x.social.test": "block", "example.com": "allow"}[name] == want["action"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "not a name!", "person": "u@alpha.test"}, "is not a domain name"),
        ({"name": "example.com/NOPE", "person": "u@alpha.test"}, "query type"),
        ({"name": "example.com", "person": "nobody@alpha.test"}, "no person"),
        ({"name": "example.com", "person": "u@bravo.test"}, "no person"),
        ({"name": "example.com"}, "Give both"),
    ],
)
def test_a_bad_name_or_unknown_person_is_a_400_in_the_page(
    api: ApiHarness, two_orgs: tuple[World, World], params: dict[str, str], message: str
) -> None:
    alpha, _ = two_orgs
    r = signed_in_client(api, alpha, Role.ADMIN).get("/dns", params=params)
    assert r.status_code == 400
    assert message in unescape(r.text)
    assert "no-social" in r.text  # the policy is still shown
    assert "User bravo" not in r.text
