"""What the net role reads: every org's compiled network policy (rules in order, checks,
fail closed on an unreadable rule) and the live sessions with an address as subjects
(facts in batches; no subject for a suspended SIM or a disabled identity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from ztsim.db import schema
from ztsim.identity import repository as identities
from ztsim.net.store.network_policy import (
    IDENTITY_DISABLED,
    SIM_NOT_ACTIVE,
    canonical,
    read_policies,
    read_sessions,
)
from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import IdentityKind, SimKind
from ztsim.policy.store import checks as check_store
from ztsim.policy.store.compiled import same_policy
from ztsim.sealing import Sealer

from support.net_role_world import add_rule, build_world, start_session, suspend


def test_every_org_gets_its_network_rules_in_order_and_its_checks(
    engine: Engine, sealer: Sealer
) -> None:
    world = build_world(engine, sealer)
    other = build_world(engine, sealer, seed=8)
    add_rule(engine, world, "first", "allow", cidrs=["10.9.0.0/16"], protocol="tcp")
    add_rule(engine, world, "second", "deny", cidrs=["10.9.1.0/24"])
    add_rule(engine, world, "attach-not-read", "allow")
    with engine.begin() as conn:
        conn.execute(
            update(schema.policy_rules)
            .where(schema.policy_rules.c.name == "attach-not-read")
            .values(plane="attach", spec={})
        )
        check = PostureCheck("managed", "device.managed", timedelta(hours=1))
        check_store.create_check(conn, world.org_id, check, actor="t", now=datetime.now(UTC))
    with engine.connect() as conn:
        policies = read_policies(conn)
        assert [r.name for r in policies[world.org_id].rules] == ["first", "second"]
        assert set(policies[world.org_id].checks) == {"managed"}
        assert policies[other.org_id].rules == ()  # no rules: the plane's default, deny
        named = read_policies(conn, [other.org_id, "no-such-org"])
    assert set(named) == {other.org_id}
    assert same_policy(named[other.org_id], policies[other.org_id])
    assert not same_policy(policies[world.org_id], policies[other.org_id])
    assert same_policy(None, None)
    assert not same_policy(None, policies[other.org_id])


def test_an_unreadable_rule_denies_everything_from_its_place(
    engine: Engine, sealer: Sealer
) -> None:
    world = build_world(engine, sealer)
    add_rule(engine, world, "broken", "allow", cidrs=["10.9.0.0/16"])
    add_rule(engine, world, "after", "allow", cidrs=["10.8.0.0/16"])
    with engine.begin() as conn:
        conn.execute(
            update(schema.policy_rules)
            .where(schema.policy_rules.c.name == "broken")
            .values(spec={"cidrs": ["not a network"]})
        )
    with engine.connect() as conn:
        rules = read_policies(conn)[world.org_id].rules
    assert [(r.name, r.action) for r in rules] == [("broken", "deny"), ("after", "allow")]
    assert rules[0].selector.names_anyone


def test_live_sessions_are_subjects_with_their_facts(engine: Engine, sealer: Sealer) -> None:
    world = build_world(engine, sealer)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        group = identities.create_collection(conn, world.org_id, "staff", now, fleet=False)
        identities.add_member(conn, world.org_id, group.id, world.alice.identity_id, fleet=False)
    start_session(engine, world, world.alice, "10.45.0.2")
    start_session(engine, world, world.bob, "fd00::0:3")
    with engine.connect() as conn:
        every = read_sessions(conn)
        # By the address as stored (the SESSION change's key), found under its canonical form.
        some = read_sessions(conn, {world.org_id: ["fd00::0:3", "10.45.0.99"]})
    assert set(every) == {"10.45.0.2", "fd00::3"}
    alice = every["10.45.0.2"]
    assert (alice.org_id, alice.iccid, alice.identity_id) == (
        world.org_id,
        world.alice.iccid,
        world.alice.identity_id,
    )
    assert alice.subject is not None
    assert alice.subject.group_ids == {group.id}
    assert alice.subject.identity_kind is IdentityKind.USER
    assert alice.subject.sim_kind is SimKind.PHYSICAL
    assert alice.revoked == ""
    assert every["fd00::3"].stored == "fd00::0:3"
    assert set(some) == {"fd00::3"}
    assert some["fd00::3"].subject == every["fd00::3"].subject
    assert canonical("::ffff:10.45.0.2") == "10.45.0.2"


def test_a_suspended_sim_or_a_disabled_identity_has_no_subject(
    engine: Engine, sealer: Sealer
) -> None:
    world = build_world(engine, sealer)
    start_session(engine, world, world.alice, "10.45.0.2")
    start_session(engine, world, world.bob, "10.45.0.3")
    suspend(engine, world, world.alice)
    with engine.begin() as conn:
        identities.update_identity(
            conn, world.org_id, world.bob.identity_id, name=None, enabled=False
        )
    with engine.connect() as conn:
        sessions = read_sessions(conn)
    assert (sessions["10.45.0.2"].subject, sessions["10.45.0.2"].revoked) == (None, SIM_NOT_ACTIVE)
    assert (sessions["10.45.0.3"].subject, sessions["10.45.0.3"].revoked) == (
        None,
        IDENTITY_DISABLED,
    )
    with engine.begin() as conn:
        conn.execute(update(schema.radius_sessions).values(stopped_at=datetime.now(UTC)))
    with engine.connect() as conn:
        assert read_sessions(conn) == {}
        assert read_sessions(conn, {world.org_id: ["10.45.0.2"]}) == {}
