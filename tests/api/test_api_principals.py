"""The gate's cache of authenticated tokens: bounded in time and size, never past a
token's expiry, forgotten at once by this process's revocations and identity changes,
and followed within its ttl when another process revokes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from ztsim.api.context import ApiContext
from ztsim.api.principals import PrincipalCache
from ztsim.clock import utc_now
from ztsim.db import schema
from ztsim.identity.roles import Principal, Role
from ztsim.sealing import Sealer

from support.api import ApiHarness, harness

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ADA = Principal("org-1", Role.ADMIN, "token-1")
KEY = b"\x01" * 32


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_kept_for_the_ttl_and_no_longer() -> None:
    ticks = Ticks()
    cache = PrincipalCache(ttl=1.0, clock=ticks)
    cache.put(KEY, ADA, None, cache.generation)
    ticks.now += 0.99
    assert cache.get(KEY, T0) == ADA
    ticks.now += 0.02
    assert cache.get(KEY, T0) is None
    assert len(cache) == 0


def test_an_entry_never_outlives_the_token() -> None:
    cache = PrincipalCache(ttl=60.0, clock=Ticks())
    cache.put(KEY, ADA, T0 + timedelta(seconds=5), cache.generation)
    assert cache.get(KEY, T0 + timedelta(seconds=4)) == ADA
    assert cache.get(KEY, T0 + timedelta(seconds=5)) is None


def test_a_lookup_that_began_before_forget_all_is_not_stored() -> None:
    cache = PrincipalCache(clock=Ticks())
    began = cache.generation
    cache.put(KEY, ADA, None, began)
    cache.forget_all()
    assert cache.get(KEY, T0) is None
    cache.put(KEY, ADA, None, began)  # read before the revocation committed: stale
    assert cache.get(KEY, T0) is None
    cache.put(KEY, ADA, None, cache.generation)
    assert cache.get(KEY, T0) == ADA


def test_the_cache_stays_bounded_under_many_tokens() -> None:
    cache = PrincipalCache(capacity=100, clock=Ticks())
    for n in range(1_000):
        cache.put(n.to_bytes(32, "big"), ADA, None, cache.generation)
        assert len(cache) <= 100


def test_ttl_zero_keeps_nothing() -> None:
    cache = PrincipalCache(ttl=0.0, clock=Ticks())
    cache.put(KEY, ADA, None, cache.generation)
    assert cache.get(KEY, T0) is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="ttl >= 0 and capacity >= 1"):
        PrincipalCache(ttl=-1.0)
    with pytest.raises(ValueError, match="ttl >= 0 and capacity >= 1"):
        PrincipalCache(capacity=0)


# -- through the gate ----------------------------------------------------------------------


def test_a_token_revoked_through_the_api_is_refused_on_its_next_request(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    operator = org.auth(Role.OPERATOR)
    assert api.client.get("/api/v1/me", headers=operator).status_code == 200  # now cached
    token_id = api.client.get("/api/v1/me", headers=operator).json()["token_id"]
    assert api.client.delete(f"/api/v1/tokens/{token_id}", headers=org.auth()).status_code == 200
    assert api.client.get("/api/v1/me", headers=operator).status_code == 401


def test_a_disabled_identitys_token_is_refused_on_its_next_request(api: ApiHarness) -> None:
    org = api.new_org("alpha")
    body = {"kind": "user", "name": "Ada", "email": "ada@example.test"}
    identity = api.client.post("/api/v1/identities", json=body, headers=org.auth()).json()["id"]
    api.add_self_token(org, identity)
    own = org.auth(Role.SELF)
    assert api.client.get("/api/v1/me", headers=own).status_code == 200
    patch = {"enabled": False}
    r = api.client.patch(f"/api/v1/identities/{identity}", json=patch, headers=org.auth())
    assert r.status_code == 200
    assert api.client.get("/api/v1/me", headers=own).status_code == 401


def test_another_processs_revocation_is_followed_within_the_ttl(
    sqlite_engine: Engine, sealer: Sealer
) -> None:
    ticks = Ticks()
    with harness(sqlite_engine, sealer) as h:
        h.ctx = ApiContext(sqlite_engine, sealer, h.clock, principals=PrincipalCache(clock=ticks))
        h.app.state.ctx = h.ctx
        org = h.new_org("alpha")
        operator = org.auth(Role.OPERATOR)
        token_id = h.client.get("/api/v1/me", headers=operator).json()["token_id"]
        with sqlite_engine.begin() as conn:  # as `ztsim tokens revoke` does, elsewhere
            conn.execute(
                update(schema.api_tokens)
                .where(schema.api_tokens.c.id == token_id)
                .values(revoked_at=utc_now())
            )
        assert h.client.get("/api/v1/me", headers=operator).status_code == 200
        ticks.now += 1.0  # the ttl
        assert h.client.get("/api/v1/me", headers=operator).status_code == 401
