"""The facts policies decide on, read from the database in batches, off every hot path.

Gateways read them for the entries a batch of the change feed names (or for all, at a
load); `explain` and `policy diff` read one identity's or one org's subjects. Read-only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, select

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.errors import InvalidInput, NotFound
from ztsim.policy.checks import PostureCheck
from ztsim.policy.facts import NO_SIGNALS, IdentityKind, Posture, SimKind, SimSignals, Subject

_checks, _posture = schema.posture_checks, schema.device_posture
_sims, _devices, _ids = schema.sims, schema.devices, schema.identities
_sessions = schema.radius_sessions
_RETIRED = "retired"  # ztsim.inventory.lifecycle.SimState.RETIRED: no longer the subject's SIM


def read_checks(
    conn: Connection, org_ids: Collection[str] | None = None
) -> dict[str, dict[str, PostureCheck]]:
    """Org id -> check name -> check (every org that has checks when `org_ids` is None)."""
    query = select(_checks.c.org_id, _checks.c.name, _checks.c.expression, _checks.c.max_age_s)
    out: dict[str, dict[str, PostureCheck]] = {}
    for org_id, name, expression, max_age_s in rows_in(conn, query, _checks.c.org_id, org_ids):
        try:
            check = PostureCheck(name, expression, timedelta(seconds=max_age_s))
        except InvalidInput:
            continue  # stored before a stricter parser: it passes nobody (fails closed)
        out.setdefault(org_id, {})[name] = check
    return out


def _of_orgs(
    conn: Connection,
    query: Select[Any],
    column: ColumnElement[Any],
    values: Collection[str] | None,
    org_column: ColumnElement[Any],
    org_ids: Collection[str] | None,
) -> list[Any]:
    """The query's rows whose `column` is in `values` (all: None), of the orgs `org_ids`
    (all: None); the query's last column is the row's org."""
    if org_ids is None:
        return rows_in(conn, query, column, values)
    if values is None:  # a whole-table read, of the orgs wanted only
        return rows_in(conn, query, org_column, org_ids)
    orgs = set(org_ids)
    return [row for row in rows_in(conn, query, column, values) if row[-1] in orgs]


def posture_of_devices(
    conn: Connection,
    device_ids: Collection[str] | None,
    *,
    org_ids: Collection[str] | None = None,
) -> dict[str, Posture]:
    """Device id -> its last posture report (every device with one when None), of the
    devices of `org_ids` only (of any org: None)."""
    query = select(
        _posture.c.device_id,
        _posture.c.attributes,
        _posture.c.observed_at,
        _posture.c.expires_at,
        _posture.c.source,
        _posture.c.org_id,
    )
    rows = _of_orgs(conn, query, _posture.c.device_id, device_ids, _posture.c.org_id, org_ids)
    stored = Posture.stored  # checked when written: see there why it is not checked again
    out = {}
    for device_id, attributes, observed_at, expires_at, source, _org in rows:
        if isinstance(attributes, dict):  # anything else was never written by a Posture
            out[device_id] = stored(attributes, observed_at, expires_at, source)
    return out


def signals_of_sims(
    conn: Connection,
    iccids: Collection[str] | None,
    *,
    org_ids: Collection[str] | None = None,
) -> dict[str, SimSignals]:
    """ICCID -> its signals (every SIM's when None), of the SIMs of `org_ids` only (of any
    org: None). `imei_mismatch`: a live session of the SIM reports an IMEI other than its
    bound device's (an IMEISV's first 14 digits are the IMEI's)."""
    query = select(
        _sims.c.iccid,
        _sims.c.swapped_at,
        _sims.c.clone_suspected_at,
        _sims.c.swap_recent_until,
        _sims.c.org_id,
    )
    out = {}
    for iccid, swapped_at, clone_at, recent_until, _org in _of_orgs(
        conn, query, _sims.c.iccid, iccids, _sims.c.org_id, org_ids
    ):
        # Most SIMs have no signal: they share one value rather than each making its own.
        if swapped_at is None and clone_at is None and recent_until is None:
            out[iccid] = NO_SIGNALS
        else:
            out[iccid] = SimSignals(
                swapped_at=swapped_at,
                clone_suspected=clone_at is not None,
                swap_recent_until=recent_until,
            )
    live = (
        select(_sims.c.iccid, _sessions.c.imei, _devices.c.imei, _sims.c.org_id)
        .join(_sessions, _sessions.c.imsi == _sims.c.imsi)
        .join(_devices, _devices.c.id == _sims.c.device_id)
        .where(_sessions.c.stopped_at.is_(None), _sessions.c.imei.is_not(None))
    )
    for iccid, seen, bound, _org in _of_orgs(
        conn, live, _sims.c.iccid, iccids, _sims.c.org_id, org_ids
    ):
        if seen[:14] != bound[:14] and iccid in out:
            out[iccid] = replace(out[iccid], imei_mismatch=True)
    return out


