"""API clients and access tokens in the database, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import Engine, func, select

from ztsim.db import schema
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity import repository as identities
from ztsim.risk.clients import Grant, secret_hash
from ztsim.risk.store import clients
from ztsim.risk.store.clients import IssuedToken, Refused
from ztsim.sealing import Sealer

from support.factories import activate, make_sims
from support.leaks import LEAKS

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SCOPES = ["sim-swap:check", "device-swap"]


_drawn = count(1)


def _random() -> clients.Random:
    """Injected randomness: each draw a new byte value, so every credential differs."""
    return lambda size: bytes([next(_drawn) % 256]) * size


@pytest.fixture
def orgs(engine: Engine, sealer: Sealer) -> tuple[str, str, str]:
    """Two orgs; the first holds an active SIM, whose number (E.164) comes third."""
    (spec,) = make_sims(1, seed=71)
    with engine.begin() as conn:
        a = identities.create_org(conn, "A", "a", NOW).id
        b = identities.create_org(conn, "B", "b", NOW).id
        activate(conn, sealer, a, spec, NOW)
    assert spec.msisdn is not None
    return a, b, "+" + spec.msisdn


def _create(
    engine: Engine, org: str, phone: str | None = None, scopes: list[str] = SCOPES
) -> tuple[clients.ApiClient, str]:
    with engine.begin() as conn:
        client, secret = clients.create_client(
            conn,
            org,
            name="idp",
            scopes=scopes,
            phone_number=phone,
            actor="token:admin",
            now=NOW,
            random=_random(),
        )
    LEAKS.add_secret(secret)
    return client, secret


def _issue(
    engine: Engine, client_id: str, secret: str, scope: str | None = None, now: datetime = NOW
) -> IssuedToken | Refused:
    with engine.begin() as conn:
        result = clients.issue_token(conn, client_id, secret, scope, now=now, random=_random())
    if isinstance(result, IssuedToken):
        LEAKS.add_secret(result.access_token)
    return result


def test_a_client_is_created_with_its_secret_shown_once(
    engine: Engine, orgs: tuple[str, str, str]
) -> None:
    a, _, _ = orgs
    client, secret = _create(engine, a)
    assert (client.org_id, client.name, client.scopes) == (a, "idp", frozenset(SCOPES))
    assert client.phone_number is None
    assert client.revoked_at is None
    assert secret.startswith("ztsimcs_")
    with engine.connect() as conn:
        row = conn.execute(select(schema.api_clients)).one()
        events = conn.execute(select(schema.events.c.kind, schema.events.c.payload)).all()
    assert row.secret_hash == secret_hash(secret)
    assert secret not in repr(row)
    assert ("api_client.created", {"scopes": sorted(SCOPES), "legs": 2}) in [
        (e.kind, e.payload) for e in events
    ]


def test_creation_checks_scopes_and_the_bound_number(
    engine: Engine, orgs: tuple[str, str, str]
) -> None:
    a, b, number = orgs
    for scopes in ([], ["admin"]):
        with pytest.raises(InvalidInput):
            _create(engine, a, scopes=scopes)
    with pytest.raises(InvalidInput):
        _create(engine, a, phone="4917000000001")
    with pytest.raises(InvalidInput):
        _create(engine, b, phone=number)  # another org's number is no number of this org
    client, _ = _create(engine, a, phone=number)
    assert client.phone_number == number


def test_list_get_and_revoke_stay_in_the_org(engine: Engine, orgs: tuple[str, str, str]) -> None:
    a, b, _ = orgs
    client, _ = _create(engine, a)
    with engine.begin() as conn:
        assert [c.id for c in clients.list_clients(conn, a)] == [client.id]
        assert clients.list_clients(conn, b) == []
        with pytest.raises(NotFound):
            clients.get_client(conn, b, client.id)
        with pytest.raises(NotFound):
            clients.revoke_client(conn, b, client.id, actor="x", now=NOW)
        revoked = clients.revoke_client(conn, a, client.id, actor="x", now=NOW)
        again = clients.revoke_client(conn, a, client.id, actor="x", now=NOW + timedelta(hours=1))
    assert revoked.revoked_at == NOW
    assert again.revoked_at == NOW


def test_a_token_carries_the_clients_grant(engine: Engine, orgs: tuple[str, str, str]) -> None:
    a, _, number = orgs
    client, secret = _create(engine, a, phone=number)
    issued = _issue(engine, client.id, secret)
    assert isinstance(issued, IssuedToken)
    assert issued.expires_in == 3600
    assert issued.grant == Grant(a, client.id, frozenset(SCOPES), number)
    with engine.connect() as conn:
        assert clients.authenticate_token(conn, issued.access_token, NOW) == issued.grant
        later = NOW + timedelta(minutes=59)
        assert clients.authenticate_token(conn, issued.access_token, later) == issued.grant
        expired = NOW + timedelta(hours=1)
        assert clients.authenticate_token(conn, issued.access_token, expired) is None
        assert clients.authenticate_token(conn, "ztsimat_" + "A" * 43, NOW) is None
        assert clients.authenticate_token(conn, secret, NOW) is None


def test_a_narrower_scope_and_refusals(engine: Engine, orgs: tuple[str, str, str]) -> None:
    a, _, _ = orgs
    client, secret = _create(engine, a)
    narrow = _issue(engine, client.id, secret, "device-swap")
    assert isinstance(narrow, IssuedToken)
    assert narrow.grant.scopes == {"device-swap"}
    assert _issue(engine, client.id, secret, "sim-swap") == Refused(
        "invalid_scope", "not granted to this client: sim-swap"
    )
    refused = _issue(engine, client.id, secret, "nonsense")
    assert isinstance(refused, Refused)
    assert refused.error == "invalid_scope"
    for client_id, wrong in (
        (client.id, "ztsimcs_" + "B" * 43),
        (client.id, secret[:-1]),
        ("0" * 32, secret),
        ("", secret),
    ):
        assert _issue(engine, client_id, wrong) == Refused(
            "invalid_client", "client authentication failed"
        )
    with engine.connect() as conn:
        refusals = conn.execute(
            select(schema.events.c.org_id, schema.events.c.reason).where(
                schema.events.c.kind == "camara.token_refused"
            )
        ).all()
    # Refusals of a known client are its org's events; an unknown client has no org.
    assert [tuple(r) for r in refusals] == [(a, "invalid_scope")] * 2 + [(a, "invalid_client")] * 2


def test_revoking_a_client_ends_its_tokens_and_refuses_new_ones(
    engine: Engine, orgs: tuple[str, str, str]
) -> None:
    a, _, _ = orgs
    client, secret = _create(engine, a)
    issued = _issue(engine, client.id, secret)
    assert isinstance(issued, IssuedToken)
    with engine.begin() as conn:
        clients.revoke_client(conn, a, client.id, actor="x", now=NOW)
        assert clients.authenticate_token(conn, issued.access_token, NOW) is None
    assert isinstance(_issue(engine, client.id, secret), Refused)


def test_expired_tokens_are_pruned_when_tokens_are_issued(
    engine: Engine, orgs: tuple[str, str, str]
) -> None:
    a, _, _ = orgs
    client, secret = _create(engine, a)
    for _ in range(3):
        _issue(engine, client.id, secret)
    _issue(engine, client.id, secret, now=NOW + timedelta(minutes=30))
    _issue(engine, client.id, secret, now=NOW + timedelta(hours=1))
    with engine.connect() as conn:
        left = conn.scalar(select(func.count()).select_from(schema.oauth_tokens))
        pruned = clients.prune_expired(conn, NOW + timedelta(hours=3))
    assert left == 2  # the three of NOW expired at NOW + 1h
    assert pruned == 2
