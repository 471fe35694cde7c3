"""Reading the gateway's identity table from the database, off the hot path: in full (at
start and on a resync) or for the few keys a batch of the change feed names.

Source of truth: the live rows of the session table (`ztsim.sessions.repository`), which
map a UE address to its SIM, identity and device, joined here with the SIM's kind and
state and the identity's kind and enabled flag, group and fleet memberships. An address
whose SIM is not active (suspended, retired) or whose identity is disabled gets a revoked
requester: the gateway refuses it even before the packet gateway acknowledges the
Disconnect-Request, and even where an org's network default covers the address.
Read-only; one table for all orgs, each requester carrying its own `org_id`.

Each requester also carries its tags at the read's `now`, from the facts read for its
batch (`facts_view`): the state of each of its org's posture checks on its device's last
report, and which SIM conditions of the org's DNS rules hold for its SIM. An entry's
`until` is when a tag would flip by time alone: the gateway reads it again then.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, false, select

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.dns.policy.identity import (
    IDENTITY_DISABLED,
    SIM_NOT_ACTIVE,
    IdentitySnapshot,
    NetworkDefault,
    Requester,
    canonical,
)
from ztsim.dns.store.facts_view import Facts, OrgFacts
from ztsim.errors import InvalidInput
from ztsim.policy.facts import IdentityKind

_s, _sims, _ids = schema.radius_sessions, schema.sims, schema.identities
_tokens, _devices = schema.dns_device_tokens, schema.devices
_NONE: frozenset[str] = frozenset()
ACTIVE = "active"  # ztsim.inventory.lifecycle.SimState.ACTIVE (dns does not import inventory)
_KINDS = frozenset(k.value for k in IdentityKind)


@dataclass(frozen=True, slots=True)
class Entry:
    """One address's requester and the SIM behind it (for finding it again by ICCID)."""

    address: str  # canonical
    iccid: str | None
    who: Requester
    until: datetime | None = None  # when a tag flips by time alone (None: never)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One device token: `who` is None once it is revoked (the digest is then dropped)."""

    token_id: str
    digest: bytes
    who: Requester | None
    until: datetime | None = None


class _Subjects:
    """Group and fleet memberships and disabled identities: of every identity (None) or
    of those named; with the batch's `Facts` for tags."""

    def __init__(
        self, conn: Connection, identity_ids: Collection[str] | None, facts: Facts
    ) -> None:
        self.groups = _memberships(conn, schema.group_members, "group_id", identity_ids)
        self.fleets = _memberships(conn, schema.fleet_members, "fleet_id", identity_ids)
        query = select(_ids.c.id).where(_ids.c.enabled == false())
        self.disabled = {row[0] for row in rows_in(conn, query, _ids.c.id, identity_ids)}
        self.facts = facts

    def requester(
        self,
        org_id: str,
        identity: str | None,
        device_id: str | None,
        identity_kind: str | None,
        *,
        iccid: str | None = None,
        kind: str | None = None,
        state: str | None = None,
    ) -> tuple[Requester, datetime | None]:
        """The requester, and when its tags flip by time alone."""
        revoked = ""
        if state is not None and state != ACTIVE:
            revoked = SIM_NOT_ACTIVE
        elif identity is not None and identity in self.disabled:
            revoked = IDENTITY_DISABLED
        identity_kind = identity_kind if identity_kind in _KINDS else None
        tags, until = self.facts.tags(org_id, identity, identity_kind, kind, iccid, device_id)
        no = _NONE
        who = Requester(
            org_id=org_id,
            identity_id=identity,
            group_ids=self.groups.get(identity, no) if identity else no,
            fleet_ids=self.fleets.get(identity, no) if identity else no,
            sim_kind=kind,
            device_id=device_id,
            revoked=revoked,
            identity_kind=identity_kind,
            tags=tags,
        )
        return who, until


def _memberships(
    conn: Connection, table: Table, column: str, identity_ids: Collection[str] | None
) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    query = select(table.c[column], table.c.identity_id)
    for owner, member in rows_in(conn, query, table.c.identity_id, identity_ids):
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
        _ids.c.kind,
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


def _entries(
    conn: Connection, rows: list[Any], identity_ids: Collection[str] | None, facts: Facts
) -> dict[str, Entry]:
    subjects = _Subjects(conn, identity_ids, facts)
    out: dict[str, Entry] = {}
    for address, org_id, iccid, identity, device, kind, state, identity_kind in rows:
        try:
            key = canonical(address)
        except InvalidInput:
            continue  # not an address: no source can match it
        who, until = subjects.requester(
            org_id, identity, device, identity_kind, iccid=iccid, kind=kind, state=state
        )
        out[key] = Entry(key, iccid, who, until)
    return out


def _wanted(rows: list[Any]) -> list[tuple[str, str | None, str | None]]:
    return [(r[1], r[4], r[2]) for r in rows]


