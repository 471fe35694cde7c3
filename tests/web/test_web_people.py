"""The people pages' reads: a search on name and email within the viewer's org, paged
by key; one person with their SIMs, devices, groups and fleets; groups with members."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ztsim.clock import utc_now
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity import repository, token_store
from ztsim.identity.models import IdentityKind
from ztsim.identity.roles import Role
from ztsim.web import people
from ztsim.web.viewer import Viewer

from support.api import ApiHarness
from support.world import World


def _viewer(api: ApiHarness, token: str) -> Viewer:
    with api.engine.connect() as conn:
        principal = token_store.authenticate(conn, token, api.clock())
    assert principal is not None
    return Viewer(principal, "csrf")


def _add(api: ApiHarness, org_id: str, name: str, email: str | None = None) -> str:
    with api.engine.begin() as conn:
        made = repository.create_identity(
            conn,
            org_id,
            kind=IdentityKind.USER,
            name=name,
            email=email,
            external_id=None,
            now=api.clock(),
        )
    return made.id


def _names(found: people.Found) -> list[str]:
    return sorted(p.name for p in found.people)


def test_search_is_on_name_or_email_any_case_and_within_the_org(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    _add(api, alpha.org.id, "Dana Scully", "dana@fbi.test")
    with api.engine.connect() as conn:
        assert _names(people.search(conn, alpha.org.id, "user")) == ["User alpha"]
        assert _names(people.search(conn, alpha.org.id, "FBI.TEST")) == ["Dana Scully"]
        assert _names(people.search(conn, alpha.org.id, "bravo")) == []
        everyone = people.search(conn, alpha.org.id)
        assert "Meter alpha" in _names(everyone)
        assert all(p.org_id == alpha.org.id for p in everyone.people)
        services = people.search(conn, alpha.org.id, kind=IdentityKind.SERVICE)
        assert _names(services) == ["Meter alpha"]


def test_search_takes_wildcards_as_plain_text(api: ApiHarness) -> None:
    org = api.new_org("wild")
    _add(api, org.id, "50% off")
    _add(api, org.id, "500 off")
    _add(api, org.id, "under_score")
    _add(api, org.id, "underXscore")
    with api.engine.connect() as conn:
        assert _names(people.search(conn, org.id, "%")) == ["50% off"]
        assert _names(people.search(conn, org.id, "r_s")) == ["under_score"]


def test_search_pages_by_key_without_overlap(api: ApiHarness) -> None:
    org = api.new_org("paged")
    made = {_add(api, org.id, f"Person {n}") for n in range(5)}
    seen: list[str] = []
    cursor = None
    with api.engine.connect() as conn:
        for _ in range(5):
            found = people.search(conn, org.id, "person", limit=2, cursor=cursor)
            seen += [p.id for p in found.people]
            cursor = found.next_cursor
            if cursor is None:
                break
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))


def test_a_long_or_forged_search_is_refused(api: ApiHarness) -> None:
    org = api.new_org("long")
    with api.engine.connect() as conn:
        with pytest.raises(InvalidInput):
            people.search(conn, org.id, "x" * (people.MAX_QUERY + 1))
        with pytest.raises(InvalidInput):
            people.search(conn, org.id, cursor="not-a-cursor")


def test_a_person_with_their_sims_devices_and_groups(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    viewer = _viewer(api, alpha.org.tokens[Role.ADMIN])
    with api.engine.connect() as conn:
        p = people.person(conn, viewer, alpha.ids["identity_id"])
    assert p.identity.name == "User alpha"
    assert p.sims is not None
    assert [s.iccid for s in p.sims] == [alpha.ids["iccid"]]
    assert p.devices is not None
    assert [d.id for d in p.devices] == [alpha.ids["device_id"]]
    assert [g.id for g in p.groups] == [alpha.ids["group_id"]]
    assert p.fleets == []
    assert p.other_groups == []
    assert p.other_fleets == []  # a fleet holds service identities only


def test_a_service_identity_is_in_its_fleet_and_may_join_groups(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    viewer = _viewer(api, alpha.org.tokens[Role.AUDITOR])
    with api.engine.connect() as conn:
        p = people.person(conn, viewer, alpha.ids["service_id"])
    assert [f.id for f in p.fleets] == [alpha.ids["fleet_id"]]
    assert [g.id for g in p.other_groups] == [alpha.ids["group_id"]]


def test_another_org_s_person_is_not_found(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, bravo = two_orgs
    viewer = _viewer(api, alpha.org.tokens[Role.ADMIN])
    with api.engine.connect() as conn, pytest.raises(NotFound):
        people.person(conn, viewer, bravo.ids["identity_id"])


def test_groups_and_fleets_name_their_members(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    with api.engine.connect() as conn:
        groups = people.collections(conn, alpha.org.id, fleet=False)
        fleets = people.collections(conn, alpha.org.id, fleet=True)
        named = people.names(
            conn, alpha.org.id, [alpha.ids["identity_id"], bravo.ids["identity_id"]]
        )
    assert [(g.collection.id, [m.name for m in g.members]) for g in groups] == [
        (alpha.ids["group_id"], ["User alpha"])
    ]
    assert [(f.collection.id, [m.name for m in f.members]) for f in fleets] == [
        (alpha.ids["fleet_id"], ["Meter alpha"])
    ]
    assert named == {alpha.ids["identity_id"]: "User alpha"}  # not the other org's


def test_the_search_reads_the_same_on_each_backend(engine: Engine) -> None:
    now = utc_now()
    with engine.begin() as conn:
        org = repository.create_org(conn, "Org", "org", now)
        other = repository.create_org(conn, "Other", "other", now)
        for org_id, name, email in (
            (org.id, "Ada Lovelace", "ADA@example.test"),
            (org.id, "100% Bob", None),
            (org.id, "Carol", "carol@example.test"),
            (other.id, "Ada Other", "ada@other.test"),
        ):
            repository.create_identity(
                conn,
                org_id,
                kind=IdentityKind.USER,
                name=name,
                email=email,
                external_id=None,
                now=now,
            )
    with engine.connect() as conn:
        assert _names(people.search(conn, org.id, "ada@")) == ["Ada Lovelace"]
        assert _names(people.search(conn, org.id, "0%")) == ["100% Bob"]
        assert _names(people.search(conn, org.id, "EXAMPLE")) == ["Ada Lovelace", "Carol"]
