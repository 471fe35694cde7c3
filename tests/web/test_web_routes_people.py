"""The people pages through the app: the viewer's org only, 404 for another org's
person, 403 for a `self` sign-in and for roles without `identities:read`, and the group
change going through the API's use case (same audit event), refused without the form's
secret."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from web.signin import csrf_in, sign_in
from ztsim.events import store as events
from ztsim.identity.roles import Role

from support.api import ApiHarness
from support.world import World


def _members(api: ApiHarness, world: World, group_id: str) -> list[str]:
    r = api.client.get(f"/api/v1/groups/{group_id}", headers=world.org.auth())
    assert r.status_code == 200, r.text
    members: list[str] = r.json()["member_ids"]
    return members


def _new_group(api: ApiHarness, world: World, name: str) -> str:
    r = api.client.post("/api/v1/groups", json={"name": name}, headers=world.org.auth())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_people_lists_only_the_viewer_s_org_and_searches(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    page = client.get("/people")
    assert page.status_code == 200
    assert "User alpha" in page.text
    assert "Meter alpha" in page.text
    assert f'href="/people/{alpha.ids["identity_id"]}"' in page.text
    assert "bravo" not in page.text.lower()
    found = client.get("/people", params={"q": "METER"})
    assert "Meter alpha" in found.text
    assert "User alpha" not in found.text
    services = client.get("/people", params={"kind": "service"})
    assert "Meter alpha" in services.text
    assert "User alpha" not in services.text
    assert client.get("/people", params={"kind": "robot"}).status_code == 400
    assert client.get("/people", params={"cursor": "forged"}).status_code == 400


def test_people_pages_on(api: ApiHarness, client: TestClient) -> None:
    org = api.new_org("many")
    for n in range(55):
        r = api.client.post(
            "/api/v1/identities",
            json={"kind": "user", "name": f"Staff {n:02d}"},
            headers=org.auth(),
        )
        assert r.status_code == 201
    assert sign_in(client, org.tokens[Role.AUDITOR]) == 303
    first = client.get("/people")
    assert first.text.count('href="/people/') == 50
    [next_url] = [
        line.split('href="')[1].split('"')[0]
        for line in first.text.splitlines()
        if 'rel="next"' in line
    ]
    second = client.get(next_url.replace("&amp;", "&"))
    assert second.status_code == 200
    assert second.text.count('href="/people/') == 5
    assert "First page" in second.text


def test_a_person_s_page_and_another_org_s_person(
    client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    page = client.get(f"/people/{alpha.ids['identity_id']}")
    assert page.status_code == 200
    assert f'href="/sims/{alpha.ids["iccid"]}"' in page.text
    assert "490154203237518" in page.text  # the device's IMEI
    assert "staff" in page.text
    assert "Not found" not in page.text
    other = client.get(f"/people/{bravo.ids['identity_id']}")
    assert other.status_code == 404
    assert "User bravo" not in other.text
    assert "Not found" in other.text  # in the site's layout
    assert client.get("/people/no-such-id").status_code == 404


def test_groups_page_lists_groups_and_fleets_with_members(
    client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.OPERATOR]) == 303
    page = client.get("/groups")
    assert page.status_code == 200
    assert "staff" in page.text
    assert "meters" in page.text
    assert "User alpha" in page.text
    assert "Meter alpha" in page.text
    assert "bravo" not in page.text.lower()
    assert client.get("/fleets", follow_redirects=False).headers["location"] == "/groups#fleets"


@pytest.mark.parametrize("role", [Role.SELF, Role.ANALYST])
def test_roles_without_identities_read_are_refused(
    client: TestClient, two_orgs: tuple[World, World], role: Role
) -> None:
    alpha, _ = two_orgs
    assert sign_in(client, alpha.org.tokens[role]) == 303
    for path in ("/people", f"/people/{alpha.ids['identity_id']}", "/groups"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "User alpha" not in r.text


def test_an_auditor_reads_but_gets_no_forms_and_may_not_post(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    extra = _new_group(api, alpha, "contractors")
    assert sign_in(client, alpha.org.tokens[Role.AUDITOR]) == 303
    page = client.get(f"/people/{alpha.ids['identity_id']}")
    assert page.status_code == 200
    assert "Add to the group" not in page.text
    assert 'action="/people/' not in page.text
    r = client.post(
        f"/people/{alpha.ids['identity_id']}/groups",
        data={"csrf": csrf_in(page.text), "collection_id": extra},
    )
    assert r.status_code == 403
    assert _members(api, alpha, extra) == []


def test_add_and_remove_a_person_through_the_form(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    person = alpha.ids["identity_id"]
    extra = _new_group(api, alpha, "contractors")
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    page = client.get(f"/people/{person}")
    assert "Add to the group" in page.text
    assert f'<option value="{extra}">contractors</option>' in page.text
    csrf = csrf_in(page.text)
    added = client.post(
        f"/people/{person}/groups",
        data={"csrf": csrf, "collection_id": extra},
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert added.headers["location"] == f"/people/{person}"
    assert _members(api, alpha, extra) == [person]
    with api.engine.connect() as conn:
        found, _ = events.query(
            conn,
            alpha.org.id,
            events.EventQuery(kind="group.member_added", subject=f"group:{extra}"),
        )
    [event] = found
    assert event.payload == {"identity_id": person}
    assert event.actor.startswith("token:")
    removed = client.post(
        f"/people/{person}/groups/{extra}/remove", data={"csrf": csrf}, follow_redirects=False
    )
    assert removed.status_code == 303
    assert _members(api, alpha, extra) == []


def test_a_change_without_the_form_secret_changes_nothing(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    person, group = alpha.ids["identity_id"], alpha.ids["group_id"]
    extra = _new_group(api, alpha, "contractors")
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    assert client.post(f"/people/{person}/groups", data={"collection_id": extra}).status_code == 403
    r = client.post(f"/people/{person}/groups/{group}/remove", data={"csrf": "forged"})
    assert r.status_code == 403
    assert _members(api, alpha, extra) == []
    assert _members(api, alpha, group) == [person]


def test_another_org_s_group_or_person_is_404_and_unchanged(
    api: ApiHarness, client: TestClient, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    assert sign_in(client, alpha.org.tokens[Role.ADMIN]) == 303
    csrf = csrf_in(client.get("/people").text)
    theirs = client.post(
        f"/people/{alpha.ids['identity_id']}/groups",
        data={"csrf": csrf, "collection_id": bravo.ids["group_id"]},
    )
    assert theirs.status_code == 404
    them = client.post(
        f"/people/{bravo.ids['identity_id']}/groups",
        data={"csrf": csrf, "collection_id": alpha.ids["group_id"]},
    )
    assert them.status_code == 404
    assert _members(api, bravo, bravo.ids["group_id"]) == [bravo.ids["identity_id"]]
    assert _members(api, alpha, alpha.ids["group_id"]) == [alpha.ids["identity_id"]]
    # A person is not a fleet's member: refused, nothing changed.
    fleet = client.post(
        f"/people/{alpha.ids['identity_id']}/fleets",
        data={"csrf": csrf, "collection_id": alpha.ids["fleet_id"]},
    )
    assert fleet.status_code == 400
    assert (
        client.post(f"/people/{alpha.ids['identity_id']}/teams", data={"csrf": csrf}).status_code
        == 404
    )
