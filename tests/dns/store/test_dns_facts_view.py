"""The facts DNS tags are worked out from: each org's checks and DNS SIM conditions, read
for a batch in a fixed number of queries whatever its size, and none for an org that has
neither; the signature that tells when an org's tags must be read again; a gateway's
copy of them, read again only when refreshed. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, insert, update

from ztsim.db import schema
from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.store.facts_view import Facts, OrgFacts, org_conditions
from ztsim.dns.store.identity_view import load_entries, read_addresses
from ztsim.policy.checks import PostureCheck
from ztsim.policy.store import checks

from support.dns_feed_world import FeedWorld

T1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
MODERN = PostureCheck("modern", 'device.os_version >= "17"', timedelta(hours=2))


@contextmanager
def _counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            statements.append(args[2])

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _people(world: FeedWorld, count: int, start: int = 0) -> None:
    """`count` identities, each with a SIM, a phone reporting posture and a live session."""
    for n in range(start, start + count):
        name, iccid, imsi = f"p{n}", f"89000000000000{n:05d}", f"00101{n:010d}"
        world.identity(name)
        world.sim(iccid, imsi, name)
        with world.write() as conn:
            conn.execute(
                insert(schema.devices).values(
                    id=f"dev-{name}", org_id=world.org, imei=f"35{n:013d}", created_at=T1
                )
            )
            conn.execute(
                insert(schema.device_posture).values(
                    device_id=f"dev-{name}",
                    org_id=world.org,
                    source="mdm",
                    attributes={"os_version": "17.1" if n % 2 else "16.0"},
                    observed_at=T1,
                    received_at=T1,
                )
            )
        world.session(f"s{n}", f"10.0.{n // 200}.{n % 200 + 1}", iccid, imsi, name)


def test_tags_from_checks_conditions_posture_and_signals(engine: Engine) -> None:
    world = FeedWorld(engine)
    _people(world, 2)
    with world.write() as conn:
        checks.create_check(conn, "o1", MODERN, actor="user:admin", now=T1)
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.iccid == "8900000000000000001")
            .values(swapped_at=T1 - timedelta(hours=3))
        )
    world.rule(Rule("a", Action.BLOCK, sim=("sim.swap_age < 4h", 'identity.kind == "user"')))
    world.rule(Rule("b", Action.BLOCK, sim=(" sim.swap_age < 4h",)))  # the same, once
    with engine.connect() as conn:
        entries = load_entries(conn, T1 + timedelta(minutes=30))
        conditions = org_conditions(conn, None)
    assert [c.text for c in conditions["o1"]] == ["sim.swap_age < 4h", 'identity.kind == "user"']
    p0, p1 = entries["10.0.0.1"], entries["10.0.0.2"]
    assert p0.who.tags == {"posture:modern:failed", 'sim:identity.kind == "user"'}
    assert p1.who.tags == {
        "posture:modern:passed",
        'sim:identity.kind == "user"',
        "sim:sim.swap_age < 4h",
    }
    assert p0.until == T1 + timedelta(hours=2)  # the report goes stale
    assert p1.until == T1 + timedelta(hours=1)  # the swap ages past 4 h first
    assert p0.who.tags is entries["10.0.0.1"].who.tags  # interned: shared by equal requesters


def test_a_batch_reads_in_a_fixed_number_of_queries(engine: Engine) -> None:
    world = FeedWorld(engine)
    _people(world, 3)
    with world.write() as conn:
        checks.create_check(conn, "o1", MODERN, actor="user:admin", now=T1)
    world.rule(Rule("a", Action.BLOCK, sim=("sim.swap_age < 4h",)))

    def count(addresses: list[str]) -> tuple[int, int]:
        with engine.connect() as conn, _counted(engine) as statements:
            load_entries(conn, T1)
            full = len(statements)
            read_addresses(conn, {"o1": addresses}, T1)
            return full, len(statements) - full

    few = count(["10.0.0.1", "10.0.0.2"])
    _people(world, 40, start=3)
    many = count([f"10.0.0.{n}" for n in range(1, 41)])
    assert few == many  # no query per entry, in full or by key


def test_orgs_without_checks_or_conditions_read_no_facts(engine: Engine) -> None:
    world = FeedWorld(engine)
    _people(world, 2)
    with engine.connect() as conn, _counted(engine) as statements:
        facts = Facts(conn, T1, [("o1", "dev-p0", "8900000000000000000")])
    assert (facts.checks, facts.conditions, facts.postures, facts.signals) == ({}, {}, {}, {})
    assert len(statements) == 2  # the org's checks and its conditions, nothing about devices
    assert facts.tags("o1", "p0", "user", "esim", "8900000000000000000", "dev-p0") == (
        frozenset(),
        None,
    )


def test_signatures_change_with_checks_and_conditions_only(engine: Engine) -> None:
    world = FeedWorld(engine)
    FeedWorld(engine, "o2")
    with engine.connect() as conn:
        empty = OrgFacts().refresh(conn, ["o1", "o2"])
    assert empty == {"o1": ((), ()), "o2": ((), ())}
    world.rule(Rule("plain", Action.BLOCK, domains=("x.test",)))
    with world.write() as conn:
        assert OrgFacts().refresh(conn, ["o1"]) == {"o1": ((), ())}
        checks.create_check(conn, "o1", MODERN, actor="user:admin", now=T1)
    world.rule(Rule("swap", Action.BLOCK, sim=("sim.swap_age < 4h",)))
    with engine.connect() as conn:
        found = OrgFacts().refresh(conn, ["o1", "o2"])
    assert found["o1"] == (
        (("modern", 'device.os_version >= "17"', timedelta(hours=2)),),
        ("sim.swap_age < 4h",),
    )
    assert found["o2"] == ((), ())


def test_known_org_facts_are_read_once_then_again_only_when_refreshed(engine: Engine) -> None:
    world = FeedWorld(engine)
    _people(world, 2)
    world.rule(Rule("a", Action.BLOCK, sim=("sim.swap_age < 4h",)))
    known = OrgFacts()
    with engine.connect() as conn:
        first = read_addresses(conn, {"o1": ["10.0.0.1"]}, T1, known)
    assert first["10.0.0.1"].who.tags == frozenset()  # no check yet, no swap
    with world.write() as conn:
        checks.create_check(conn, "o1", MODERN, actor="user:admin", now=T1)
    with engine.connect() as conn, _counted(engine) as statements:
        again = read_addresses(conn, {"o1": ["10.0.0.2"]}, T1, known)
    read = " ".join(statements)
    assert "posture_checks" not in read  # the org's facts as last read, not read again
    assert "policy_rules" not in read
    assert again["10.0.0.2"].who.tags == frozenset()  # the check is not known yet
    with engine.connect() as conn:
        signature = known.refresh(conn, ["o1"])  # its POLICY change arrived
        after = read_addresses(conn, {"o1": ["10.0.0.2"]}, T1, known)
    assert signature["o1"][0] == (("modern", 'device.os_version >= "17"', timedelta(hours=2)),)
    assert after["10.0.0.2"].who.tags == {"posture:modern:passed"}
    known.forget_all()
    with engine.connect() as conn, _counted(engine) as statements:
        read_addresses(conn, {"o1": ["10.0.0.1"]}, T1, known)
    assert any("posture_checks" in s for s in statements)  # forgotten: read again
