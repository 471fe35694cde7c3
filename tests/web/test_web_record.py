"""The employee's record: their own objects and events, nobody else's; their open eSIM
order's activation code (tested in test_web_own_onboarding); the words on privacy, retention
and readers."""

from __future__ import annotations

import pytest

from ztsim.errors import Forbidden
from ztsim.events import store
from ztsim.events.schema import NewEvent
from ztsim.identity import token_store
from ztsim.identity.roles import Principal, Role
from ztsim.web import record

from support.api import ApiHarness
from support.world import World


def _principal(api: ApiHarness, token: str) -> Principal:
    with api.engine.connect() as conn:
        found = token_store.authenticate(conn, token, api.clock())
    assert found is not None
    return found


def test_the_record_holds_the_person_s_own_objects_and_events(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    me = alpha.ids["identity_id"]
    with api.engine.begin() as conn:
        store.append(
            conn,
            [
                NewEvent(alpha.org.id, "dns.query", "dns", f"identity:{me}", reason="mine"),
                NewEvent(alpha.org.id, "dns.query", "dns", "identity:someone-else", reason="x"),
            ],
            api.clock(),
        )
    principal = _principal(api, alpha.org.tokens[Role.SELF])
    with api.engine.connect() as conn:
        r = record.read(conn, principal, api.ctx.sealer, api.clock())
    assert r.person.id == me
    assert r.onboarding is None  # two_orgs ordered an eSIM for another employee
    assert [s.iccid for s in r.sims] == [alpha.ids["iccid"]]
    assert [d.id for d in r.devices] == [alpha.ids["device_id"]]
    assert any(e.reason == "mine" for e in r.events)
    assert all(e.subject != "identity:someone-else" for e in r.events)
    own = {f"identity:{me}", f"sim:{alpha.ids['iccid']}", f"device:{alpha.ids['device_id']}"}
    assert {e.subject for e in r.events} <= own
    assert "blocks" in r.privacy or "records" in r.privacy
    assert "kept" in r.retention


def test_an_org_wide_principal_has_no_record(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, _ = two_orgs
    principal = _principal(api, alpha.org.tokens[Role.ADMIN])
    with api.engine.connect() as conn, pytest.raises(Forbidden):
        record.read(conn, principal, api.ctx.sealer, api.clock())


def test_readers_are_the_roles_that_read_events() -> None:
    assert record.readers() == ["administrators", "security analysts", "auditors"]
