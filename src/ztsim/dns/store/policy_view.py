"""The gateway's view of the DNS tables: every org at once, read-only, off the hot path.

`fingerprint` is cheap and changes with any DNS row, so the gateway rebuilds its policy
snapshot only when something changed; `load_policy` and `load_device_tokens` then read
everything the snapshot needs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from ztsim.db import schema
from ztsim.dns.policy.identity import NetworkDefault, Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import OrgPolicy, PolicyData, Rule
from ztsim.dns.store.repository import get_settings, list_rules

_s, _r, _l, _t = schema.dns_settings, schema.dns_rules, schema.dns_lists, schema.dns_device_tokens


def fingerprint(conn: Connection) -> tuple[object, ...]:
    """Changes whenever any org's DNS rows change: the gateway rebuilds only then."""
    out: list[object] = []
    for table in (_s, _r, _l, _t):
        column = table.c.updated_at if "updated_at" in table.c else table.c.created_at
        out += list(conn.execute(select(func.count(), func.max(column))).one())
    out.append(conn.execute(select(func.count()).where(_t.c.revoked_at.is_not(None))).scalar())
    return tuple(out)


def load_policy(conn: Connection) -> tuple[PolicyData, list[NetworkDefault]]:
    """Every org's rules, lists and settings. List names are scoped as `<org id>/<name>`."""
    lists = {}
    for m in conn.execute(select(_l.c.org_id, _l.c.name, _l.c.format, _l.c.content)).mappings():
        fmt = ListFormat(m["format"]) if m["format"] else None
        lists[f"{m['org_id']}/{m['name']}"] = parse_list(m["content"], fmt)
    orgs: dict[str, OrgPolicy] = {}
    defaults: list[NetworkDefault] = []
    org_ids = set(conn.execute(select(_r.c.org_id).distinct()).scalars())
    org_ids |= set(conn.execute(select(_s.c.org_id)).scalars())
    for org_id in sorted(org_ids):
        settings, networks = get_settings(conn, org_id)
        defaults += [NetworkDefault(org_id, cidr) for cidr in networks]
        rules = []
        for stored in list_rules(conn, org_id):
            scoped = tuple(f"{org_id}/{name}" for name in stored.rule.lists)
            rules.append(Rule(**{**_fields(stored.rule), "lists": scoped}))
        orgs[org_id] = OrgPolicy(org_id, tuple(rules), settings)
    return PolicyData(orgs, lists), defaults


def _fields(rule: Rule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in Rule.__dataclass_fields__}


def load_device_tokens(conn: Connection) -> dict[bytes, Requester]:
    """Live token hashes -> the device's requester (its owner's identity, if any)."""
    devices = schema.devices
    rows = conn.execute(
        select(_t.c.token_hash, _t.c.org_id, _t.c.device_id, devices.c.owner_id)
        .join(devices, devices.c.id == _t.c.device_id)
        .where(_t.c.revoked_at.is_(None))
    ).all()
    return {
        bytes(digest): Requester(org_id, owner, device_id=device_id)
        for digest, org_id, device_id, owner in rows
    }
