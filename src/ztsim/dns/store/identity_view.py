"""Building the gateway's `IdentitySnapshot` from the database, off the hot path.

Source of truth: the live rows of the session table (`ztsim.sessions.repository`),
which map a UE address to its SIM, identity and device, joined here with the
SIM's kind and the identity's group and fleet memberships. Read-only; one
snapshot for all orgs (the gateway serves every tenant), each requester
carrying its own `org_id`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from sqlalchemy import Connection, func, select

from ztsim.db import schema
from ztsim.dns.policy.identity import IdentitySnapshot, NetworkDefault, Requester
from ztsim.dns.store.policy_view import load_device_tokens
from ztsim.sessions.repository import load_live


def _memberships(conn: Connection, table_name: str, column: str) -> dict[str, frozenset[str]]:
    table = schema.metadata.tables[table_name]
    out: dict[str, set[str]] = {}
    for owner, member in conn.execute(select(table.c[column], table.c.identity_id)):
        out.setdefault(member, set()).add(owner)
    return {identity: frozenset(ids) for identity, ids in out.items()}


def identity_fingerprint(conn: Connection) -> tuple[object, ...]:
    """Changes whenever a session starts, is updated or stops, a device token is issued or
    revoked, or a group or fleet gains or loses a member: rebuild the table only then."""
    t, tokens = schema.radius_sessions, schema.dns_device_tokens
    row = conn.execute(select(func.count(), func.max(t.c.updated_at), func.max(t.c.stopped_at)))
    out = list(row.one())
    issued = select(func.count(), func.max(tokens.c.created_at))
    out += conn.execute(issued).one()
    out.append(conn.execute(select(func.count()).where(tokens.c.revoked_at.is_not(None))).scalar())
    for name, column in (("group_members", "group_id"), ("fleet_members", "fleet_id")):
        table = schema.metadata.tables[name]
        members = (table.c[column], table.c.identity_id)
        out += conn.execute(
            select(func.count(), *map(func.max, members), *map(func.min, members))
        ).one()
    return tuple(out)


def load_identity_snapshot(
    conn: Connection,
    defaults: Iterable[NetworkDefault] = (),
    tokens: Iterable[tuple[str, Requester]] = (),
) -> IdentitySnapshot:
    """Every live session with an address, as address -> requester."""
    sessions = [s for s in load_live(conn) if s.ue_address]
    sims = schema.sims
    kinds: dict[str, str] = {}
    iccids = sorted({s.iccid for s in sessions if s.iccid})
    for start in range(0, len(iccids), 1000):
        chunk = iccids[start : start + 1000]
        rows = conn.execute(select(sims.c.iccid, sims.c.kind).where(sims.c.iccid.in_(chunk)))
        kinds.update({iccid: kind for iccid, kind in rows})
    groups = _memberships(conn, "group_members", "group_id")
    fleets = _memberships(conn, "fleet_members", "fleet_id")
    entries = []
    for session in sorted(sessions, key=lambda s: s.updated_at):
        identity = session.identity_id
        who = Requester(
            org_id=session.org_id,
            identity_id=identity,
            group_ids=groups.get(identity, frozenset()) if identity else frozenset(),
            fleet_ids=fleets.get(identity, frozenset()) if identity else frozenset(),
            sim_kind=kinds.get(session.iccid) if session.iccid else None,
            device_id=session.device_id,
        )
        assert session.ue_address is not None
        entries.append((session.ue_address, who))
    digests = []
    for digest, device in load_device_tokens(conn).items():
        owner = device.identity_id
        if owner is not None:
            groups_of, fleets_of = groups.get(owner, frozenset()), fleets.get(owner, frozenset())
            device = replace(device, group_ids=groups_of, fleet_ids=fleets_of)
        digests.append((digest, device))
    # Sorted by update time, so if two live sessions claim one address the newest wins.
    return IdentitySnapshot.build(entries, tokens, defaults, digests)
