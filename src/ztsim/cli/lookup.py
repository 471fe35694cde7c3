"""What an admin types for an object, turned into its id: identities by id, email or exact
name, devices by id, IMEI or exact name, groups and fleets by name, SIMs by ICCID, IMSI or
MSISDN. Every lookup is confined to
the org the command acts for, so an error never names or counts another org's objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, Table, or_, select

from ztsim.db import schema
from ztsim.errors import InvalidInput, NotFound
from ztsim.identity import repository as identities
from ztsim.identity.models import Collection
from ztsim.inventory import repository as inventory
from ztsim.inventory.models import Sim


def identity_id(conn: Connection, org_id: str, key: str) -> str:
    """The id of the identity whose id, email or exact name is `key`. An id or email wins
    over a name; a name that several identities share is refused."""
    if not key.strip():
        raise InvalidInput("name an identity by id, email or name")
    return _by_key_or_name(
        conn, schema.identities, "email", org_id, key, ("identity", "identities", "the email")
    )


def device_id(conn: Connection, org_id: str, key: str) -> str:
    """The id of the org's device whose id, IMEI or exact name is `key` (an id or IMEI wins
    over a name; a name that several devices share is refused)."""
    return _by_key_or_name(
        conn, schema.devices, "imei", org_id, key, ("device", "devices", "the IMEI")
    )


def _by_key_or_name(
    conn: Connection,
    table: Table,
    unique: str,
    org_id: str,
    key: str,
    words: tuple[str, str, str],
) -> str:
    """The id of the row of `table` in this org whose id, `unique` column or exact name is
    `key`; `words`: the noun, its plural and what else to name it by, for the errors."""
    key = key.strip()
    noun, plural, instead = words
    rows = conn.execute(
        select(table.c.id, table.c[unique], table.c.name).where(
            table.c.org_id == org_id,
            or_(table.c.id == key, table.c[unique] == key, table.c.name == key),
        )
    ).all()
    exact = [r[0] for r in rows if key in (r[0], r[1])]
    if exact:
        return str(exact[0])
    if len(rows) > 1:
        raise InvalidInput(f"{len(rows)} {plural} are named {key!r}: use {instead} or the id")
    if not rows:
        raise NotFound(f"no {noun} {key!r} in this org")
    return str(rows[0][0])


def collection(conn: Connection, org_id: str, name: str, *, fleet: bool) -> Collection:
    """The group (or fleet) of this org with this exact name."""
    noun = "fleet" if fleet else "group"
    for c in identities.list_collections(conn, org_id, fleet=fleet):
        if c.name == name:
            return c
    raise NotFound(f"no {noun} named {name!r} in this org")


def sim(conn: Connection, org_id: str, key: str) -> Sim:
    """The SIM whose ICCID, IMSI or MSISDN is `key`."""
    key = key.strip()
    _s = schema.sims
    iccids = conn.scalars(
        select(_s.c.iccid).where(
            _s.c.org_id == org_id, or_(_s.c.iccid == key, _s.c.imsi == key, _s.c.msisdn == key)
        )
    ).all()
    if len(iccids) > 1:
        raise InvalidInput(f"{key!r} matches {len(iccids)} SIMs: use the ICCID")
    if not iccids:
        raise NotFound(f"no SIM {key!r} in this org")
    return inventory.get_sim(conn, org_id, iccids[0])


def identity_names(conn: Connection, org_id: str, ids: Iterable[str]) -> Mapping[str, str]:
    """What to show for each identity id: its email when it has one, else its name."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    _i = schema.identities
    rows = conn.execute(
        select(_i.c.id, _i.c.email, _i.c.name).where(_i.c.org_id == org_id, _i.c.id.in_(wanted))
    ).all()
    return {r.id: r.email or r.name for r in rows}


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 SIM', '2 SIMs', '0 identities'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
