"""An org's stored rules of one gateway plane (`attach`, `network`), compiled for the
gateway that enforces them: read in rule order with the org's posture checks.

A rule stored before a stricter parser is read as a deny of everything from its place
on, named as it was: an unreadable rule never lets a SIM in or opens a network (fail
closed). The RADIUS attach classes and the net role's classes read their policies here.
Read-only, off every hot path.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.errors import InvalidInput
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.rules import AttachTarget, NetworkTarget, Plane, PolicyRule
from ztsim.policy.store.facts import read_checks

_r, _orgs = schema.policy_rules, schema.orgs
_MATCH_ALL = {Plane.ATTACH: AttachTarget, Plane.NETWORK: NetworkTarget}


def readable_rule(plane: Plane, name: str, action: str, spec: Mapping[str, Any]) -> PolicyRule:
    """The stored rule, or a deny of everything in its place when it no longer parses."""
    try:
        return PolicyRule.from_spec(plane.value, name, action, spec)
    except InvalidInput:
        pass
    target = _MATCH_ALL[plane]()
    try:
        return PolicyRule(name, plane, "deny", target=target)
    except InvalidInput:
        return PolicyRule("unreadable", plane, "deny", target=target)


def read_compiled(
    conn: Connection,
    plane: Plane,
    org_ids: Collection[str] | None = None,
    *,
    every_org: bool = False,
) -> dict[str, CompiledPolicy]:
    """The compiled `plane` policy of each org (of `org_ids`, or all) that has rules of
    it, or of every existing org with `every_org` (one without rules: the plane's
    default); rules in order (position, then id). An org that does not exist is absent."""
    if plane not in _MATCH_ALL:
        raise InvalidInput(f"plane {plane.value}: read by its own gateway, not here")
    query = (
        select(_r.c.org_id, _r.c.name, _r.c.action, _r.c.spec)
        .where(_r.c.plane == plane.value)
        .order_by(_r.c.org_id, _r.c.position, _r.c.id)
    )
    rules: dict[str, list[PolicyRule]] = {}
    if every_org:
        rules = {row[0]: [] for row in rows_in(conn, select(_orgs.c.id), _orgs.c.id, org_ids)}
    # Each org's rules come in one chunk, so the ORDER BY holds within it.
    for org_id, name, action, spec in rows_in(conn, query, _r.c.org_id, org_ids):
        if every_org and org_id not in rules:
            continue
        rules.setdefault(org_id, []).append(readable_rule(plane, name, action, spec))
    checks = read_checks(conn, None if org_ids is None else list(rules)) if rules else {}
    return {
        org_id: CompiledPolicy(org_id, org_rules, checks.get(org_id, {}))
        for org_id, org_rules in rules.items()
    }


def same_policy(a: CompiledPolicy | None, b: CompiledPolicy | None) -> bool:
    """Whether two compiled policies classify and decide alike (rules in order, checks)."""
    if a is None or b is None:
        return a is b
    return a.rules == b.rules and dict(a.checks) == dict(b.checks)
