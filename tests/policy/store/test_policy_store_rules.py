"""Policy rules in the database: every plane listed in order, the network and attach planes
written (the dns plane's rows stay DNS rules), positions as the DNS rules keep them, posture
checks that must exist, never another org's (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine

from ztsim.dns.policy.rules import Action, Rule
from ztsim.dns.store import service as dns
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.policy.checks import PostureCheck
from ztsim.policy.rules import Plane, PolicyRule
from ztsim.policy.store import checks, rules

from support.traces import refused, run
from tests_clock import NOW


def _rule(plane: str, name: str, **spec: object) -> PolicyRule:
    return PolicyRule.from_spec(plane, name, "allow", spec)


def _org(engine: Engine, slug: str = "a") -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, slug.upper(), slug, NOW).id


def _create(engine: Engine, org: str, rule: PolicyRule, position: int | None = None) -> str:
    stored, _ = run(engine, lambda c: rules.create_rule(c, org, rule, position, actor="t", now=NOW))
    return str(stored.id)


def _names(engine: Engine, org: str, plane: Plane | None = None) -> list[str]:
    with engine.connect() as conn:
        return [f"{s.plane}/{s.name}" for s in rules.list_rules(conn, org, plane)]


def test_rules_are_ordered_per_plane_and_every_plane_is_listed(engine: Engine) -> None:
    org, other = _org(engine), _org(engine, "b")
    with engine.begin() as conn:
        dns.create_rule(
            conn, org, Rule("ads", Action.BLOCK, domains=(".ads.test",)), None, actor="t", now=NOW
        )
    stored, left = run(
        engine,
        lambda c: rules.create_rule(
            c, org, _rule("attach", "corp", apns=["corp"]), None, actor="t", now=NOW
        ),
    )
    assert left.kinds == ["policy.rule.created"]
    assert left.topics == [(Topic.POLICY, org)]
    # Without a position a rule goes last in its plane; ties would fall to the ids.
    _create(engine, org, _rule("network", "b", cidrs=["10.2.0.0/16"]), position=1)
    _create(engine, org, _rule("network", "c", cidrs=["10.3.0.0/16"]))
    _create(engine, org, _rule("network", "a", cidrs=["10.1.0.0/16"]), position=0)
    assert _names(engine, org) == ["dns/ads", "network/a", "network/b", "network/c", "attach/corp"]
    assert _names(engine, org, Plane.NETWORK) == ["network/a", "network/b", "network/c"]
    assert _names(engine, other) == []
    with engine.connect() as conn:
        assert rules.get_rule(conn, org, stored.id).rule.to_spec() == {"apns": ["corp"]}
        found = rules.list_rules(conn, org, Plane.NETWORK)
    assert [s.position for s in found] == [0, 1, 2]  # c went after b
    refused(engine, NotFound, lambda c: rules.get_rule(c, other, stored.id))
    refused(
        engine,
        Conflict,
        lambda c: rules.create_rule(c, org, _rule("network", "b"), None, actor="t", now=NOW),
    )


def test_replace_keeps_the_place_and_the_plane(engine: Engine) -> None:
    org = _org(engine)
    first = _create(engine, org, _rule("network", "first", cidrs=["10.1.0.0/16"]))
    _create(engine, org, _rule("network", "second"))
    wider = _rule("network", "first", cidrs=["10.0.0.0/8"], protocol="tcp", ports=["443"])
    stored, left = run(
        engine, lambda c: rules.replace_rule(c, org, first, wider, None, actor="t", now=NOW)
    )
    assert (stored.position, stored.rule) == (0, wider)
    assert left.kinds == ["policy.rule.updated"]
    assert left.topics == [(Topic.POLICY, org)]
    moved, _ = run(
        engine, lambda c: rules.replace_rule(c, org, first, wider, 5, actor="t", now=NOW)
    )
    assert moved.position == 5
    assert _names(engine, org) == ["network/second", "network/first"]
    refused(
        engine,
        InvalidInput,
        lambda c: rules.replace_rule(
            c, org, first, _rule("attach", "first"), None, actor="t", now=NOW
        ),
    )
    _, left = run(engine, lambda c: rules.delete_rule(c, org, first, actor="t", now=NOW))
    assert left.kinds == ["policy.rule.deleted"]
    assert _names(engine, org) == ["network/second"]


def test_dns_rows_are_read_here_and_written_as_dns_rules(engine: Engine) -> None:
    org = _org(engine)
    with engine.begin() as conn:
        dns_rule = dns.create_rule(
            conn, org, Rule("ads", Action.BLOCK, domains=(".ads.test",)), None, actor="t", now=NOW
        )
    refused(
        engine,
        Conflict,
        lambda c: rules.create_rule(c, org, _rule("dns", "x"), None, actor="t", now=NOW),
    )
    refused(engine, Conflict, lambda c: rules.delete_rule(c, org, dns_rule.id, actor="t", now=NOW))
    refused(
        engine,
        Conflict,
        lambda c: rules.replace_rule(
            c, org, dns_rule.id, _rule("dns", "ads"), None, actor="t", now=NOW
        ),
    )


def test_a_rule_needs_the_checks_it_requires(engine: Engine) -> None:
    org = _org(engine)
    needy = _rule("network", "needy", posture=["managed", "!jailbroken"])
    refused(engine, NotFound, lambda c: rules.create_rule(c, org, needy, None, actor="t", now=NOW))
    with engine.begin() as conn:
        for name in ("managed", "jailbroken"):
            check = PostureCheck(name, f"device.{name}")
            checks.create_check(conn, org, check, actor="t", now=NOW)
    _create(engine, org, needy)
    assert _names(engine, org) == ["network/needy"]
