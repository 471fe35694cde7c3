"""Who may sign in to the pages: people's roles, not machines'; and no cookie, no viewer."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ztsim.identity.roles import Role
from ztsim.web.viewer import PERSON_ROLES, authenticate

from support.api import ApiHarness


def test_people_sign_in_machines_do_not(api: ApiHarness) -> None:
    org = api.new_org("viewers")
    for role, token in org.tokens.items():
        principal = authenticate(api.ctx, token)
        assert (principal is not None) is (role in PERSON_ROLES), role
    assert authenticate(api.ctx, "not-a-token") is None
    assert Role.SELF in PERSON_ROLES


def test_a_forged_cookie_is_no_session(api: ApiHarness) -> None:
    with TestClient(api.app, cookies={"ztsim_session": "forged"}) as client:
        r = client.get("/overview", follow_redirects=False)
    assert r.headers["location"] == "/login"
