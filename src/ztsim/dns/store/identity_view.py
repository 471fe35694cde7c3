"""Reading the gateway's identity table from the database, off the hot path: in full (at
start and on a resync) or for the few keys a batch of the change feed names.

Source of truth: the live rows of the session table (`ztsim.sessions.repository`), which
map a UE address to its SIM, identity and device, joined here with the SIM's kind and
state and the identity's enabled flag, group and fleet memberships. An address whose SIM
is not active (suspended, retired) or whose identity is disabled gets a revoked
requester: the gateway refuses it even before the packet gateway acknowledges the
Disconnect-Request, and even where an org's network default covers the address.
Read-only; one table for all orgs, each requester carrying its own `org_id`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, false, select

from ztsim.db import schema
from ztsim.dns.policy.identity import (
    IDENTITY_DISABLED,
    SIM_NOT_ACTIVE,
    IdentitySnapshot,
    NetworkDefault,
    Requester,
    canonical,
)
from ztsim.errors import InvalidInput

_s, _sims, _ids = schema.radius_sessions, schema.sims, schema.identities
_tokens, _devices = schema.dns_device_tokens, schema.devices
CHUNK = 500  # values per IN (...): well under every backend's parameter limit
_NONE: frozenset[str] = frozenset()
ACTIVE = "active"  # ztsim.inventory.lifecycle.SimState.ACTIVE (dns does not import inventory)


@dataclass(frozen=True, slots=True)
class Entry:
    """One address's requester and the SIM behind it (for finding it again by ICCID)."""

    address: str  # canonical
    iccid: str | None
    who: Requester


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One device token: `who` is None once it is revoked (the digest is then dropped)."""

    token_id: str
    digest: bytes
    who: Requester | None


class _Subjects:
    """Group and fleet memberships and disabled identities: of every identity (None) or
    of those named."""

    def __init__(self, conn: Connection, identity_ids: Collection[str] | None) -> None:
        self.groups = _memberships(conn, schema.group_members, "group_id", identity_ids)
        self.fleets = _memberships(conn, schema.fleet_members, "fleet_id", identity_ids)
        query = select(_ids.c.id).where(_ids.c.enabled == false())
        self.disabled = {row[0] for row in _chunked(conn, query, _ids.c.id, identity_ids)}

    def requester(
        self,
        org_id: str,
        identity: str | None,
        device_id: str | None,
        *,
        kind: str | None = None,
        state: str | None = None,
    ) -> Requester:
        revoked = ""
        if state is not None and state != ACTIVE:
            revoked = SIM_NOT_ACTIVE
        elif identity is not None and identity in self.disabled:
            revoked = IDENTITY_DISABLED
        no = _NONE
        return Requester(
            org_id=org_id,
            identity_id=identity,
            group_ids=self.groups.get(identity, no) if identity else no,
            fleet_ids=self.fleets.get(identity, no) if identity else no,
            sim_kind=kind,
            device_id=device_id,
            revoked=revoked,
        )


def _chunked(
    conn: Connection,
    query: Select[Any],
    column: ColumnElement[Any],
    values: Collection[str] | None,
) -> list[Any]:
    """The query's rows: all (`values` None), or those whose `column` is in `values`,
    asked a chunk at a time."""
    # Fetched whole (`all`): a row at a time, the driver's per-fetch cost adds seconds to
    # a start with 1M sessions.
    if values is None:
        return list(conn.execute(query).all())
    ordered = sorted(values)
    rows: list[Any] = []
    for start in range(0, len(ordered), CHUNK):
        rows += conn.execute(query.where(column.in_(ordered[start : start + CHUNK]))).all()
    return rows


def _memberships(
    conn: Connection, table: Table, column: str, identity_ids: Collection[str] | None
) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    query = select(table.c[column], table.c.identity_id)
    for owner, member in _chunked(conn, query, table.c.identity_id, identity_ids):
        out.setdefault(member, set()).add(owner)
    return {identity: frozenset(owners) for identity, owners in out.items()}


_LIVE = (
    select(
        _s.c.ue_address,
        _s.c.org_id,
        _s.c.iccid,
        _s.c.identity_id,
        _s.c.device_id,
        _sims.c.kind,
        _sims.c.state,
    )
    .select_from(_s.outerjoin(_sims, _sims.c.iccid == _s.c.iccid))
    .where(_s.c.stopped_at.is_(None), _s.c.ue_address.is_not(None))
    # If two live sessions claim one address the newest wins (it comes last).
    .order_by(_s.c.updated_at, _s.c.id)
)


def _entries(
    conn: Connection, rows: list[Any], identity_ids: Collection[str] | None
) -> dict[str, Entry]:
    subjects = _Subjects(conn, identity_ids)
    out: dict[str, Entry] = {}
    for address, org_id, iccid, identity, device, kind, state in rows:
        try:
            key = canonical(address)
        except InvalidInput:
            continue  # not an address: no source can match it
        who = subjects.requester(org_id, identity, device, kind=kind, state=state)
        out[key] = Entry(key, iccid, who)
    return out


def load_entries(conn: Connection) -> dict[str, Entry]:
    """Every live session with an address, by canonical address."""
    # In full, memberships are read whole (one query each), not by identity.
    return _entries(conn, list(conn.execute(_LIVE).all()), None)


def read_addresses(conn: Connection, wanted: Mapping[str, Collection[str]]) -> dict[str, Entry]:
    """The entries of these addresses (org id -> canonical addresses); an address with no
    live session is absent from the result."""
    rows: list[Any] = []
    for org_id, addresses in wanted.items():
        rows += _chunked(conn, _LIVE.where(_s.c.org_id == org_id), _s.c.ue_address, addresses)
    return _entries(conn, rows, {r[3] for r in rows if r[3] is not None})


def addresses_of_sims(conn: Connection, iccids: Collection[str]) -> dict[str, str]:
    """The canonical addresses of these SIMs' live sessions -> their org (found by the
    SIMs' IMSIs, which the session table indexes)."""
    query = (
        select(_s.c.ue_address, _s.c.org_id)
        .join(_sims, _sims.c.imsi == _s.c.imsi)
        .where(_s.c.stopped_at.is_(None), _s.c.ue_address.is_not(None))
    )
    return _canonical_pairs(_chunked(conn, query, _sims.c.iccid, iccids))


