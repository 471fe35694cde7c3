"""A person as an admin types them into a page: an identity id or an email, of the
viewer's org only. Another org's person reads exactly as one that does not exist."""

from __future__ import annotations

from sqlalchemy import Connection, or_, select

from ztsim.db import schema
from ztsim.errors import InvalidInput
from ztsim.events.schema import subject_of
from ztsim.inventory import repository as inventory

# The API's own bound on a person's SIMs and devices (its events route reads as many).
_OWN_LIMIT = 1000
_MAX_KEY = 320  # an email's longest


def person_id(conn: Connection, org_id: str, key: str) -> str:
    """The id of the org's identity whose id or email is exactly `key`; InvalidInput
    when it names nobody in the org (a page shows it as a 400, whoever's it is)."""
    key = key.strip()
    if not key or len(key) > _MAX_KEY:
        raise InvalidInput("name a person by identity id or email")
    people = schema.identities
    found = conn.execute(
        select(people.c.id).where(
            people.c.org_id == org_id,
            or_(people.c.id == key, people.c.email == key),
        )
    ).scalar()
    if found is None:
        raise InvalidInput(f"no person {key!r} in this organisation (give an identity id or email)")
    return str(found)


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
