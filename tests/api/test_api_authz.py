"""Roles per route, and org isolation on every route: both driven by the app's own routes."""

from __future__ import annotations

import httpx2
import pytest

from ztsim.identity.roles import Role

from api.conftest import World
from api.routes_table import ROUTES, app_routes, fill
from support.api import ApiHarness


def _call(
    api: ApiHarness,
    method: str,
    template: str,
    path_ids: dict[str, str],
    body_ids: dict[str, str],
    role: Role,
    org: World,
) -> httpx2.Response:
    spec = ROUTES[(method, template)]
    headers = org.org.auth(role)
    content: str | None = None
    json: object = None
    if spec.csv:
        csv = spec.body(body_ids) if spec.body else ""
        assert isinstance(csv, str)
        content = csv
        headers = {**headers, "content-type": "text/csv"}
    elif spec.body is not None:
        json = spec.body(body_ids)
    return api.client.request(
        method, fill(template, path_ids), headers=headers, content=content, json=json
    )


def test_every_route_is_in_the_table(api: ApiHarness) -> None:
    assert app_routes(api.app) == set(ROUTES)


def test_requests_without_a_valid_token_are_refused(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    for method, template in ROUTES:
        path = fill(template, alpha.ids)
        for headers in (
            {},
            {"Authorization": "Bearer ztsim_" + "A" * 43},
            {"Authorization": "Basic eDp5"},
        ):
            r = api.client.request(method, path, headers=headers)
            assert r.status_code == 401, (method, template, headers, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_allowed_or_denied_per_route(
    api: ApiHarness, two_orgs: tuple[World, World], role: Role
) -> None:
    alpha, _ = two_orgs
    for (method, template), spec in ROUTES.items():
        r = _call(api, method, template, alpha.ids, alpha.ids, role, alpha)
        if role in spec.roles:
            assert r.status_code not in (401, 403), (role, method, template, r.text)
            assert r.status_code < 500, (role, method, template, r.text)
        else:
            assert r.status_code == 403, (role, method, template, r.text)


def test_org_isolation_on_every_route_with_an_object(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    before = api.client.get(f"/api/v1/sims/{bravo.ids['iccid']}", headers=bravo.org.auth()).json()
    checked = 0
    for method, template in ROUTES:
        if "{" not in template:
            continue
        for role in (Role.ADMIN, Role.AUDITOR, Role.OPERATOR, Role.SELF):
            # Bodies name alpha's own objects: only the path points into bravo.
            r = _call(api, method, template, bravo.ids, alpha.ids, role, alpha)
            expected = {404} if role in ROUTES[(method, template)].roles else {403}
            assert r.status_code in expected, (role, method, template, r.status_code, r.text)
            checked += 1
    assert checked > 40
    after = api.client.get(f"/api/v1/sims/{bravo.ids['iccid']}", headers=bravo.org.auth()).json()
    assert after == before
    # bravo's token that alpha tried to revoke still works
    assert api.client.get("/api/v1/tokens", headers=bravo.org.auth()).status_code == 200
    tokens = api.client.get("/api/v1/tokens", headers=bravo.org.auth()).json()
    assert all(t["revoked_at"] is None for t in tokens)


def test_lists_show_nothing_of_another_org(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, bravo = two_orgs
    secrets_of_bravo = [v for k, v in bravo.ids.items()]
    for method, template in ROUTES:
        if method != "GET" or "{" in template:
            continue
        for role in Role:
            r = api.client.get(template, headers=alpha.org.auth(role))
            if r.status_code == 200:
                for ident in secrets_of_bravo:
                    assert ident not in r.text, (role, template)


@pytest.mark.parametrize(
    ("method", "template", "body"),
    [
        ("POST", "/api/v1/sims/{iccid}/assign", lambda a, b: {"identity_id": b["identity_id"]}),
        (
            "PUT",
            "/api/v1/sims/{iccid}/binding",
            lambda a, b: {"device_id": b["device_id"], "reason": "x"},
        ),
        (
            "POST",
            "/api/v1/devices",
            lambda a, b: {"imei": "356938035643809", "owner_id": b["identity_id"]},
        ),
        (
            "POST",
            "/api/v1/tokens",
            lambda a, b: {"name": "x", "role": "self", "identity_id": b["identity_id"]},
        ),
        ("PUT", "/api/v1/groups/{group_id}/members/" + "{bravo}", None),
        ("PUT", "/api/v1/fleets/{fleet_id}/members/" + "{bravo_service}", None),
    ],
)
def test_bodies_cannot_reach_another_orgs_objects(
    api: ApiHarness, two_orgs: tuple[World, World], method: str, template: str, body: object
) -> None:
    alpha, bravo = two_orgs
    ids = {
        **alpha.ids,
        "iccid": alpha.ids["spare_iccid"],
        "bravo": bravo.ids["identity_id"],
        "bravo_service": bravo.ids["service_id"],
    }
    json_body = body(alpha.ids, bravo.ids) if callable(body) else None
    r = api.client.request(method, fill(template, ids), json=json_body, headers=alpha.org.auth())
    assert r.status_code == 404, r.text
