"""A person as an admin types them into a page: an identity id or an email, of the
viewer's org only. Another org's person reads exactly as one that does not exist."""

from __future__ import annotations

import re

from sqlalchemy import Connection, func, select

from ztsim.db import schema
from ztsim.errors import InvalidInput, NotFound
from ztsim.events.schema import subject_of
from ztsim.identity import repository as identities
from ztsim.identity.models import Identity
from ztsim.inventory import repository as inventory

# The API's own bound on a person's SIMs and devices (its events route reads as many).
_OWN_LIMIT = 1000
_MAX_KEY = 320  # an email's longest
_OBJECT_ID = re.compile(r"[0-9a-f]{32}")  # ztsim's ids: 32 lowercase hex digits


def find_person(conn: Connection, org_id: str, key: str) -> Identity | None:
    """The org's identity whose id or email is `key` (an email without regard to case,
    when only one matches that way), or None: another org's person is nobody here."""
    key = key.strip()
    if not key or len(key) > _MAX_KEY:
        return None
    if _OBJECT_ID.fullmatch(key):
        try:
            return identities.get_identity(conn, org_id, key)
        except NotFound:
            return None
    people = schema.identities
    rows = conn.execute(
        select(people.c.id, people.c.email).where(
            people.c.org_id == org_id, func.lower(people.c.email) == key.lower()
        )
    ).all()
    exact = [r.id for r in rows if r.email == key]
    chosen = exact or [r.id for r in rows]
    if len(chosen) != 1:
        return None
    return identities.get_identity(conn, org_id, chosen[0])


def person_id(conn: Connection, org_id: str, key: str) -> str:
    """As `find_person`, its id; InvalidInput when `key` names nobody in the org (a page
    shows it as a 400, whoever's it is)."""
    found = find_person(conn, org_id, key)
    if found is None:
        if not key.strip() or len(key.strip()) > _MAX_KEY:
            raise InvalidInput("name a person by identity id or email")
        raise InvalidInput(
            f"no person {key.strip()!r} in this organisation (give an identity id or email)"
        )
    return found.id


def subjects_of(conn: Connection, org_id: str, identity_id: str) -> list[str]:
    """The event subjects that are about a person: the identity, its SIMs and devices."""
    sims, _ = inventory.list_sims(
        conn, org_id, inventory.SimFilter(identity_id=identity_id), limit=_OWN_LIMIT
    )
    devices, _ = inventory.list_devices(conn, org_id, owner_id=identity_id, limit=_OWN_LIMIT)
    subjects = [subject_of("identity", identity_id)]
    subjects += [subject_of("sim", s.iccid) for s in sims]
    subjects += [subject_of("device", d.id) for d in devices]
    return subjects
