"""Orgs, identities, groups and fleets in the database. Every query is scoped by org."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.identity.models import Collection, Identity, IdentityKind, Org

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _org(m: RowMapping) -> Org:
    return Org(m["id"], m["name"], m["slug"], m["tofu_binding"], m["created_at"])


def create_org(conn: Connection, name: str, slug: str, now: datetime) -> Org:
    if not _SLUG.match(slug):
        raise InvalidInput("org slug must be lower-case letters, digits and hyphens")
    if conn.execute(select(schema.orgs.c.id).where(schema.orgs.c.slug == slug)).first():
        raise Conflict(f"an org with slug {slug!r} exists")
    org_id = new_id()
    conn.execute(
        insert(schema.orgs).values(
            id=org_id, name=name, slug=slug, tofu_binding=False, created_at=now
        )
    )
    return get_org(conn, org_id)


def get_org(conn: Connection, org_id: str) -> Org:
    row = conn.execute(select(schema.orgs).where(schema.orgs.c.id == org_id)).first()
    if row is None:
        raise NotFound("org not found")
    return _org(row._mapping)


def find_org(conn: Connection, slug: str | None) -> Org:
    """By slug; with no slug, the only org (a single-tenant install)."""
    stmt = select(schema.orgs)
    if slug is not None:
        stmt = stmt.where(schema.orgs.c.slug == slug)
    rows = conn.execute(stmt.limit(2)).all()
    if not rows:
        raise NotFound("no such org" if slug else "no org yet: run `ztsim init`")
    if len(rows) > 1:
        raise InvalidInput("several orgs exist: name one with --org")
    return _org(rows[0]._mapping)


def update_org(conn: Connection, org_id: str, *, tofu_binding: bool | None) -> Org:
    if tofu_binding is not None:
        conn.execute(
            update(schema.orgs).where(schema.orgs.c.id == org_id).values(tofu_binding=tofu_binding)
        )
    return get_org(conn, org_id)


# -- identities ---------------------------------------------------------------------------

_i = schema.identities


def identity_from_row(m: RowMapping) -> Identity:
    """An identity from a row of `identities` (for readers that select it themselves)."""
    return Identity(
        m["id"],
        m["org_id"],
        IdentityKind(m["kind"]),
        m["name"],
        m["email"],
        m["external_id"],
        m["enabled"],
        m["created_at"],
    )


def create_identity(
    conn: Connection,
    org_id: str,
    *,
    kind: IdentityKind,
    name: str,
    email: str | None,
    external_id: str | None,
    now: datetime,
) -> Identity:
    ident = new_id()
    try:
        with conn.begin_nested():
            conn.execute(
                insert(_i).values(
                    id=ident,
                    org_id=org_id,
                    kind=kind.value,
                    name=name,
                    email=email,
                    external_id=external_id,
                    enabled=True,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise Conflict("an identity with that email or external id exists") from None
    return get_identity(conn, org_id, ident)


def get_identity(conn: Connection, org_id: str, identity_id: str) -> Identity:
    row = conn.execute(select(_i).where(_i.c.org_id == org_id, _i.c.id == identity_id)).first()
    if row is None:
        raise NotFound("identity not found")
    return identity_from_row(row._mapping)


def list_identities(
    conn: Connection,
    org_id: str,
    *,
    kind: IdentityKind | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[Identity], str | None]:
    check_limit(limit)
    stmt = select(_i).where(_i.c.org_id == org_id)
    if kind is not None:
        stmt = stmt.where(_i.c.kind == kind.value)
    if cursor is not None:
        stmt = stmt.where(_i.c.id > decode_cursor(cursor, str))
    rows = conn.execute(stmt.order_by(_i.c.id).limit(limit + 1)).all()
    page = [identity_from_row(r._mapping) for r in rows[:limit]]
    return page, (encode_cursor(page[-1].id) if len(rows) > limit else None)


def update_identity(
    conn: Connection, org_id: str, identity_id: str, *, name: str | None, enabled: bool | None
) -> Identity:
    get_identity(conn, org_id, identity_id)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if enabled is not None:
        values["enabled"] = enabled
    if values:
        conn.execute(update(_i).where(_i.c.org_id == org_id, _i.c.id == identity_id).values(values))
    return get_identity(conn, org_id, identity_id)


# -- groups and fleets --------------------------------------------------------------------


def _tables(fleet: bool) -> tuple[Table, Table, str]:
    if fleet:
        return schema.fleets, schema.fleet_members, "fleet_id"
    return schema.groups, schema.group_members, "group_id"


def create_collection(
    conn: Connection, org_id: str, name: str, now: datetime, *, fleet: bool
) -> Collection:
    table, _members, _fk = _tables(fleet)
    if conn.execute(
        select(table.c.id).where(table.c.org_id == org_id, table.c.name == name)
    ).first():
        raise Conflict(f"a {'fleet' if fleet else 'group'} named {name!r} exists")
    cid = new_id()
    conn.execute(insert(table).values(id=cid, org_id=org_id, name=name, created_at=now))
    return get_collection(conn, org_id, cid, fleet=fleet)


def get_collection(conn: Connection, org_id: str, cid: str, *, fleet: bool) -> Collection:
    table, members, fk = _tables(fleet)
    row = conn.execute(select(table).where(table.c.org_id == org_id, table.c.id == cid)).first()
    if row is None:
        raise NotFound(f"{'fleet' if fleet else 'group'} not found")
    ids = conn.scalars(
        select(members.c.identity_id).where(members.c[fk] == cid).order_by(members.c.identity_id)
    ).all()
    m = row._mapping
    return Collection(m["id"], m["org_id"], m["name"], tuple(ids), m["created_at"])


def list_collections(conn: Connection, org_id: str, *, fleet: bool) -> list[Collection]:
    table, _members, _fk = _tables(fleet)
    ids = conn.scalars(
        select(table.c.id).where(table.c.org_id == org_id).order_by(table.c.name)
    ).all()
    return [get_collection(conn, org_id, cid, fleet=fleet) for cid in ids]


def add_member(
    conn: Connection, org_id: str, cid: str, identity_id: str, *, fleet: bool
) -> Collection:
    _table, members, fk = _tables(fleet)
    get_collection(conn, org_id, cid, fleet=fleet)
    member = get_identity(conn, org_id, identity_id)
    if fleet and member.kind is not IdentityKind.SERVICE:
        raise InvalidInput("a fleet holds service identities only")
    exists = conn.execute(
        select(func.count())
        .select_from(members)
        .where(members.c[fk] == cid, members.c.identity_id == identity_id)
    ).scalar_one()
    if not exists:
        conn.execute(insert(members).values({fk: cid, "identity_id": identity_id}))
    return get_collection(conn, org_id, cid, fleet=fleet)


def remove_member(
    conn: Connection, org_id: str, cid: str, identity_id: str, *, fleet: bool
) -> Collection:
    _table, members, fk = _tables(fleet)
    get_collection(conn, org_id, cid, fleet=fleet)
    done = conn.execute(
        delete(members).where(members.c[fk] == cid, members.c.identity_id == identity_id)
    )
    if done.rowcount == 0:
        raise NotFound("identity is not a member")
    return get_collection(conn, org_id, cid, fleet=fleet)
