"""Org, identity, group, fleet and token use cases: each leaves its change, its audit event
and, when a plane must act, its outbox row; a refused one leaves none of them (SQLite and
PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository, service, token_store
from ztsim.identity.models import IdentityKind
from ztsim.identity.roles import Role

from support.traces import refused, run
from tests_clock import NOW

ACTOR = "test:admin"
LATER = NOW + timedelta(hours=1)


@dataclass
class Orgs:
    a: str
    b: str
    ann: str  # a user of org a
    meter: str  # a service identity of org a
    bob: str  # a user of org b


def _identity(conn: Connection, org: str, name: str, kind: IdentityKind) -> str:
    return service.create_identity(
        conn, org, kind=kind, name=name, email=None, external_id=None, actor=ACTOR, now=NOW
    ).id


@pytest.fixture
def orgs(engine: Engine) -> Orgs:
    with engine.begin() as conn:
        a = service.create_org(conn, "A", "a", actor=ACTOR, now=NOW).id
        b = service.create_org(conn, "B", "b", actor=ACTOR, now=NOW).id
        return Orgs(
            a,
            b,
            _identity(conn, a, "Ann", IdentityKind.USER),
            _identity(conn, a, "Meter", IdentityKind.SERVICE),
            _identity(conn, b, "Bob", IdentityKind.USER),
        )


# -- the org --------------------------------------------------------------------------------


def test_creating_an_org_is_audited_and_changes_no_plane(engine: Engine) -> None:
    org, left = run(engine, lambda c: service.create_org(c, "C", "c", actor=ACTOR, now=NOW))
    assert left.events == [(org.id, "org.created", f"org:{org.id}")]
    assert left.changes == []
    refused(engine, Conflict, lambda c: service.create_org(c, "C2", "c", actor=ACTOR, now=NOW))


def test_attach_settings_reach_the_network_planes(engine: Engine, orgs: Orgs) -> None:
    org, left = run(
        engine,
        lambda c: service.update_org(c, orgs.a, tofu_binding=True, actor=ACTOR, now=NOW),
    )
    assert org.tofu_binding is True
    assert left.kinds == ["org.updated"]
    assert left.topics == [(Topic.NETWORK, orgs.a)]
    assert {c.org_id for c in left.changes} == {orgs.a}
    unknown = "f" * 32
    refused(
        engine,
        NotFound,
        lambda c: service.update_org(c, unknown, tofu_binding=True, actor=ACTOR, now=NOW),
    )


# -- identities -----------------------------------------------------------------------------


def test_disabling_an_identity_reaches_the_planes(engine: Engine, orgs: Orgs) -> None:
    ident, left = run(
        engine,
        lambda c: service.update_identity(c, orgs.a, orgs.ann, enabled=False, actor=ACTOR, now=NOW),
    )
    assert ident.enabled is False
    assert left.events == [(orgs.a, "identity.updated", f"identity:{orgs.ann}")]
    assert left.topics == [(Topic.IDENTITY, orgs.ann)]


def test_a_rename_is_audited_but_changes_no_plane(engine: Engine, orgs: Orgs) -> None:
    ident, left = run(
        engine,
        lambda c: service.update_identity(c, orgs.a, orgs.ann, name="Ann B", actor=ACTOR, now=NOW),
    )
    assert ident.name == "Ann B"
    assert (left.kinds, left.changes) == (["identity.updated"], [])


def test_another_orgs_identity_is_not_found_and_nothing_changes(engine: Engine, orgs: Orgs) -> None:
    refused(
        engine,
        NotFound,
        lambda c: service.update_identity(c, orgs.a, orgs.bob, enabled=False, actor=ACTOR, now=NOW),
    )
    with engine.connect() as conn:
        assert repository.get_identity(conn, orgs.b, orgs.bob).enabled is True


def test_creating_an_identity_is_audited_and_a_duplicaterefused(engine: Engine, orgs: Orgs) -> None:
    def create(c: Connection) -> Any:
        return service.create_identity(
            c,
            orgs.a,
            kind=IdentityKind.USER,
            name="Cy",
            email="cy@a.test",
            external_id=None,
            actor=ACTOR,
            now=NOW,
        )

    ident, left = run(engine, create)
    assert left.events == [(orgs.a, "identity.created", f"identity:{ident.id}")]
    assert left.changes == []  # no SIM, no group yet: nothing for a plane
    refused(engine, Conflict, create)


# -- groups and fleets ----------------------------------------------------------------------


def test_membership_changes_reach_the_planes(engine: Engine, orgs: Orgs) -> None:
    group, left = run(
        engine,
        lambda c: service.create_collection(c, orgs.a, "staff", fleet=False, actor=ACTOR, now=NOW),
    )
    assert (left.kinds, left.changes) == (["group.created"], [])
    added, left = run(
        engine,
        lambda c: service.add_members(
            c, orgs.a, group.id, [orgs.ann, orgs.meter], fleet=False, actor=ACTOR, now=NOW
        ),
    )
    assert added.member_ids == tuple(sorted([orgs.ann, orgs.meter]))
    assert left.kinds == ["group.member_added", "group.member_added"]
    assert left.topics == [(Topic.IDENTITY, orgs.ann), (Topic.IDENTITY, orgs.meter)]
    removed, left = run(
        engine,
        lambda c: service.remove_member(
            c, orgs.a, group.id, orgs.ann, fleet=False, actor=ACTOR, now=NOW
        ),
    )
    assert removed.member_ids == (orgs.meter,)
    assert left.events == [(orgs.a, "group.member_removed", f"group:{group.id}")]
    assert left.topics == [(Topic.IDENTITY, orgs.ann)]
    # Not a member (any more): refused, nothing written.
    refused(
        engine,
        NotFound,
        lambda c: service.remove_member(
            c, orgs.a, group.id, orgs.ann, fleet=False, actor=ACTOR, now=NOW
        ),
    )


def test_adding_members_is_all_or_nothing(engine: Engine, orgs: Orgs) -> None:
    with engine.begin() as conn:
        fleet = service.create_collection(conn, orgs.a, "meters", fleet=True, actor=ACTOR, now=NOW)
    # The service identity would fit; the user does not: neither is added.
    refused(
        engine,
        InvalidInput,
        lambda c: service.add_members(
            c, orgs.a, fleet.id, [orgs.meter, orgs.ann], fleet=True, actor=ACTOR, now=NOW
        ),
    )
    # Another org's identity, or another org's fleet: not found.
    refused(
        engine,
        NotFound,
        lambda c: service.add_members(
            c, orgs.a, fleet.id, [orgs.bob], fleet=True, actor=ACTOR, now=NOW
        ),
    )
    refused(
        engine,
        NotFound,
        lambda c: service.add_members(
            c, orgs.b, fleet.id, [orgs.bob], fleet=True, actor=ACTOR, now=NOW
        ),
    )
    with engine.connect() as conn:
        assert repository.get_collection(conn, orgs.a, fleet.id, fleet=True).member_ids == ()


# -- API tokens -----------------------------------------------------------------------------


def test_tokens_are_audited_and_change_no_plane(engine: Engine, orgs: Orgs) -> None:
    (info, token), left = run(
        engine,
        lambda c: service.issue_token(
            c, orgs.a, name="ci", role=Role.ANALYST, identity_id=None, actor=ACTOR, now=NOW
        ),
    )
    assert left.events == [(orgs.a, "token.created", f"token:{info.id}")]
    assert left.changes == []
    revoked, left = run(
        engine, lambda c: service.revoke_token(c, orgs.a, info.id, actor=ACTOR, now=NOW)
    )
    assert revoked.revoked_at is not None
    assert left.events == [(orgs.a, "token.revoked", f"token:{info.id}")]
    with engine.connect() as conn:
        assert token_store.authenticate(conn, token, NOW) is None
    again, left = run(
        engine, lambda c: service.revoke_token(c, orgs.a, info.id, actor=ACTOR, now=LATER)
    )
    assert again.revoked_at == revoked.revoked_at  # the first revocation's time stays
    assert left.events == []  # and the audit log says it once


def test_refused_token_operations_leave_nothing(engine: Engine, orgs: Orgs) -> None:
    refused(
        engine,
        InvalidInput,
        lambda c: service.issue_token(
            c, orgs.a, name="me", role=Role.SELF, identity_id=None, actor=ACTOR, now=NOW
        ),
    )
    with engine.begin() as conn:
        info, _token = service.issue_token(
            conn, orgs.b, name="b", role=Role.ANALYST, identity_id=None, actor=ACTOR, now=NOW
        )
    refused(
        engine, NotFound, lambda c: service.revoke_token(c, orgs.a, info.id, actor=ACTOR, now=NOW)
    )
    with engine.connect() as conn:
        assert token_store.get(conn, orgs.b, info.id).revoked_at is None
