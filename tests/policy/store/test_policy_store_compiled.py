"""A gateway plane's stored rules compiled per org: in order, every existing org or only
those with rules, an unreadable rule read as a deny of everything in its place, and two
readings compared (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ztsim.db import schema
from ztsim.errors import InvalidInput
from ztsim.identity import repository as identities
from ztsim.policy.rules import AttachTarget, NetworkTarget, Plane, PolicyRule
from ztsim.policy.store import rules
from ztsim.policy.store.compiled import read_compiled, readable_rule, same_policy

from support.traces import run
from tests_clock import NOW


def _org(engine: Engine, slug: str) -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, slug.upper(), slug, NOW).id


def _add(engine: Engine, org: str, plane: str, name: str, action: str, **spec: object) -> None:
    rule = PolicyRule.from_spec(plane, name, action, spec)
    run(engine, lambda c: rules.create_rule(c, org, rule, None, actor="t", now=NOW))


def test_rules_in_order_per_org_and_plane(engine: Engine) -> None:
    a, b, bare = _org(engine, "a"), _org(engine, "b"), _org(engine, "c")
    _add(engine, a, "network", "web", "allow", cidrs=["10.1.0.0/16"], protocol="tcp", ports=["443"])
    _add(engine, a, "network", "ssh", "deny", cidrs=["10.1.2.0/24"])
    _add(engine, a, "attach", "no-internet", "deny", apns=["internet"])
    _add(engine, b, "network", "all", "allow")
    with engine.connect() as conn:
        network = read_compiled(conn, Plane.NETWORK)
        attach = read_compiled(conn, Plane.ATTACH)
        every = read_compiled(conn, Plane.NETWORK, every_org=True)
        named = read_compiled(conn, Plane.NETWORK, [b, "no-such-org"], every_org=True)
    assert [r.name for r in network[a].rules] == ["web", "ssh"]
    assert set(network) == {a, b}
    assert set(attach) == {a}
    assert set(every) == {a, b, bare}
    assert every[bare].rules == ()
    assert set(named) == {b}
    assert same_policy(named[b], network[b])
    assert not same_policy(network[a], network[b])
    assert same_policy(None, None)
    assert not same_policy(None, network[b])


def test_an_unreadable_stored_rule_denies_everything_in_its_place(engine: Engine) -> None:
    org = _org(engine, "a")
    _add(engine, org, "network", "web", "allow", cidrs=["10.1.0.0/16"])
    with engine.begin() as conn:
        # As a rule stored before a stricter parser would be: its spec no longer reads.
        conn.execute(
            schema.policy_rules.update()
            .where(schema.policy_rules.c.name == "web")
            .values(spec={"cidrs": ["not a network"]})
        )
        (read,) = read_compiled(conn, Plane.NETWORK)[org].rules
    assert (read.name, read.action) == ("web", "deny")
    assert read.target == NetworkTarget()


def test_readable_rule_fails_closed_for_each_gateway_plane() -> None:
    allowed = readable_rule(Plane.NETWORK, "ok", "allow", {"cidrs": ["10.0.0.0/8"]})
    assert allowed.action == "allow"
    attach = readable_rule(Plane.ATTACH, "bad", "allow", {"no_such_field": ["x"]})
    assert (attach.action, attach.target) == ("deny", AttachTarget())
    renamed = readable_rule(Plane.NETWORK, "not a name!", "allow", {"cidrs": ["x"]})
    assert (renamed.name, renamed.action) == ("unreadable", "deny")
    assert renamed.target == NetworkTarget()


def test_the_dns_plane_is_not_read_here(engine: Engine) -> None:
    """The DNS gateway reads its rules through its own store (lists, categories)."""
    with engine.connect() as conn, pytest.raises(InvalidInput, match="its own gateway"):
        read_compiled(conn, Plane.DNS)
