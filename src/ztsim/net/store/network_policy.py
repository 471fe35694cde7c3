"""What the net role enforces, read from the database: each org's `network` policy and the
live sessions with an address, as the subjects that policy classifies.

Read-only and off every hot path: whole at a load (`read_policies()`, `read_sessions()`),
and by key for what a batch of the change feed names (the orgs of a POLICY change, the
addresses of the sessions a change touches). Facts are read in batches
(`ztsim.policy.store.facts`): a handful of queries per read however many sessions, never
one per session.

A session whose SIM is not active (suspended, retired) or whose identity is disabled is
read with no subject (`revoked` says why): it has no class, and the gateway refuses its
traffic to the sites whether or not the packet gateway has torn the session down yet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.errors import InvalidInput
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import NO_SIGNALS, IdentityKind, SimKind, Subject
from ztsim.policy.rules import Plane
from ztsim.policy.store.compiled import read_compiled
from ztsim.policy.store.facts import posture_of_devices, signals_of_sims

_r, _orgs = schema.policy_rules, schema.orgs
_s, _sims, _ids = schema.radius_sessions, schema.sims, schema.identities
_NETWORK = Plane.NETWORK.value
_ACTIVE = "active"  # ztsim.inventory.lifecycle.SimState.ACTIVE (net does not import inventory)
# Reason codes of a session without a class (in the style of ztsim.policy.reasons).
SIM_NOT_ACTIVE = "sim:not-active"
IDENTITY_DISABLED = "identity:disabled"
_SIM_KINDS = {kind.value: kind for kind in SimKind}
_IDENTITY_KINDS = {kind.value: kind for kind in IdentityKind}
_NONE: frozenset[str] = frozenset()


# -- policies ----------------------------------------------------------------------------


def read_policies(
    conn: Connection, org_ids: Collection[str] | None = None
) -> dict[str, CompiledPolicy]:
    """The compiled `network` policy of every org (of `org_ids`, or all); an org without
    network rules gets a policy with none (the plane's default: deny)."""
    return read_compiled(conn, Plane.NETWORK, org_ids, every_org=True)


# -- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A live session with an address, and who is behind it."""

    address: str  # canonical
    org_id: str
    iccid: str | None
    identity_id: str | None
    device_id: str | None
    subject: Subject | None  # None: revoked, `revoked` says why
    revoked: str = ""
    stored: str = ""  # the address as the session table holds it (to read it again by)


_LIVE = (
    select(
        _s.c.ue_address,
        _s.c.org_id,
        _s.c.iccid,
        _s.c.identity_id,
        _s.c.device_id,
        _sims.c.kind,
        _sims.c.state,
        _ids.c.kind,
        _ids.c.enabled,
    )
    .select_from(
        _s.outerjoin(_sims, _sims.c.iccid == _s.c.iccid).outerjoin(
            _ids, _ids.c.id == _s.c.identity_id
        )
    )
    .where(_s.c.stopped_at.is_(None), _s.c.ue_address.is_not(None))
    # If two live sessions claim one address the newest wins (it comes last).
    .order_by(_s.c.updated_at, _s.c.id)
)


def canonical(address: str) -> str:
    """An address as the role keys it: IPv4-mapped IPv6 as IPv4, IPv6 compressed."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidInput(f"{address!r} is not an IPv4 or IPv6 address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _memberships(
    conn: Connection, table: Table, column: str, ids: Collection[str] | None
) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    query = select(table.c[column], table.c.identity_id)
    for owner, member in rows_in(conn, query, table.c.identity_id, ids):
        found.setdefault(member, set()).add(owner)
    return {identity: frozenset(owners) for identity, owners in found.items()}


def _sessions(conn: Connection, rows: list[Any], whole: bool) -> dict[str, LiveSession]:
    """Sessions from `_LIVE` rows, their facts read in batches (`whole`: every table at
    once, the rows being every live session)."""
    ids = None if whole else {r[3] for r in rows if r[3] is not None}
    iccids = None if whole else {r[2] for r in rows if r[2] is not None}
    devices = None if whole else {r[4] for r in rows if r[4] is not None}
    groups = _memberships(conn, schema.group_members, "group_id", ids) if ids is None or ids else {}
    fleets = _memberships(conn, schema.fleet_members, "fleet_id", ids) if ids is None or ids else {}
    signals = signals_of_sims(conn, iccids) if iccids is None or iccids else {}
    postures = posture_of_devices(conn, devices) if devices is None or devices else {}
    out: dict[str, LiveSession] = {}
    for address, org_id, iccid, who, device, sim_kind, state, id_kind, enabled in rows:
        try:
            key = canonical(address)
        except InvalidInput:
            continue  # not an address: no packet comes from it
        revoked = ""
        if state is not None and state != _ACTIVE:
            revoked = SIM_NOT_ACTIVE
        elif who is not None and enabled is False:
            revoked = IDENTITY_DISABLED
        subject = None
        if not revoked:
            subject = Subject(
                org_id,
                who,
                _IDENTITY_KINDS.get(id_kind or "") if who else None,
                groups.get(who, _NONE) if who else _NONE,
                fleets.get(who, _NONE) if who else _NONE,
                _SIM_KINDS.get(sim_kind or ""),
                signals.get(iccid, NO_SIGNALS) if iccid else NO_SIGNALS,
                postures.get(device) if device else None,
            )
        out[key] = LiveSession(key, org_id, iccid, who, device, subject, revoked, address)
    return out


def read_sessions(
    conn: Connection, wanted: Mapping[str, Collection[str]] | None = None
) -> dict[str, LiveSession]:
    """Live sessions with an address, by canonical address: every one (`wanted` None), or
    those at these addresses (org id -> addresses as the session table holds them: a
    SESSION change's key, a session's `stored`); an address with no live session is
    absent from the result."""
    if wanted is None:
        return _sessions(conn, list(conn.execute(_LIVE).all()), whole=True)
    rows: list[Any] = []
    for org_id, addresses in wanted.items():
        if addresses:
            query = _LIVE.where(_s.c.org_id == org_id)
            rows += rows_in(conn, query, _s.c.ue_address, addresses)
    # An address's rows come in one chunk, in order: the newest claim on it stays last.
    return _sessions(conn, rows, whole=False)