def load_entries(conn: Connection, now: datetime, facts: Facts | None = None) -> dict[str, Entry]:
    """Every live session with an address, by canonical address, tagged at `now`
    (`facts`: read whole, shared with the tokens' read)."""
    # In full, memberships and facts are read whole (one query each), not by key.
    facts = Facts(conn, now) if facts is None else facts
    return _entries(conn, list(conn.execute(_LIVE).all()), None, facts)


def read_addresses(
    conn: Connection,
    wanted: Mapping[str, Collection[str]],
    now: datetime,
    known: OrgFacts | None = None,
) -> dict[str, Entry]:
    """The entries of these addresses (org id -> canonical addresses); an address with no
    live session is absent from the result. `known`: the orgs' checks and conditions as
    the caller keeps them."""
    rows: list[Any] = []
    for org_id, addresses in wanted.items():
        rows += rows_in(conn, _LIVE.where(_s.c.org_id == org_id), _s.c.ue_address, addresses)
    facts = Facts(conn, now, _wanted(rows), known)
    return _entries(conn, rows, {r[3] for r in rows if r[3] is not None}, facts)


def read_orgs(
    conn: Connection, org_ids: Collection[str], now: datetime, known: OrgFacts | None = None
) -> dict[str, Entry]:
    """Every live session's entry in these orgs (their checks or conditions changed)."""
    rows = rows_in(conn, _LIVE, _s.c.org_id, org_ids)
    facts = Facts(conn, now, _wanted(rows), known)
    return _entries(conn, rows, {r[3] for r in rows if r[3] is not None}, facts)


def addresses_of_sims(conn: Connection, iccids: Collection[str]) -> dict[str, str]:
    """The canonical addresses of these SIMs' live sessions -> their org (found by the
    SIMs' IMSIs, which the session table indexes)."""
    query = (
        select(_s.c.ue_address, _s.c.org_id)
        .join(_sims, _sims.c.imsi == _s.c.imsi)
        .where(_s.c.stopped_at.is_(None), _s.c.ue_address.is_not(None))
    )
    return _canonical_pairs(rows_in(conn, query, _sims.c.iccid, iccids))


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


_TOKENS = (
    select(
        _tokens.c.id,
        _tokens.c.token_hash,
        _tokens.c.org_id,
        _tokens.c.device_id,
        _tokens.c.revoked_at,
        _devices.c.owner_id,
        _ids.c.kind,
    )
    .join(_devices, _devices.c.id == _tokens.c.device_id)
    .outerjoin(_ids, _ids.c.id == _devices.c.owner_id)
)


def read_tokens(
    conn: Connection,
    now: datetime,
    *,
    ids: Collection[str] | None = None,
    owners: Collection[str] | None = None,
    orgs: Collection[str] | None = None,
    facts: Facts | None = None,
    known: OrgFacts | None = None,
) -> list[TokenEntry]:
    """Device tokens, tagged at `now`: every live one (no selection), or these ids
    (revoked ones too, with `who` None) and the live ones of devices these identities own
    or of these orgs."""
    live = _TOKENS.where(_tokens.c.revoked_at.is_(None))
    if ids is None and owners is None and orgs is None:
        rows = list(conn.execute(live).all())
        subjects = _Subjects(conn, None, Facts(conn, now) if facts is None else facts)
    else:
        rows = rows_in(conn, _TOKENS, _tokens.c.id, ids or ())
        rows += rows_in(conn, live, _devices.c.owner_id, owners or ())
        rows += rows_in(conn, live, _tokens.c.org_id, orgs or ())
        wanted = [(r[2], r[3], None) for r in rows]
        identities = {r[5] for r in rows if r[5] is not None}
        subjects = _Subjects(conn, identities, Facts(conn, now, wanted, known))
    out: dict[str, TokenEntry] = {}
    for token_id, digest, org_id, device_id, revoked_at, owner, kind in rows:
        if revoked_at is not None:
            out[token_id] = TokenEntry(token_id, bytes(digest), None)
            continue
        who, until = subjects.requester(org_id, owner, device_id, kind)
        out[token_id] = TokenEntry(token_id, bytes(digest), who, until)
    return list(out.values())


def load_identity_snapshot(
    conn: Connection,
    now: datetime,
    defaults: Iterable[NetworkDefault] = (),
    tokens: Iterable[tuple[str, Requester]] = (),
) -> IdentitySnapshot:
    """Every live session with an address, as address -> requester, with the live device
    tokens (and `tokens`, plain, from a policy file) and the network defaults."""
    facts = Facts(conn, now)
    entries = load_entries(conn, now, facts)
    live = [(t.digest, t.who) for t in read_tokens(conn, now, facts=facts) if t.who is not None]
    addresses = [(e.address, e.who) for e in entries.values()]
    return IdentitySnapshot.build(addresses, tokens, defaults, live)
