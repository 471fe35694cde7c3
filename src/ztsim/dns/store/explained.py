"""Explain's reading side: the subject a caller names, and one explanation per SIM of it.

Shared by `GET /api/v1/policy/explain` and `ztsim policy explain`, so both find the same
subjects and say the same things. A subject is an identity id, an ICCID or an MSISDN of
the org; one that is not the org's does not exist. Explain runs on the stored policy
with the org's own DNS lists (`policy_check.list_matcher`); the security feeds are the DNS
gateway's, so a rule naming categories is reported as not evaluated rather than guessed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from ztsim.db import schema
from ztsim.dns.store.policy_check import list_matcher
from ztsim.errors import NotFound
from ztsim.policy.explain import explain
from ztsim.policy.rules import DnsTarget, Plane
from ztsim.policy.store import apply as store
from ztsim.policy.store import facts
from ztsim.policy.targets import no_lists, parse_target

_IDENTITY_ID = re.compile(r"[0-9a-f]{32}")


def find_subjects(conn: Connection, org_id: str, subject: str) -> list[facts.SubjectContext]:
    """The contexts of an identity id, an ICCID or an MSISDN of the org (else NotFound)."""
    if _IDENTITY_ID.fullmatch(subject):
        return facts.subjects(conn, org_id, identity_id=subject)
    sims = schema.sims
    iccid = conn.execute(
        select(sims.c.iccid).where(
            sims.c.org_id == org_id, or_(sims.c.iccid == subject, sims.c.msisdn == subject)
        )
    ).scalar()
    if iccid is None:
        raise NotFound("no such subject")
    return facts.subjects(conn, org_id, iccid=iccid)


def explanations(
    conn: Connection,
    org_id: str,
    found: list[facts.SubjectContext],
    plane: Plane,
    target: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """One explanation per context, as the API returns them."""
    query = parse_target(plane.value, target)
    document = store.export(conn, org_id)
    lists = list_matcher(conn, org_id) if plane is Plane.DNS else no_lists
    # The security feeds are the DNS gateway's: a rule naming categories is reported as
    # not evaluated for them rather than guessed.
    categorised = any(
        isinstance(r.target, DnsTarget) and r.target.categories for r in document.rules_of(plane)
    )
    out = []
    for context in found:
        explanation = explain(
            (document.rules, document.check_map), context.subject, plane, query, now, lists
        )
        out.append(
            {
                "identity_id": context.identity_id,
                "iccid": context.iccid,
                "device_id": context.device_id,
                "not_evaluated": ["categories"] if categorised else [],
                **explanation.to_json(),
            }
        )
    return out