def identity_kinds(
    conn: Connection, identity_ids: Collection[str] | None
) -> dict[str, IdentityKind]:
    query = select(_ids.c.id, _ids.c.kind)
    out = {}
    for identity_id, kind in rows_in(conn, query, _ids.c.id, identity_ids):
        try:
            out[identity_id] = IdentityKind(kind)
        except ValueError:
            continue
    return out


def _memberships(
    conn: Connection, table: Table, column: str, identity_ids: Collection[str] | None
) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    query = select(table.c[column], table.c.identity_id)
    for owner, member in rows_in(conn, query, table.c.identity_id, identity_ids):
        found.setdefault(member, set()).add(owner)
    return {identity: frozenset(owners) for identity, owners in found.items()}


@dataclass(frozen=True, slots=True)
class SubjectContext:
    """One subject as policies see it, with what it was read from."""

    identity_id: str | None
    iccid: str | None
    device_id: str | None
    subject: Subject


def subjects(
    conn: Connection, org_id: str, *, identity_id: str | None = None, iccid: str | None = None
) -> list[SubjectContext]:
    """An org's subjects: one per SIM that is not retired (of `identity_id`, or the SIM
    `iccid`, or every one of the org), and one without SIM facts for each identity that
    holds no such SIM. NotFound if the identity or SIM is not the org's."""
    sims = select(
        _sims.c.iccid, _sims.c.identity_id, _sims.c.device_id, _sims.c.kind, _sims.c.state
    ).where(_sims.c.org_id == org_id, _sims.c.state != _RETIRED)
    people = select(_ids.c.id).where(_ids.c.org_id == org_id)
    if iccid is not None:
        sims = sims.where(_sims.c.iccid == iccid)
        sim_rows = list(conn.execute(sims).all())
        if not sim_rows:
            raise NotFound("no such SIM")
        identity_rows: list[Any] = []
    else:
        if identity_id is not None:
            sims = sims.where(_sims.c.identity_id == identity_id)
            people = people.where(_ids.c.id == identity_id)
        identity_rows = list(conn.execute(people).all())
        if identity_id is not None and not identity_rows:
            raise NotFound("no such identity")
        sim_rows = list(conn.execute(sims.order_by(_sims.c.iccid)).all())
    ids = {r[1] for r in sim_rows if r[1] is not None} | {r[0] for r in identity_rows}
    groups = _memberships(conn, schema.group_members, "group_id", ids)
    fleets = _memberships(conn, schema.fleet_members, "fleet_id", ids)
    kinds = identity_kinds(conn, ids)
    signals = signals_of_sims(conn, [r[0] for r in sim_rows])
    postures = posture_of_devices(conn, {r[2] for r in sim_rows if r[2] is not None})

    def subject(identity: str | None, **sim: Any) -> Subject:
        return Subject(
            org_id,
            identity,
            kinds.get(identity) if identity else None,
            groups.get(identity, frozenset()) if identity else frozenset(),
            fleets.get(identity, frozenset()) if identity else frozenset(),
            **sim,
        )

    out = []
    for sim_iccid, identity, device_id, kind, _state in sim_rows:
        facts = subject(
            identity,
            sim_kind=SimKind(kind),
            signals=signals.get(sim_iccid, NO_SIGNALS),
            posture=postures.get(device_id) if device_id else None,
        )
        out.append(SubjectContext(identity, sim_iccid, device_id, facts))
    with_sims = {r[1] for r in sim_rows}
    for (identity,) in sorted(identity_rows):
        if identity not in with_sims:
            out.append(SubjectContext(identity, None, None, subject(identity)))
    return out
