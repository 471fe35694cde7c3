"""The attach policies' part of the AAA snapshot, read from the database (SQLite and
PostgreSQL): a load classifies every SIM of the orgs with attach rules and nothing of
the others; a batch of changes re-reads only the SIMs it names (a device's, an
identity's), or recompiles an org whose rules now decide differently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.identity import repository as identities
from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import Posture
from ztsim.policy.posture import DeviceRef, PostureReport
from ztsim.policy.rules import PolicyRule
from ztsim.policy.store import checks as check_store
from ztsim.policy.store import posture as posture_store
from ztsim.policy.store import rules as rule_store
from ztsim.radius.aaa.attach import AttachState, classify_all, judge
from ztsim.radius.store import attach_policy
from ztsim.radius.store.attach_policy import load_attach, read_attach
from ztsim.sealing import Sealer

from support.radius_world import APN, World, build_world

NOW = datetime.now(UTC).replace(microsecond=0)
CHECK = PostureCheck("managed-modern", 'device.managed and device.os_version >= "17.0"')
DENY_UNMANAGED = PolicyRule.from_spec(
    "attach", "unmanaged-no-corp", "deny", {"posture": ["!managed-modern"], "apns": [APN]}
)


def _rules(engine: Engine, org_id: str, *rules: PolicyRule) -> None:
    with engine.begin() as conn:
        if not check_store.list_checks(conn, org_id):
            check_store.create_check(conn, org_id, CHECK, actor="t", now=NOW)
        for rule in rules:
            rule_store.create_rule(conn, org_id, rule, None, actor="t", now=NOW)


def _device(engine: Engine, org_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(schema.devices.c.id).where(schema.devices.c.org_id == org_id)
            ).scalar_one()
        )


def _report(engine: Engine, world: World, *, managed: bool, age: int = 60) -> str:
    """A report on the world's device, observed `age` seconds ago."""
    device_id = _device(engine, world.org_id)
    posture = Posture({"managed": managed, "os_version": "17.4"}, NOW - timedelta(seconds=age))
    with engine.begin() as conn:
        posture_store.record(
            conn, world.org_id, [PostureReport(DeviceRef(device_id=device_id), posture)],
            actor="mdm", now=NOW,
        )  # fmt: skip
    return device_id


def _load(engine: Engine) -> AttachState:
    with engine.connect() as conn:
        return load_attach(conn, NOW)


def _allowed(state: AttachState, org_id: str, imsi: str) -> bool:
    return judge(state.policies[org_id], state.classes.get(imsi), APN, NOW).action == "allow"


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    return build_world(engine, sealer)


def test_orgs_without_attach_rules_cost_nothing(engine: Engine, world: World) -> None:
    state = _load(engine)
    assert (state.policies, state.classes, len(state.due)) == ({}, {}, 0)


