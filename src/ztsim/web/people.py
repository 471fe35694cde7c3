"""What the people pages show: the org's identities (people and IoT service identities),
found by name or email a page at a time; one person with their SIMs, devices, groups and
fleets; and the groups and fleets with their members' names.

Reads go through the identity and inventory stores the API uses. The one read they lack,
a search on name and email, is here: scoped by org like every store query, paged by key
(no OFFSET), with the searched text escaped so `%` and `_` match themselves.
"""

from __future__ import annotations

from collections.abc import Collection as Keys
from dataclasses import dataclass, field

from sqlalchemy import Connection, or_, select

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.errors import InvalidInput
from ztsim.identity import repository as identities
from ztsim.identity.models import Collection, Identity, IdentityKind
from ztsim.identity.roles import Permission
from ztsim.inventory import repository as inventory
from ztsim.inventory.models import Device, Sim
from ztsim.web.viewer import Viewer

PAGE = 50
MAX_QUERY = 100  # characters of a search: longer is no name or email anyone types
# A person holds a few SIMs and devices; the page says so when there are more.
SHOWN_OWN = 200

_i = schema.identities


@dataclass(frozen=True, slots=True)
class Found:
    people: list[Identity]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Listed:
    """A group or fleet with its members named."""

    collection: Collection
    members: list[Member]


@dataclass(frozen=True, slots=True)
class Person:
    identity: Identity
    sims: list[Sim] | None  # None: the role may not read SIMs
    devices: list[Device] | None
    sims_more: bool
    devices_more: bool
    groups: list[Collection]
    fleets: list[Collection]
    # What the person could still join, for the membership forms.
    other_groups: list[Collection] = field(default_factory=list)
    other_fleets: list[Collection] = field(default_factory=list)


def search(
    conn: Connection,
    org_id: str,
    q: str = "",
    *,
    kind: IdentityKind | None = None,
    limit: int = PAGE,
    cursor: str | None = None,
) -> Found:
    """The org's identities whose name or email contains `q` (any case), by id."""
    check_limit(limit)
    q = q.strip()
    if len(q) > MAX_QUERY:
        raise InvalidInput(f"a search is at most {MAX_QUERY} characters")
    stmt = select(_i).where(_i.c.org_id == org_id)
    if q:
        stmt = stmt.where(
            or_(_i.c.name.icontains(q, autoescape=True), _i.c.email.icontains(q, autoescape=True))
        )
    if kind is not None:
        stmt = stmt.where(_i.c.kind == kind.value)
    if cursor:
        stmt = stmt.where(_i.c.id > decode_cursor(cursor, str))
    rows = conn.execute(stmt.order_by(_i.c.id).limit(limit + 1)).mappings().all()
    page = [identities.identity_from_row(m) for m in rows[:limit]]
    return Found(page, encode_cursor(page[-1].id) if len(rows) > limit else None)


def names(conn: Connection, org_id: str, ids: Keys[str]) -> dict[str, str]:
    """Each identity's name, by id; ids of another org are simply absent."""
    query = select(_i.c.id, _i.c.name).where(_i.c.org_id == org_id)
    return {ident: name for ident, name in rows_in(conn, query, _i.c.id, ids)}


def collections(conn: Connection, org_id: str, *, fleet: bool) -> list[Listed]:
    found = identities.list_collections(conn, org_id, fleet=fleet)
    named = names(conn, org_id, {i for c in found for i in c.member_ids})
    return [
        Listed(c, sorted((Member(i, named.get(i, i)) for i in c.member_ids), key=_by_name))
        for c in found
    ]


def _by_name(m: Member) -> tuple[str, str]:
    return (m.name.casefold(), m.id)


def person(conn: Connection, viewer: Viewer, identity_id: str) -> Person:
    """One identity of the viewer's org (NotFound otherwise), with what the role may read."""
    org = viewer.principal.org_id
    who = identities.get_identity(conn, org, identity_id)
    sims: list[Sim] | None = None
    devices: list[Device] | None = None
    sims_more = devices_more = False
    if viewer.may(Permission.SIMS_READ):
        sims, more = inventory.list_sims(
            conn, org, inventory.SimFilter(identity_id=who.id), limit=SHOWN_OWN
        )
        sims_more = more is not None
    if viewer.may(Permission.DEVICES_READ):
        devices, more = inventory.list_devices(conn, org, owner_id=who.id, limit=SHOWN_OWN)
        devices_more = more is not None
    groups = identities.list_collections(conn, org, fleet=False)
    fleets = identities.list_collections(conn, org, fleet=True)
    return Person(
        who,
        sims,
        devices,
        sims_more,
        devices_more,
        [g for g in groups if who.id in g.member_ids],
        [f for f in fleets if who.id in f.member_ids],
        [g for g in groups if who.id not in g.member_ids],
        # A fleet holds service identities only (the store refuses anyone else).
        [f for f in fleets if who.id not in f.member_ids and who.kind is IdentityKind.SERVICE],
    )
