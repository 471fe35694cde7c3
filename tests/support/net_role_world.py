"""An org for the net role's tests, written through the use cases so the change feed
carries every step: two people with an active SIM each, their live sessions (as the AAA
writer commits them: the row and its SESSION change in one transaction), a site with a
private network, and network rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from ztsim.feed import outbox
from ztsim.feed.change import NewChange, Topic
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.net.sites import TunnelKind
from ztsim.net.store import sites
from ztsim.policy.rules import PolicyRule
from ztsim.policy.store import rules as rule_store
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions_repo
from ztsim.sessions.table import Session

from support.factories import make_sims, stock_csv


@dataclass(frozen=True)
class Person:
    identity_id: str
    iccid: str
    imsi: str


@dataclass(frozen=True)
class NetWorld:
    org_id: str
    alice: Person
    bob: Person


def build_world(engine: Engine, sealer: Sealer, *, seed: int = 7) -> NetWorld:
    now = datetime.now(UTC)
    specs = make_sims(2, seed=seed)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Net Org", f"net{seed}", now)
        people = [
            identities.create_identity(
                conn, org.id, kind=IdentityKind.USER, name=n, email=None, external_id=None, now=now
            )
            for n in ("Alice", "Bob")
        ]
        service.import_stock(
            conn,
            sealer,
            org.id,
            parse_stock_csv(stock_csv(specs)),
            filename="net.csv",
            kind=SimKind.PHYSICAL,
            actor="test",
            now=now,
        )
        for spec, person in zip(specs, people, strict=True):
            for action in (SimAction.ASSIGN, SimAction.ACTIVATE):
                service.change_state(
                    conn,
                    org.id,
                    spec.iccid,
                    action,
                    actor="test",
                    reason="",
                    now=now,
                    identity_id=person.id if action is SimAction.ASSIGN else None,
                )
    alice, bob = (Person(p.id, s.iccid, s.imsi) for p, s in zip(people, specs, strict=True))
    return NetWorld(org.id, alice, bob)


def start_session(engine: Engine, world: NetWorld, person: Person, address: str) -> int:
    """A live session at `address`, committed with its SESSION change; the feed position."""
    now = datetime.now(UTC)
    session = Session(
        world.org_id, "gw-1", f"acct-{address}", "192.0.2.1", person.imsi, person.iccid,
        person.identity_id, None, None, address, "corp", None, None, now, now,
    )  # fmt: skip
    change = NewChange(world.org_id, Topic.SESSION, address, {"iccid": person.iccid})
    with engine.begin() as conn:
        sessions_repo.save(conn, [session])
        outbox.publish(conn, [change], now)
        return outbox.position(conn)


def add_site(
    engine: Engine, world: NetWorld, cidr: str, *, vni: int = 4100, name: str = "hq"
) -> int:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        site = sites.create_site(
            conn, world.org_id, name=name, tunnel=TunnelKind.VXLAN, endpoint="192.0.2.50",
            vni=vni, actor="test", now=now,
        )  # fmt: skip
        sites.add_network(
            conn, world.org_id, site.id, name=f"{name}-lan", cidr=cidr, actor="test",
            now=now,
        )  # fmt: skip
        return outbox.position(conn)


def add_rule(
    engine: Engine, world: NetWorld, name: str, action: str, **spec: Any
) -> tuple[str, int]:
    """A network rule appended to the org's; its id and the feed position."""
    rule = PolicyRule.from_spec("network", name, action, spec)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        stored = rule_store.create_rule(conn, world.org_id, rule, None, actor="test", now=now)
        return stored.id, outbox.position(conn)


def replace_rule(
    engine: Engine, world: NetWorld, rule_id: str, name: str, action: str, **spec: Any
) -> int:
    rule = PolicyRule.from_spec("network", name, action, spec)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        rule_store.replace_rule(conn, world.org_id, rule_id, rule, None, actor="test", now=now)
        return outbox.position(conn)


def suspend(engine: Engine, world: NetWorld, person: Person) -> int:
    """The SIM suspended through the inventory's use case; the feed position."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        service.change_state(
            conn, world.org_id, person.iccid, SimAction.SUSPEND, actor="test", reason="lost",
            now=now,
        )  # fmt: skip
        return outbox.position(conn)