def address_of_session(conn: Connection, gateway_id: str, acct_session_id: str) -> dict[str, str]:
    """A session's address -> its org, live or stopped (empty: none, or no address)."""
    query = select(_s.c.ue_address, _s.c.org_id).where(
        _s.c.gateway_id == gateway_id,
        _s.c.acct_session_id == acct_session_id,
        _s.c.ue_address.is_not(None),
    )
    return _canonical_pairs(conn.execute(query))


def _canonical_pairs(rows: Iterable[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for address, org_id in rows:
        try:
            out[canonical(address)] = org_id
        except InvalidInput:
            continue
    return out


_TOKENS = select(
    _tokens.c.id,
    _tokens.c.token_hash,
    _tokens.c.org_id,
    _tokens.c.device_id,
    _tokens.c.revoked_at,
    _devices.c.owner_id,
).join(_devices, _devices.c.id == _tokens.c.device_id)


def read_tokens(
    conn: Connection,
    *,
    ids: Collection[str] | None = None,
    owners: Collection[str] | None = None,
) -> list[TokenEntry]:
    """Device tokens: every live one (no arguments), or these ids (revoked ones too, with
    `who` None) and the live ones of devices these identities own."""
    live = _TOKENS.where(_tokens.c.revoked_at.is_(None))
    if ids is None and owners is None:
        rows = list(conn.execute(live).all())
        subjects = _Subjects(conn, None)
    else:
        rows = _chunked(conn, _TOKENS, _tokens.c.id, ids or ())
        rows += _chunked(conn, live, _devices.c.owner_id, owners or ())
        subjects = _Subjects(conn, {r[5] for r in rows if r[5] is not None})
    out = []
    for token_id, digest, org_id, device_id, revoked_at, owner in rows:
        who = None if revoked_at is not None else subjects.requester(org_id, owner, device_id)
        out.append(TokenEntry(token_id, bytes(digest), who))
    return out


def load_identity_snapshot(
    conn: Connection,
    defaults: Iterable[NetworkDefault] = (),
    tokens: Iterable[tuple[str, Requester]] = (),
) -> IdentitySnapshot:
    """Every live session with an address, as address -> requester, with the live device
    tokens (and `tokens`, plain, from a policy file) and the network defaults."""
    entries = load_entries(conn)
    digests = [(t.digest, t.who) for t in read_tokens(conn) if t.who is not None]
    addresses = [(e.address, e.who) for e in entries.values()]
    return IdentitySnapshot.build(addresses, tokens, defaults, digests)
