"""An org's named posture checks in the database, and the use cases that change them.

A check is found by its id or its name (names are unique in the org). Every change is
audited (`policy.check.created|updated|deleted`) and published on `Topic.POLICY` and on
`Topic.DNS` (both keyed by the org): the DNS gateway decides with checks too. A check
that rules require cannot be deleted or renamed from under them (Conflict naming them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.errors import Conflict, NotFound
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.policy.checks import PostureCheck
from ztsim.usecase import UseCase, use_case

_c, _r = schema.posture_checks, schema.policy_rules


@dataclass(frozen=True, slots=True)
class StoredCheck:
    id: str
    check: PostureCheck
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return self.check.name


def _stored(m: RowMapping) -> StoredCheck:
    check = PostureCheck(m["name"], m["expression"], timedelta(seconds=m["max_age_s"]))
    return StoredCheck(m["id"], check, m["created_at"], m["updated_at"])


def list_checks(conn: Connection, org_id: str) -> list[StoredCheck]:
    rows = conn.execute(select(_c).where(_c.c.org_id == org_id).order_by(_c.c.name))
    return [_stored(m) for m in rows.mappings()]


def get_check(conn: Connection, org_id: str, key: str) -> StoredCheck:
    """The org's check with this id or name."""
    query = select(_c).where(_c.c.org_id == org_id, or_(_c.c.id == key, _c.c.name == key))
    m = conn.execute(query).mappings().first()
    if m is None:
        raise NotFound("no such posture check")
    return _stored(m)


def rules_requiring(conn: Connection, org_id: str, name: str) -> list[str]:
    """The org's rules (`plane/name`) that require the check `name`, either way round."""
    rows = conn.execute(
        select(_r.c.plane, _r.c.name, _r.c.spec)
        .where(_r.c.org_id == org_id)
        .order_by(_r.c.plane, _r.c.position, _r.c.id)
    )
    return [
        f"{plane}/{rule}"
        for plane, rule, spec in rows.all()
        if name in {str(p).removeprefix("!") for p in spec.get("posture", ())}
    ]


def insert_check(conn: Connection, org_id: str, check: PostureCheck, now: datetime) -> str:
    check_id = new_id()
    try:
        conn.execute(
            insert(_c).values(
                id=check_id,
                org_id=org_id,
                name=check.name,
                expression=check.expression,
                max_age_s=int(check.max_age.total_seconds()),
                created_at=now,
                updated_at=now,
            )
        )
    except IntegrityError:
        raise Conflict(f"a posture check named {check.name} exists") from None
    return check_id


def update_check(
    conn: Connection, org_id: str, check_id: str, check: PostureCheck, now: datetime
) -> None:
    try:
        conn.execute(
            update(_c)
            .where(_c.c.org_id == org_id, _c.c.id == check_id)
            .values(
                name=check.name,
                expression=check.expression,
                max_age_s=int(check.max_age.total_seconds()),
                updated_at=now,
            )
        )
    except IntegrityError:
        raise Conflict(f"a posture check named {check.name} exists") from None


def _changed(uc: UseCase, org_id: str, kind: str, actor: str, check_id: str, name: str) -> None:
    uc.audit(org_id, kind, actor, subject_of("posture-check", check_id), name=name)
    uc.change(org_id, Topic.POLICY, org_id)
    uc.change(org_id, Topic.DNS, org_id)


def _unused(conn: Connection, org_id: str, name: str, doing: str) -> None:
    using = rules_requiring(conn, org_id, name)
    if using:
        raise Conflict(f"cannot {doing} posture check {name}: rules {using} require it")


def create_check(
    conn: Connection, org_id: str, check: PostureCheck, *, actor: str, now: datetime
) -> StoredCheck:
    with use_case(conn, now) as uc:
        check_id = insert_check(conn, org_id, check, now)
        _changed(uc, org_id, "policy.check.created", actor, check_id, check.name)
        return get_check(conn, org_id, check_id)


def replace_check(
    conn: Connection, org_id: str, key: str, check: PostureCheck, *, actor: str, now: datetime
) -> StoredCheck:
    """A new expression, maximum age or name for a check (renaming one in use: Conflict)."""
    with use_case(conn, now) as uc:
        current = get_check(conn, org_id, key)
        if check.name != current.name:
            _unused(conn, org_id, current.name, "rename")
        update_check(conn, org_id, current.id, check, now)
        _changed(uc, org_id, "policy.check.updated", actor, current.id, check.name)
        return get_check(conn, org_id, current.id)


def delete_check(conn: Connection, org_id: str, key: str, *, actor: str, now: datetime) -> None:
    with use_case(conn, now) as uc:
        current = get_check(conn, org_id, key)
        _unused(conn, org_id, current.name, "delete")
        conn.execute(delete(_c).where(_c.c.org_id == org_id, _c.c.id == current.id))
        _changed(uc, org_id, "policy.check.deleted", actor, current.id, current.name)
