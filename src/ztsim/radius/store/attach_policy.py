"""The attach plane's part of the AAA snapshot, read from the database: the compiled
policies of the orgs with attach rules and their SIMs' subjects, classified.

Off the hot path: whole at a load (`load_attach`), and for what a batch of the change
feed names (`read_attach`). Orgs without attach rules are never read past one query.
Facts are read in batches (`ztsim.policy.store.facts`): by IN lists for a few SIMs, as
whole tables once the SIMs are many, so a load costs a handful of queries however many
SIMs there are, never one per SIM.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import SimKind, SimSignals, Subject
from ztsim.policy.rules import Plane
from ztsim.policy.store.compiled import read_compiled, same_policy
from ztsim.policy.store.facts import (
    identity_kinds,
    posture_of_devices,
    signals_of_sims,
)
from ztsim.radius.aaa.attach import AttachClass, AttachState, classify_all

_r, _s = schema.policy_rules, schema.sims
_ATTACH = Plane.ATTACH.value
_RETIRED = "retired"  # ztsim.inventory.lifecycle.SimState.RETIRED: no longer anyone's SIM
# Past this many keys a fact table is read whole (one statement) rather than by IN lists.
WHOLE_READ = 5_000
_SIM_KINDS = {kind.value: kind for kind in SimKind}


def _keys(values: set[str]) -> set[str] | None:
    """The keys to read by, or None: read the whole table."""
    return None if len(values) > WHOLE_READ else values


# -- policies ----------------------------------------------------------------------------


def read_policies(
    conn: Connection, org_ids: Collection[str] | None = None
) -> dict[str, CompiledPolicy]:
    """The compiled attach policy of each org (of `org_ids`, or every org) with attach
    rules."""
    return read_compiled(conn, Plane.ATTACH, org_ids)


# -- subjects ----------------------------------------------------------------------------


def _memberships(conn: Connection, table: Table, column: str, ids: set[str]) -> dict[str, Any]:
    query = select(table.c[column], table.c.identity_id)
    keys = _keys(ids)
    rows = (
        conn.execute(query).all()
        if keys is None
        else rows_in(conn, query, table.c.identity_id, keys)
    )
    found: dict[str, set[str]] = {}
    for owner, member in rows:
        if member in ids:
            found.setdefault(member, set()).add(owner)
    return {identity: frozenset(owners) for identity, owners in found.items()}


@dataclass(frozen=True, slots=True)
class _SimRow:
    iccid: str
    imsi: str
    org_id: str
    identity_id: str | None
    device_id: str | None
    kind: str
    state: str


def _sim_rows(conn: Connection, column: Any, values: Collection[str]) -> list[_SimRow]:
    query = select(
        _s.c.iccid, _s.c.imsi, _s.c.org_id, _s.c.identity_id, _s.c.device_id, _s.c.kind, _s.c.state
    )
    return [_SimRow(*row) for row in rows_in(conn, query, column, values)]


def subjects_of(conn: Connection, sims: list[_SimRow]) -> dict[str, Subject | None]:
    """Each SIM's subject by IMSI, its facts read in a few batched queries; None for a
    retired SIM (a patch forgets it)."""
    live = [s for s in sims if s.state != _RETIRED]
    ids = {s.identity_id for s in live if s.identity_id is not None}
    devices = {s.device_id for s in live if s.device_id is not None}
    # A whole-table read (too many keys for IN lists) takes the rows of these SIMs' orgs
    # only: the orgs with attach rules, not every tenant's.
    orgs = {s.org_id for s in live}
    kinds = identity_kinds(conn, _keys(ids)) if ids else {}
    groups = _memberships(conn, schema.group_members, "group_id", ids) if ids else {}
    fleets = _memberships(conn, schema.fleet_members, "fleet_id", ids) if ids else {}
    iccids = _keys({s.iccid for s in live})
    signals = signals_of_sims(conn, iccids, org_ids=orgs) if live else {}
    postures = posture_of_devices(conn, _keys(devices), org_ids=orgs) if devices else {}
    none: frozenset[str] = frozenset()
    out: dict[str, Subject | None] = {s.imsi: None for s in sims if s.state == _RETIRED}
    for s in live:
        who = s.identity_id
        out[s.imsi] = Subject(
            s.org_id,
            who,
            kinds.get(who) if who else None,
            groups.get(who, none) if who else none,
            fleets.get(who, none) if who else none,
            _SIM_KINDS.get(s.kind),
            signals.get(s.iccid, _NO_SIGNALS),
            postures.get(s.device_id) if s.device_id else None,
        )
    return out


_NO_SIGNALS = SimSignals()


def org_subjects(conn: Connection, org_ids: Collection[str]) -> dict[str, Subject | None]:
    """The subjects of every SIM of these orgs that is not retired."""
    if not org_ids:
        return {}
    query = select(
        _s.c.iccid, _s.c.imsi, _s.c.org_id, _s.c.identity_id, _s.c.device_id, _s.c.kind, _s.c.state
    ).where(_s.c.state != _RETIRED)
    rows = rows_in(conn, query, _s.c.org_id, org_ids)
    return subjects_of(conn, [_SimRow(*row) for row in rows])


def load_attach(conn: Connection, now: datetime) -> AttachState:
    """Every org's attach policy and its SIMs' classes at `now` (empty: nobody has rules)."""
    policies = read_policies(conn)
    if not policies:
        return AttachState()
    classes = classify_all(policies, org_subjects(conn, list(policies)), now)
    return AttachState(policies, {k: v for k, v in classes.items() if v is not None})


# -- what a batch of changes names -------------------------------------------------------


@dataclass(frozen=True)
class AttachRead:
    """What a batch of changes asks the attach part to take in. `policies`: the orgs whose
    rules or checks changed (None: no attach rules any more), and `classes`: every SIM of
    those orgs, classified under its new policy (objects nobody else holds yet, so it is
    done outside the core's lock). `subjects`: the other SIMs named, to be classified
    under the lock with their org's current policy (which the hot path shares)."""

    policies: dict[str, CompiledPolicy | None] = field(default_factory=dict)
    classes: dict[str, AttachClass | None] = field(default_factory=dict)
    subjects: dict[str, Subject | None] = field(default_factory=dict)


def read_attach(
    conn: Connection,
    current: Mapping[str, CompiledPolicy],
    now: datetime,
    *,
    policy_orgs: Collection[str] = (),
    iccids: Collection[str] = (),
    identity_ids: Collection[str] = (),
    device_ids: Collection[str] = (),
) -> AttachRead:
    """The attach policies and SIMs a batch names. `current`: the policies installed."""
    fresh = read_policies(conn, policy_orgs) if policy_orgs else {}
    policies: dict[str, CompiledPolicy | None] = {}
    for org_id in policy_orgs:
        new = fresh.get(org_id)
        if not same_policy(current.get(org_id), new):
            policies[org_id] = new
    classes: dict[str, AttachClass | None] = {}
    if policies:
        subjects = org_subjects(conn, list(policies))
        compiled = {k: v for k, v in policies.items() if v is not None}
        classes = classify_all(compiled, subjects, now)
        dropped = [org_id for org_id, p in policies.items() if p is None and org_id in current]
        for row in rows_in(conn, select(_s.c.imsi), _s.c.org_id, dropped):
            classes[row[0]] = None
    # SIMs of orgs with rules now, and not re-read whole above.
    followed = {o for o in current if o not in policies}
    named: dict[str, _SimRow] = {}
    for column, values in (
        (_s.c.iccid, iccids),
        (_s.c.identity_id, identity_ids),
        (_s.c.device_id, device_ids),
    ):
        for row in _sim_rows(conn, column, values):
            named[row.iccid] = row
    rows = [r for r in named.values() if r.org_id in followed]
    return AttachRead(policies, classes, subjects_of(conn, rows) if rows else {})
