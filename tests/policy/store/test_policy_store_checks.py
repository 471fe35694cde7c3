"""Posture checks in the database: found by id or name, changed by use cases that audit and
publish to the policy and DNS planes, never deleted or renamed from under the rules that
require them, never another org's (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from ztsim.errors import Conflict, NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.policy.checks import PostureCheck
from ztsim.policy.rules import PolicyRule
from ztsim.policy.store import checks, rules

from support.traces import refused, run
from tests_clock import NOW

MANAGED = PostureCheck("managed", "device.managed", timedelta(hours=4))


def _orgs(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        return (
            identities.create_org(conn, "A", "a", NOW).id,
            identities.create_org(conn, "B", "b", NOW).id,
        )


def test_create_read_replace_and_delete(engine: Engine) -> None:
    org, other = _orgs(engine)
    stored, left = run(engine, lambda c: checks.create_check(c, org, MANAGED, actor="t", now=NOW))
    assert stored.check == MANAGED
    assert left.kinds == ["policy.check.created"]
    assert left.topics == [(Topic.POLICY, org), (Topic.DNS, org)]
    with engine.connect() as conn:
        assert checks.get_check(conn, org, "managed") == checks.get_check(conn, org, stored.id)
        assert [s.name for s in checks.list_checks(conn, org)] == ["managed"]
        assert checks.list_checks(conn, other) == []
    refused(engine, NotFound, lambda c: checks.get_check(c, other, stored.id))
    refused(engine, Conflict, lambda c: checks.create_check(c, org, MANAGED, actor="t", now=NOW))

    modern = PostureCheck("modern", 'device.os_version >= "17.0"')
    later = NOW + timedelta(minutes=1)
    replaced, left = run(
        engine, lambda c: checks.replace_check(c, org, "managed", modern, actor="t", now=later)
    )
    assert (replaced.id, replaced.check, replaced.updated_at) == (stored.id, modern, later)
    assert left.kinds == ["policy.check.updated"]
    assert left.topics == [(Topic.POLICY, org), (Topic.DNS, org)]
    refused(
        engine,
        NotFound,
        lambda c: checks.replace_check(c, other, stored.id, modern, actor="t", now=NOW),
    )
    _, left = run(engine, lambda c: checks.delete_check(c, org, stored.id, actor="t", now=NOW))
    assert left.kinds == ["policy.check.deleted"]
    with engine.connect() as conn:
        assert checks.list_checks(conn, org) == []


def test_a_check_rules_require_stays(engine: Engine) -> None:
    org, _ = _orgs(engine)
    run(engine, lambda c: checks.create_check(c, org, MANAGED, actor="t", now=NOW))
    uses = PolicyRule.from_spec("network", "fin", "allow", {"posture": ["!managed"]})
    run(engine, lambda c: rules.create_rule(c, org, uses, None, actor="t", now=NOW))
    with engine.connect() as conn:
        assert checks.rules_requiring(conn, org, "managed") == ["network/fin"]
    refused(engine, Conflict, lambda c: checks.delete_check(c, org, "managed", actor="t", now=NOW))
    renamed = PostureCheck("managed-2", "device.managed")
    refused(
        engine,
        Conflict,
        lambda c: checks.replace_check(c, org, "managed", renamed, actor="t", now=NOW),
    )
    # The same name with a new expression is fine: the rules still find it.
    stricter = PostureCheck("managed", "device.managed and device.compliant")
    stored, _ = run(
        engine, lambda c: checks.replace_check(c, org, "managed", stricter, actor="t", now=NOW)
    )
    assert stored.check.expression == "device.managed and device.compliant"
