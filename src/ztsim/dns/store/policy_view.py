"""The gateway's view of the DNS tables: read-only, off the hot path, one org at a time.

`read_org` reads what one org's policy needs (settings, networks, rules) and only the
version of each list its rules use; `read_list` reads and parses a list's text, which the
gateway does only for a list whose version it has not compiled yet (a 1M-name list takes
seconds). `load_policy` reads every org at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.dns.policy.identity import NetworkDefault
from ztsim.dns.policy.lists import ListFormat, ParsedList, parse_list
from ztsim.dns.policy.rules import OrgPolicy, PolicyData, Rule
from ztsim.dns.store.repository import PLANE, get_settings, list_rules

_s, _r, _l = schema.dns_settings, schema.policy_rules, schema.dns_lists


@dataclass(frozen=True, slots=True)
class ListVersion:
    """A stored list as it is now: `key` changes whenever its text or format does."""

    list_id: str
    name: str  # scoped: `<org id>/<name>`
    format: str | None
    updated_at: datetime

    @property
    def key(self) -> str:
        return f"db:{self.list_id}:{self.updated_at.isoformat()}:{self.format or ''}"


@dataclass(frozen=True, slots=True)
class StoredOrg:
    policy: OrgPolicy
    networks: tuple[NetworkDefault, ...]
    lists: tuple[ListVersion, ...]  # the lists its rules use


def org_ids(conn: Connection) -> set[str]:
    """Every org with a DNS policy in the database (settings or rules)."""
    ids = set(conn.execute(select(_r.c.org_id).where(_r.c.plane == PLANE).distinct()).scalars())
    return ids | set(conn.execute(select(_s.c.org_id)).scalars())


def read_org(conn: Connection, org_id: str) -> StoredOrg | None:
    """One org's policy; None if it has neither settings nor rules in the database.
    List names are scoped as `<org id>/<name>`."""
    has_settings = conn.execute(select(_s.c.org_id).where(_s.c.org_id == org_id)).first()
    stored_rules = list_rules(conn, org_id)
    if has_settings is None and not stored_rules:
        return None
    settings, networks = get_settings(conn, org_id)
    rules = []
    for stored in stored_rules:
        scoped = tuple(f"{org_id}/{name}" for name in stored.rule.lists)
        rules.append(Rule(**{**_fields(stored.rule), "lists": scoped}))
    used = {name for stored in stored_rules for name in stored.rule.lists}
    versions = []
    if used:
        query = select(_l.c.id, _l.c.name, _l.c.format, _l.c.updated_at).where(
            _l.c.org_id == org_id, _l.c.name.in_(sorted(used))
        )
        for list_id, name, fmt, updated_at in conn.execute(query):
            versions.append(ListVersion(list_id, f"{org_id}/{name}", fmt, updated_at))
    return StoredOrg(
        OrgPolicy(org_id, tuple(rules), settings),
        tuple(NetworkDefault(org_id, cidr) for cidr in networks),
        tuple(sorted(versions, key=lambda v: v.name)),
    )


def read_list(conn: Connection, version: ListVersion) -> ParsedList:
    """A list's stored text, parsed (empty if the list is gone since)."""
    content = conn.execute(select(_l.c.content).where(_l.c.id == version.list_id)).scalar()
    fmt = ListFormat(version.format) if version.format else None
    return parse_list(content or "", fmt)


def load_policy(conn: Connection) -> tuple[PolicyData, list[NetworkDefault]]:
    """Every org's rules, settings and lists (used or not), each list parsed."""
    lists = {}
    for m in conn.execute(select(_l.c.org_id, _l.c.name, _l.c.format, _l.c.content)).mappings():
        fmt = ListFormat(m["format"]) if m["format"] else None
        lists[f"{m['org_id']}/{m['name']}"] = parse_list(m["content"], fmt)
    orgs: dict[str, OrgPolicy] = {}
    defaults: list[NetworkDefault] = []
    for org_id in sorted(org_ids(conn)):
        stored = read_org(conn, org_id)
        if stored is not None:
            orgs[org_id] = stored.policy
            defaults += stored.networks
    return PolicyData(orgs, lists), defaults


def _fields(rule: Rule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in Rule.__dataclass_fields__}
