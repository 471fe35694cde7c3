"""Who may open a page: no session goes to the sign-in page; an employee's own sign-in
never opens an admin page, whatever the permission; a role without it gets 403."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from web.signin import sign_in
from ztsim.identity.roles import Permission, Role
from ztsim.web.access import LOGIN_PATH, refused, to
from ztsim.web.viewer import Viewer, authenticate

from support.api import ApiHarness
from support.world import World

ADMIN_PAGES = ["/overview", "/sims", "/people", "/onboarding", "/dns", "/events", "/gateways"]


def _viewer(api: ApiHarness, token: str) -> Viewer:
    principal = authenticate(api.ctx, token)
    assert principal is not None
    return Viewer(principal, "csrf")


def test_see_other_is_followed_with_get() -> None:
    r = to("/somewhere")
    assert (r.status_code, r.headers["location"]) == (303, "/somewhere")


def test_refused_by_role_and_always_for_an_employee(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    org = two_orgs[0].org
    admin = _viewer(api, org.tokens[Role.ADMIN])
    analyst = _viewer(api, org.tokens[Role.ANALYST])
    employee = _viewer(api, org.tokens[Role.SELF])
    assert refused(admin, Permission.SIMS_WRITE, "no") is None
    assert refused(analyst, Permission.EVENTS_READ, "no") is None
    no = refused(analyst, Permission.SIMS_WRITE, "SIMs are for operators.")
    assert no is not None
    assert no.status_code == 403
    assert b"SIMs are for operators." in no.body
    # SIMS_READ is an employee's permission (their own SIMs) but never an admin page's.
    assert employee.may(Permission.SIMS_READ)
    mine = refused(employee, Permission.SIMS_READ, "no")
    assert mine is not None
    assert mine.status_code == 403


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_every_page_sends_a_stranger_to_sign_in(api: ApiHarness, path: str) -> None:
    with TestClient(api.app) as client:
        r = client.get(path, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, LOGIN_PATH)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_every_admin_page_refuses_an_employee(
    api: ApiHarness, two_orgs: tuple[World, World], path: str
) -> None:
    org = two_orgs[0].org
    with TestClient(api.app) as client:
        assert sign_in(client, org.tokens[Role.SELF]) == 303
        assert client.get(path).status_code == 403