@pytest.mark.parametrize("whole", [False, True])
def test_a_load_classifies_every_sim_of_an_org_with_rules(
    engine: Engine, sealer: Sealer, world: World, whole: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if whole:  # the facts read as whole tables, as for many SIMs
        monkeypatch.setattr(attach_policy, "WHOLE_READ", 0)
    other = build_world(engine, sealer, seed=7, address="127.0.0.2", pool=("10.80.0.0/16", "10.81.0.0/24"))  # fmt: skip
    _rules(engine, world.org_id, DENY_UNMANAGED)
    _report(engine, world, managed=True)
    state = _load(engine)
    assert set(state.policies) == {world.org_id}
    assert {e.policy.org_id for e in state.classes.values()} == {world.org_id}
    assert other.active not in state.classes
    # Every SIM that is not retired, in stock or not.
    assert {world.active, world.unbound, world.suspended, world.disabled, world.stock} <= set(
        state.classes
    )
    assert _allowed(state, world.org_id, world.active)
    # No device, so no posture: `!managed-modern` holds and the rule refuses.
    assert not _allowed(state, world.org_id, world.unbound)
    # The report ages: the bound SIMs are scheduled for then.
    entry = state.classes[world.active]
    assert entry.until == NOW - timedelta(minutes=1) + CHECK.max_age
    assert state.due.next() == entry.until


def test_a_posture_report_names_the_sims_bound_to_the_device(engine: Engine, world: World) -> None:
    _rules(engine, world.org_id, DENY_UNMANAGED)
    _report(engine, world, managed=True)
    state = _load(engine)
    device_id = _report(engine, world, managed=False, age=30)
    with engine.connect() as conn:
        read = read_attach(conn, state.policies, NOW, device_ids={device_id})
    assert (read.policies, read.classes) == ({}, {})
    # build_world binds the device to the active, suspended and disabled-holder SIMs.
    assert set(read.subjects) == {world.active, world.suspended, world.disabled}
    state.patch(read.policies, classify_all(state.policies, read.subjects, NOW))
    assert not _allowed(state, world.org_id, world.active)


def test_an_identity_or_sim_change_names_its_sims_and_a_retired_one_is_forgotten(
    engine: Engine, world: World
) -> None:
    _rules(engine, world.org_id, DENY_UNMANAGED)
    state = _load(engine)
    with engine.connect() as conn:
        read = read_attach(conn, state.policies, NOW, identity_ids={world.identity_id})
    assert set(read.subjects) == {world.active, world.unbound, world.suspended}
    with engine.begin() as conn:
        conn.execute(
            schema.sims.update()
            .where(schema.sims.c.iccid == world.unbound_iccid)
            .values(state="retired")
        )
        read = read_attach(conn, state.policies, NOW, iccids={world.unbound_iccid})
    assert read.subjects == {world.unbound: None}


def test_a_swaps_cooling_off_is_read_with_the_sim_and_comes_due_at_its_end(
    engine: Engine, world: World
) -> None:
    cooling = PolicyRule.from_spec(
        "attach", "cooling-off", "deny", {"sim": ["sim.swap_recent"], "apns": [APN]}
    )
    _rules(engine, world.org_id, cooling)
    ends = NOW + timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(
            schema.sims.update()
            .where(schema.sims.c.iccid == world.unbound_iccid)
            .values(swapped_at=NOW, swap_recent_until=ends)
        )
    state = _load(engine)
    assert not _allowed(state, world.org_id, world.unbound)
    assert _allowed(state, world.org_id, world.active)  # not swapped
    assert state.classes[world.unbound].until == ends
    assert state.due.next() == ends
    assert state.reclassify_due(ends, 10) == [world.unbound]
    assert judge(state.policies[world.org_id], state.classes[world.unbound], APN, ends).action == (
        "allow"
    )


def test_an_org_without_rules_is_not_re_read_for_its_changes(engine: Engine, world: World) -> None:
    device_id = _report(engine, world, managed=False)
    with engine.connect() as conn:
        read = read_attach(conn, {}, NOW, device_ids={device_id}, identity_ids={world.identity_id})
    assert (read.policies, read.classes, read.subjects) == ({}, {}, {})


def test_a_policy_change_recompiles_the_org_only_when_it_decides_differently(
    engine: Engine, world: World
) -> None:
    _rules(engine, world.org_id, DENY_UNMANAGED)
    state = _load(engine)
    with engine.connect() as conn:
        same = read_attach(conn, state.policies, NOW, policy_orgs={world.org_id})
    assert (same.policies, same.classes) == ({}, {})  # e.g. a DNS rule changed
    # A group that everybody in it is refused the APN.
    with engine.begin() as conn:
        group = identities.create_collection(conn, world.org_id, "contractors", NOW, fleet=False)
        identities.add_member(conn, world.org_id, group.id, world.identity_id, fleet=False)
        rule = PolicyRule.from_spec("attach", "no-contractors", "deny", {"groups": [group.id]})
        rule_store.create_rule(conn, world.org_id, rule, -1, actor="t", now=NOW)
        read = read_attach(conn, state.policies, NOW, policy_orgs={world.org_id})
    new = read.policies[world.org_id]
    assert new is not None
    assert [r.name for r in new.rules] == ["no-contractors", "unmanaged-no-corp"]
    # Every SIM of the org, classified under the new policy (nothing left to the lock).
    assert set(read.classes) >= {world.active, world.disabled}
    assert read.subjects == {}
    state.patch(read.policies, read.classes)
    decision = judge(new, state.classes[world.active], APN, NOW)
    assert decision.reasons == ("rule:no-contractors",)
    assert judge(new, state.classes[world.disabled], "other", NOW).action == "allow"
    # Without attach rules the org is dropped, and so are its SIMs' classes.
    with engine.begin() as conn:
        conn.execute(schema.policy_rules.delete())
        gone = read_attach(conn, state.policies, NOW, policy_orgs={world.org_id})
    assert gone.policies == {world.org_id: None}
    assert set(gone.classes) == set(state.classes)
    assert set(gone.classes.values()) == {None}


def test_a_stored_rule_that_no_longer_reads_refuses_everyone(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(schema.policy_rules).values(
                id=new_id(), org_id=world.org_id, plane="attach", name="legacy", position=0,
                action="allow", spec={"apns": "not-a-list"}, created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
    state = _load(engine)
    decision = judge(state.policies[world.org_id], state.classes[world.active], APN, NOW)
    assert (decision.action, decision.rule) == ("deny", "legacy")
