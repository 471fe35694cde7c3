"""Policy rules in the database: every plane's rows read, the network and attach planes' written.

The `dns` plane's rows are written as DNS rules (`ztsim.dns.store`, /api/v1/dns/rules),
which check them against the DNS plane's own rule type and the org's lists; here they
are only read. Order is the DNS rules' order: by `position`, then id; a new rule without
a position goes last in its plane, a replaced one without a position keeps its place.
Rules that require a posture check the org does not have are refused (NotFound). Every
change is audited (`policy.rule.created|updated|deleted`) and published on
`Topic.POLICY` (key: the org).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.policy.rules import Plane, PolicyRule
from ztsim.usecase import use_case

_r, _c = schema.policy_rules, schema.posture_checks
EDITABLE = frozenset({Plane.NETWORK, Plane.ATTACH})
_PLANE_ORDER = {plane: i for i, plane in enumerate(Plane)}


@dataclass(frozen=True, slots=True)
class StoredPolicyRule:
    id: str
    position: int
    rule: PolicyRule
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def plane(self) -> Plane:
        return self.rule.plane


def _stored(m: RowMapping) -> StoredPolicyRule:
    rule = PolicyRule.from_spec(m["plane"], m["name"], m["action"], m["spec"])
    return StoredPolicyRule(m["id"], m["position"], rule, m["created_at"], m["updated_at"])


def list_rules(conn: Connection, org_id: str, plane: Plane | None = None) -> list[StoredPolicyRule]:
    """The org's rules in order: plane by plane (dns, network, attach), or one plane's."""
    query = select(_r).where(_r.c.org_id == org_id)
    if plane is not None:
        query = query.where(_r.c.plane == plane.value)
    found = [_stored(m) for m in conn.execute(query).mappings()]
    return sorted(found, key=lambda s: (_PLANE_ORDER[s.plane], s.position, s.id))


def get_rule(conn: Connection, org_id: str, rule_id: str) -> StoredPolicyRule:
    m = conn.execute(select(_r).where(_r.c.org_id == org_id, _r.c.id == rule_id)).mappings().first()
    if m is None:
        raise NotFound("no such policy rule")
    return _stored(m)


def check_requirements(conn: Connection, org_id: str, rules: Iterable[PolicyRule]) -> None:
    """NotFound naming the first posture check a rule requires that the org does not have."""
    wanted = {(r.name, p.check) for r in rules for p in r.selector.posture}
    if not wanted:
        return
    known = set(conn.execute(select(_c.c.name).where(_c.c.org_id == org_id)).scalars())
    for rule, check in sorted(wanted):
        if check not in known:
            raise NotFound(f"rule {rule}: no posture check {check!r} in this org")


def _editable(plane: Plane) -> None:
    if plane not in EDITABLE:
        raise Conflict(
            "the dns plane's rules are DNS rules: edit them at /api/v1/dns/rules "
            "(`ztsim dns rules`) or in the policy file"
        )


def _values(rule: PolicyRule, position: int, now: datetime) -> dict[str, object]:
    return {
        "name": rule.name,
        "position": position,
        "action": rule.action,
        "spec": rule.to_spec(),
        "updated_at": now,
    }


def insert_rule(
    conn: Connection, org_id: str, rule: PolicyRule, position: int | None, now: datetime
) -> str:
    """A row for the rule (any plane; callers check the plane), last when no position."""
    if position is None:
        last = conn.execute(
            select(func.max(_r.c.position)).where(
                _r.c.org_id == org_id, _r.c.plane == rule.plane.value
            )
        ).scalar()
        position = 0 if last is None else int(last) + 1
    rule_id = new_id()
    try:
        conn.execute(
            insert(_r).values(
                id=rule_id,
                org_id=org_id,
                plane=rule.plane.value,
                created_at=now,
                **_values(rule, position, now),
            )
        )
    except IntegrityError:
        raise Conflict(f"a {rule.plane} rule named {rule.name} exists") from None
    return rule_id


def update_rule(
    conn: Connection, org_id: str, rule_id: str, rule: PolicyRule, position: int, now: datetime
) -> None:
    try:
        conn.execute(
            update(_r)
            .where(_r.c.org_id == org_id, _r.c.id == rule_id)
            .values(**_values(rule, position, now))
        )
    except IntegrityError:
        raise Conflict(f"a {rule.plane} rule named {rule.name} exists") from None


def create_rule(
    conn: Connection,
    org_id: str,
    rule: PolicyRule,
    position: int | None,
    *,
    actor: str,
    now: datetime,
) -> StoredPolicyRule:
    _editable(rule.plane)
    with use_case(conn, now) as uc:
        check_requirements(conn, org_id, [rule])
        rule_id = insert_rule(conn, org_id, rule, position, now)
        subject = subject_of("policy-rule", rule_id)
        uc.audit(
            org_id, "policy.rule.created", actor, subject, plane=rule.plane.value, name=rule.name
        )
        uc.change(org_id, Topic.POLICY, org_id)
        return get_rule(conn, org_id, rule_id)


def replace_rule(
    conn: Connection,
    org_id: str,
    rule_id: str,
    rule: PolicyRule,
    position: int | None,
    *,
    actor: str,
    now: datetime,
) -> StoredPolicyRule:
    """Replace a rule in its plane (a rule keeps its plane); with no position it keeps its place."""
    with use_case(conn, now) as uc:
        current = get_rule(conn, org_id, rule_id)
        _editable(current.plane)
        if rule.plane is not current.plane:
            raise InvalidInput(f"rule {current.name} is a {current.plane} rule and stays one")
        check_requirements(conn, org_id, [rule])
        update_rule(
            conn, org_id, rule_id, rule, current.position if position is None else position, now
        )
        subject = subject_of("policy-rule", rule_id)
        uc.audit(
            org_id, "policy.rule.updated", actor, subject, plane=rule.plane.value, name=rule.name
        )
        uc.change(org_id, Topic.POLICY, org_id)
        return get_rule(conn, org_id, rule_id)


def delete_rule(conn: Connection, org_id: str, rule_id: str, *, actor: str, now: datetime) -> None:
    with use_case(conn, now) as uc:
        current = get_rule(conn, org_id, rule_id)
        _editable(current.plane)
        conn.execute(delete(_r).where(_r.c.org_id == org_id, _r.c.id == rule_id))
        subject = subject_of("policy-rule", rule_id)
        payload = {"plane": current.plane.value, "name": current.name}
        uc.audit(org_id, "policy.rule.deleted", actor, subject, **payload)
        uc.change(org_id, Topic.POLICY, org_id)
