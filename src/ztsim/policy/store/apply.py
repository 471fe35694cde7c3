"""Policy as code: an org's whole policy exported as a `Document`, or replaced by one.

`apply` is all or nothing, one use case: the org's checks and the rules of all three
planes become the document's. Rows whose name stays keep their id (events and links
that name them stay true); positions become 0, 1, 2... per plane. The `dns` rows are
checked first with the caller's `check_dns` (the DNS plane's rule type and the org's
lists: this context does not import the DNS plane). It records one `policy.applied`
event (counts, and the document's revision: a SHA-256 of its canonical form) and
publishes `Topic.DNS` and `Topic.POLICY` once each. A document equal to the stored
policy writes nothing and records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete

from ztsim.db import schema
from ztsim.errors import Conflict
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.policy.document import Document
from ztsim.policy.file_reader import RuleCheck
from ztsim.policy.rules import Plane
from ztsim.policy.store import checks as check_store
from ztsim.policy.store import rules as rule_store
from ztsim.usecase import use_case

_r, _c = schema.policy_rules, schema.posture_checks


@dataclass(frozen=True, slots=True)
class Applied:
    changed: bool  # False: the document was the stored policy already
    revision: str
    counts: dict[str, int]


def export(conn: Connection, org_id: str) -> Document:
    """The org's policy as it is stored."""
    checks = [s.check for s in check_store.list_checks(conn, org_id)]
    rules = [s.rule for s in rule_store.list_rules(conn, org_id)]
    return Document(tuple(checks), tuple(rules))


def counts(document: Document) -> dict[str, int]:
    return {"checks": len(document.checks)} | {
        plane.value: len(document.rules_of(plane)) for plane in Plane
    }


def apply(
    conn: Connection,
    org_id: str,
    document: Document,
    *,
    actor: str,
    now: datetime,
    check_dns: RuleCheck | None = None,
    base_revision: str | None = None,
) -> Applied:
    """Make `document` the org's policy. `base_revision`: the revision the caller saw (a
    diff shown for confirmation); if the stored policy changed since, Conflict."""
    with use_case(conn, now) as uc:
        current = export(conn, org_id)
        if base_revision is not None and current.revision != base_revision:
            raise Conflict("the org's policy changed since it was read: diff again")
        found = counts(document)
        if current.revision == document.revision:
            return Applied(False, document.revision, found)
        if check_dns is not None:
            for rule in document.rules_of(Plane.DNS):
                check_dns(rule)
        _replace_checks(conn, org_id, document, now)
        _replace_rules(conn, org_id, document, now)
        subject = subject_of("org", org_id)
        uc.audit(org_id, "policy.applied", actor, subject, revision=document.revision, counts=found)
        uc.change(org_id, Topic.DNS, org_id)
        uc.change(org_id, Topic.POLICY, org_id)
        return Applied(True, document.revision, found)


def _replace_checks(conn: Connection, org_id: str, document: Document, now: datetime) -> None:
    stored = {s.name: s for s in check_store.list_checks(conn, org_id)}
    wanted = document.check_map
    gone = [s.id for name, s in stored.items() if name not in wanted]
    if gone:
        conn.execute(delete(_c).where(_c.c.org_id == org_id, _c.c.id.in_(gone)))
    for name, check in wanted.items():
        if name not in stored:
            check_store.insert_check(conn, org_id, check, now)
        elif stored[name].check != check:
            check_store.update_check(conn, org_id, stored[name].id, check, now)


def _replace_rules(conn: Connection, org_id: str, document: Document, now: datetime) -> None:
    for plane in Plane:
        stored = {s.name: s for s in rule_store.list_rules(conn, org_id, plane)}
        wanted = document.rules_of(plane)
        names = {r.name for r in wanted}
        gone = [s.id for name, s in stored.items() if name not in names]
        if gone:
            conn.execute(delete(_r).where(_r.c.org_id == org_id, _r.c.id.in_(gone)))
        for position, rule in enumerate(wanted):
            old = stored.get(rule.name)
            if old is None:
                rule_store.insert_rule(conn, org_id, rule, position, now)
            elif old.rule != rule or old.position != position:
                rule_store.update_rule(conn, org_id, old.id, rule, position, now)
