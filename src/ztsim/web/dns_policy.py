"""The DNS policy page's content: the org's DNS rules in order, its lists, its settings in
words, and "test a name for a person", read through the DNS store the API reads.

The test asks the very function behind GET /api/v1/policy/explain (plane `dns`):
`ztsim.dns.store.explained.explanations`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from ztsim.db import schema
from ztsim.dns.policy.rules import BlockAnswer, OrgSettings, PrivacyMode
from ztsim.dns.store import repository as dns
from ztsim.dns.store.explained import explanations
from ztsim.policy.rules import Plane
from ztsim.policy.store import facts
from ztsim.web.person_key import person_id

_BLOCK_ANSWERS = {
    BlockAnswer.NULL_IP: "the null address (0.0.0.0 or ::)",
    BlockAnswer.NXDOMAIN: "“no such name” (NXDOMAIN)",
    BlockAnswer.BLOCK_PAGE: "the block page's address",
}
_PRIVACY = {
    PrivacyMode.BLOCKED_ONLY: "only blocked queries are logged",
    PrivacyMode.ALL: "every query is logged",
    PrivacyMode.NONE: "no query is logged",
}


@dataclass(frozen=True, slots=True)
class RuleRow:
    position: int
    name: str
    action: str
    matches: list[str]  # what names it covers
    applies_to: list[str]  # whom; empty: everyone
    requires: list[str]  # posture checks and SIM conditions
    answer: list[str]


@dataclass(frozen=True, slots=True)
class ListRow:
    name: str
    source: str  # its URL, or "uploaded"
    good_lines: int
    bad_lines: int
    refreshed_at: datetime | None
    refresh_error: str


@dataclass(frozen=True, slots=True)
class Policy:
    rules: list[RuleRow]
    lists: list[ListRow]
    settings: list[tuple[str, str]]  # (what, in words)


@dataclass(frozen=True, slots=True)
class Tested:
    """What the test box was asked and what explain said, one item per SIM."""

    name: str
    person: str
    person_name: str
    explanations: list[dict[str, Any]] = field(default_factory=list)


def _names(conn: Connection, table: Table, org_id: str, ids: Iterable[str]) -> dict[str, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = conn.execute(
        select(table.c.id, table.c.name).where(table.c.org_id == org_id, table.c.id.in_(wanted))
    ).all()
    return {str(i): str(n) for i, n in rows}


def _rules(conn: Connection, org_id: str) -> list[RuleRow]:
    stored = dns.list_rules(conn, org_id)
    rules = [s.rule for s in stored]
    people = _names(conn, schema.identities, org_id, (i for r in rules for i in r.identities))
    groups = _names(conn, schema.groups, org_id, (g for r in rules for g in r.groups))
    fleets = _names(conn, schema.fleets, org_id, (f for r in rules for f in r.fleets))
    out = []
    for s in stored:
        r = s.rule
        matches = list(r.domains) + [f"list {n}" for n in r.lists]
        matches += [f"category {c.value}" for c in r.categories]
        matches += [f"query type {q}" for q in r.qtypes]
        whom = [f"person {people.get(i, i)}" for i in r.identities]
        whom += [f"group {groups.get(g, g)}" for g in r.groups]
        whom += [f"fleet {fleets.get(f, f)}" for f in r.fleets]
        whom += [f"{k} SIMs" for k in r.sim_kinds]
        whom += [f"{k} identities" for k in r.identity_kinds]
        requires = [f"posture {p}" for p in r.posture] + [f"SIM {c}" for c in r.sim]
        out.append(
            RuleRow(s.position, s.name, r.action.value, matches, whom, requires, list(r.answer))
        )
    return out


def _settings(
    conn: Connection, org_id: str, s: OrgSettings, networks: tuple[str, ...]
) -> list[tuple[str, str]]:
    fleets = _names(conn, schema.fleets, org_id, s.allow_list_only_fleets)
    pages = [a for a in (s.block_page_ipv4, s.block_page_ipv6) if a]
    return [
        ("A blocked name is answered with", _BLOCK_ANSWERS[s.block_answer]),
        ("Block page addresses", ", ".join(pages) or "none"),
        ("Query log", _PRIVACY[s.privacy]),
        ("Requesters pseudonymised in the log", "yes" if s.pseudonymise else "no"),
        (
            "Fleets that may reach only allowed names",
            ", ".join(sorted(fleets.get(f, f) for f in s.allow_list_only_fleets)) or "none",
        ),
        ("Networks under the default policy", ", ".join(networks) or "none"),
    ]


def read(conn: Connection, org_id: str) -> Policy:
    settings, networks = dns.get_settings(conn, org_id)
    lists = [
        ListRow(
            s.name, s.url or "uploaded", s.good_lines, s.bad_lines, s.refreshed_at, s.refresh_error
        )
        for s in dns.list_lists(conn, org_id)
    ]
    return Policy(_rules(conn, org_id), lists, _settings(conn, org_id, settings, networks))


def try_name(
    conn: Connection,
    org_id: str,
    name: str,
    person: str,
    now: datetime,
) -> Tested:
    """Explain's answer for a DNS name asked by a person (identity id or email) of the org.
    InvalidInput for a name that is not one, or a person the org does not have."""
    identity = person_id(conn, org_id, person)
    found = facts.subjects(conn, org_id, identity_id=identity)
    person_name = _names(conn, schema.identities, org_id, [identity]).get(identity, identity)
    explained = explanations(conn, org_id, found, Plane.DNS, name, now)
    return Tested(name, person, person_name, explained)
