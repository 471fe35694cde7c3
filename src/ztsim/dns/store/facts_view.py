"""The facts a DNS requester's tags are worked out from, read per batch of entries.

Tags (`ztsim.dns.policy.identity.tags_of`) say, per requester, the state of each of its
org's posture checks and which SIM conditions of its org's DNS rules hold. A batch (a
full load, the keys a batch of the change feed names) reads the checks and conditions of
its orgs, then the posture of its devices and the signals of its SIMs through the policy
context's loader (`ztsim.policy.store.facts`): one query each, never one per entry, and
none for an org with neither checks nor conditions. Read-only.

A gateway that follows the feed keeps each org's checks and conditions as last read
(`OrgFacts`): they change only with a POLICY or DNS change of the org, and the batch that
carries it reads them anew (`OrgFacts.refresh`) before any entry of the batch is read, so
a batch of SIM or session changes reads only the posture and signals of its entries.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.dns.policy.identity import tags_of
from ztsim.dns.store.repository import PLANE
from ztsim.errors import InvalidInput
from ztsim.policy.checks import PostureCheck
from ztsim.policy.conditions import Condition, is_sim_path, parse
from ztsim.policy.facts import NO_SIGNALS, IdentityKind, SimKind, Subject
from ztsim.policy.store.facts import posture_of_devices, read_checks, signals_of_sims

_rules = schema.policy_rules
_NONE: frozenset[str] = frozenset()
_KINDS = frozenset(k.value for k in IdentityKind)
_SIM_KINDS = frozenset(k.value for k in SimKind)
# What an org's tags are worked out from: its checks (name, expression, maximum age) and
# its DNS rules' SIM conditions. The gateway reads the org's entries again when it changes.
Signature = tuple[tuple[tuple[str, str, timedelta], ...], tuple[str, ...]]


def org_conditions(
    conn: Connection, org_ids: Collection[str] | None
) -> dict[str, tuple[Condition, ...]]:
    """Org -> the SIM conditions its DNS rules require, each once, in the rules' order
    (of every org: None)."""
    query = select(_rules.c.org_id, _rules.c.spec).where(_rules.c.plane == PLANE)
    query = query.order_by(_rules.c.org_id, _rules.c.position, _rules.c.id)  # rule order
    rows = rows_in(conn, query, _rules.c.org_id, org_ids)
    found: dict[str, dict[str, Condition]] = {}
    for org_id, spec in rows:
        texts = spec.get("sim", ()) if isinstance(spec, dict) else ()
        for text in texts if isinstance(texts, list) else ():
            try:
                condition = parse(text, allowed=is_sim_path)
            except (InvalidInput, TypeError):
                continue  # not written through `Rule`: it tags no one, so no rule needs it
            found.setdefault(org_id, {}).setdefault(condition.text, condition)
    return {org_id: tuple(conditions.values()) for org_id, conditions in found.items()}


Checks = dict[str, dict[str, PostureCheck]]
Conditions = dict[str, tuple[Condition, ...]]


class OrgFacts:
    """Each org's posture checks and DNS SIM conditions as last read (thread-safe: a
    gateway's feed thread and its deadline thread both read entries)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._checks: Checks = {}
        self._conditions: Conditions = {}
        # Moves with every refresh and forget_all: a read that began before one of them
        # (an older snapshot) is answered but not kept.
        self._generation = 0

    def of(self, conn: Connection, org_ids: Collection[str]) -> tuple[Checks, Conditions]:
        """These orgs' checks and conditions; an org not seen yet is read now."""
        with self._lock:
            missing = set(org_ids) - self._known
            generation = self._generation
            checks = {o: self._checks[o] for o in org_ids if o in self._checks}
            conditions = {o: self._conditions[o] for o in org_ids if o in self._conditions}
        if missing:
            read_c, read_k = read_checks(conn, missing), org_conditions(conn, missing)
            checks.update(read_c)
            conditions.update(read_k)
            with self._lock:
                if generation == self._generation:
                    self._keep(missing, read_c, read_k)
        return checks, conditions

    def refresh(self, conn: Connection, org_ids: Collection[str]) -> dict[str, Signature]:
        """Read these orgs' checks and conditions anew (a POLICY or DNS change of theirs
        arrived); what their tags are worked out from now."""
        checks, conditions = read_checks(conn, org_ids), org_conditions(conn, org_ids)
        with self._lock:
            self._generation += 1
            self._keep(set(org_ids), checks, conditions)
        return {org: _signature(checks.get(org, {}), conditions.get(org, ())) for org in org_ids}

    def forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._known, self._checks, self._conditions = set(), {}, {}

    def _keep(self, orgs: set[str], checks: Checks, conditions: Conditions) -> None:
        for org in orgs:
            self._known.add(org)
            self._checks.pop(org, None)
            self._conditions.pop(org, None)
            if org in checks:
                self._checks[org] = checks[org]
            if org in conditions:
                self._conditions[org] = conditions[org]


