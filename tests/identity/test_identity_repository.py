"""Orgs, identities, groups, fleets and tokens on a real database (SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from sqlalchemy import Connection, Engine, select

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.identity import repository as repo
from ztsim.identity import token_store
from ztsim.identity.models import Identity, IdentityKind
from ztsim.identity.roles import Role
from ztsim.identity.tokens import hash_token

from tests_clock import NOW


def _user(
    conn: Connection,
    org: str,
    name: str,
    email: str | None = None,
    kind: IdentityKind = IdentityKind.USER,
) -> Identity:
    return repo.create_identity(
        conn, org, kind=kind, name=name, email=email, external_id=None, now=NOW
    )


def test_orgs(engine: Engine) -> None:
    with engine.begin() as conn:
        org = repo.create_org(conn, "Acme", "acme", NOW)
        assert repo.find_org(conn, None) == org
        assert repo.find_org(conn, "acme") == org
        with pytest.raises(Conflict):
            repo.create_org(conn, "Acme 2", "acme", NOW)
        with pytest.raises(InvalidInput):
            repo.create_org(conn, "Bad", "Not A Slug", NOW)
        repo.create_org(conn, "Other", "other", NOW)
        with pytest.raises(InvalidInput, match="several orgs"):
            repo.find_org(conn, None)
        assert repo.update_org(conn, org.id, tofu_binding=True).tofu_binding is True


def test_identities_are_scoped_and_unique_per_org(engine: Engine) -> None:
    with engine.begin() as conn:
        a = repo.create_org(conn, "A", "a", NOW).id
        b = repo.create_org(conn, "B", "b", NOW).id
        ann = _user(conn, a, "Ann", "ann@x.test")
        _user(conn, b, "Ann elsewhere", "ann@x.test")  # same email, other org: fine
    with pytest.raises(Conflict), engine.begin() as conn:
        _user(conn, a, "Ann again", "ann@x.test")
    with engine.begin() as conn:
        with pytest.raises(NotFound):
            repo.get_identity(conn, b, ann.id)
        assert repo.get_identity(conn, a, ann.id) == ann
        updated = repo.update_identity(conn, a, ann.id, name="Ann B", enabled=False)
        assert (updated.name, updated.enabled) == ("Ann B", False)


def test_identity_listing_pages(engine: Engine) -> None:
    with engine.begin() as conn:
        org = repo.create_org(conn, "A", "a", NOW).id
        made = {_user(conn, org, f"u{i}").id for i in range(7)}
        _user(conn, org, "meter", kind=IdentityKind.SERVICE)
        seen, cursor = set(), None
        while True:
            page, cursor = repo.list_identities(
                conn, org, kind=IdentityKind.USER, limit=3, cursor=cursor
            )
            seen |= {i.id for i in page}
            if cursor is None:
                break
    assert seen == made


def test_groups_and_fleets(engine: Engine) -> None:
    with engine.begin() as conn:
        org = repo.create_org(conn, "A", "a", NOW).id
        ann = _user(conn, org, "Ann")
        meter = _user(conn, org, "Meter", kind=IdentityKind.SERVICE)
        group = repo.create_collection(conn, org, "staff", NOW, fleet=False)
        fleet = repo.create_collection(conn, org, "meters", NOW, fleet=True)
        assert repo.add_member(conn, org, group.id, ann.id, fleet=False).member_ids == (ann.id,)
        assert repo.add_member(conn, org, group.id, ann.id, fleet=False).member_ids == (ann.id,)
        with pytest.raises(InvalidInput, match="service identities"):
            repo.add_member(conn, org, fleet.id, ann.id, fleet=True)
        assert repo.add_member(conn, org, fleet.id, meter.id, fleet=True).member_ids == (meter.id,)
        with pytest.raises(NotFound):
            repo.get_collection(conn, org, group.id, fleet=True)
        assert repo.remove_member(conn, org, group.id, ann.id, fleet=False).member_ids == ()
        with pytest.raises(NotFound):
            repo.remove_member(conn, org, group.id, ann.id, fleet=False)
        with pytest.raises(Conflict):
            repo.create_collection(conn, org, "staff", NOW, fleet=False)
        assert [c.name for c in repo.list_collections(conn, org, fleet=True)] == ["meters"]


def test_tokens_are_stored_hashed_and_authenticate(engine: Engine) -> None:
    with engine.begin() as conn:
        org = repo.create_org(conn, "A", "a", NOW).id
        ann = _user(conn, org, "Ann")
        info, token = token_store.issue(
            conn, org, name="ci", role=Role.OPERATOR, identity_id=None, created_by="t", now=NOW
        )
        stored = conn.execute(select(schema.api_tokens)).one()._mapping
        assert token not in str(dict(stored))
        assert stored["token_hash"] == hash_token(token)
        principal = token_store.authenticate(conn, token, NOW)
        assert principal is not None
        assert (principal.org_id, principal.role, principal.token_id) == (
            org,
            Role.OPERATOR,
            info.id,
        )
        assert (
            token_store.authenticate(conn, token[:-1] + ("A" if token[-1] != "A" else "B"), NOW)
            is None
        )
        assert token_store.authenticate(conn, "not-a-token", NOW) is None
        with pytest.raises(InvalidInput, match="self token"):
            token_store.issue(
                conn, org, name="x", role=Role.SELF, identity_id=None, created_by="t", now=NOW
            )
        _, own = token_store.issue(
            conn,
            org,
            name="me",
            role=Role.SELF,
            identity_id=ann.id,
            created_by="t",
            now=NOW,
            expires_at=NOW + timedelta(days=1),
        )
        assert token_store.authenticate(conn, own, NOW + timedelta(hours=1)) is not None
        assert token_store.authenticate(conn, own, NOW + timedelta(days=1)) is None
        token_store.revoke(conn, org, info.id, NOW)
        assert token_store.authenticate(conn, token, NOW) is None
        listed = {t.id: t for t in token_store.list_tokens(conn, org)}
        assert listed[info.id].revoked_at == NOW
        assert len(listed) == 2