class Facts:
    """The checks and conditions of the orgs of a batch of entries, and the posture and
    SIM signals they read: each read once for the batch (everything: `wanted` None)."""

    def __init__(
        self,
        conn: Connection,
        now: datetime,
        wanted: Collection[tuple[str, str | None, str | None]] | None = None,
        known: OrgFacts | None = None,
    ) -> None:
        """`wanted`: (org, device, ICCID) of each entry the batch will tag; `known`: the
        orgs' checks and conditions as a gateway keeps them (else read for the batch)."""
        self.now = now
        orgs = None if wanted is None else {org for org, _, _ in wanted}
        if orgs is not None and known is not None:
            self.checks, self.conditions = known.of(conn, orgs)
        else:
            self.checks = read_checks(conn, orgs)
            self.conditions = org_conditions(conn, orgs)
        devices: set[str] | None = None
        iccids: set[str] | None = None
        if wanted is not None:  # an org with neither checks nor conditions reads nothing
            devices = {d for org, d, _ in wanted if d is not None and org in self.checks}
            iccids = {i for org, _, i in wanted if i is not None and org in self.conditions}
        # Of the orgs that read them only (a full load reads whole tables: not every
        # tenant's rows), and alike for a full load and a batch.
        checked, conditioned = set(self.checks), set(self.conditions)
        self.postures = posture_of_devices(conn, devices, org_ids=checked) if checked else {}
        self.signals = signals_of_sims(conn, iccids, org_ids=conditioned) if conditioned else {}
        # Most requesters of an org share their tags: one set for all of them.
        self._interned: dict[frozenset[str], frozenset[str]] = {}

    def signature(self, org_id: str) -> Signature:
        return _signature(self.checks.get(org_id, {}), self.conditions.get(org_id, ()))

    def tags(
        self,
        org_id: str,
        identity: str | None,
        kind: str | None,
        sim_kind: str | None,
        iccid: str | None,
        device: str | None,
    ) -> tuple[frozenset[str], datetime | None]:
        checks = self.checks.get(org_id, {}).values()
        conditions = self.conditions.get(org_id, ())
        if not (checks or conditions):
            return _NONE, None
        subject = Subject(
            org_id,
            identity,
            IdentityKind(kind) if kind in _KINDS else None,
            sim_kind=SimKind(sim_kind) if sim_kind in _SIM_KINDS else None,
            signals=self.signals.get(iccid, NO_SIGNALS) if iccid is not None else NO_SIGNALS,
            posture=self.postures.get(device) if device is not None else None,
        )
        tags, until = tags_of(subject, checks, conditions, self.now)
        return self._interned.setdefault(tags, tags), until


def _signature(checks: Mapping[str, PostureCheck], conditions: Iterable[Condition]) -> Signature:
    specs = tuple(sorted((c.name, c.expression, c.max_age) for c in checks.values()))
    return specs, tuple(sorted(c.text for c in conditions))
